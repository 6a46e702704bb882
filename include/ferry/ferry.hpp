// ferry/ferry.hpp: the whole public library in one include.
#pragma once

#include "ferry/acceptor.hpp"      // IWYU pragma: export
#include "ferry/address.hpp"       // IWYU pragma: export
#include "ferry/buffer.hpp"        // IWYU pragma: export
#include "ferry/byte_order.hpp"    // IWYU pragma: export
#include "ferry/create.hpp"        // IWYU pragma: export
#include "ferry/datagram_batch.hpp"  // IWYU pragma: export
#include "ferry/duration.hpp"      // IWYU pragma: export
#include "ferry/error.hpp"         // IWYU pragma: export
#include "ferry/event_loop.hpp"    // IWYU pragma: export
#include "ferry/fd.hpp"            // IWYU pragma: export
#include "ferry/framing.hpp"       // IWYU pragma: export
#include "ferry/poller.hpp"        // IWYU pragma: export
#include "ferry/reliable_udp.hpp"  // IWYU pragma: export
#include "ferry/run_loops.hpp"     // IWYU pragma: export
#include "ferry/socket.hpp"        // IWYU pragma: export
#include "ferry/time.hpp"          // IWYU pragma: export

/// @namespace ferry
/// The library: descriptors and sockets, addresses and name resolution, errors,
/// framing, readiness and the event loop, the server models, reliable UDP.
/// Internals live in ferry::detail and are not API.
