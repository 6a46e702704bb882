// ferry/ferry.hpp: the whole public library in one include.
#pragma once

#include "ferry/acceptor.hpp"      // IWYU pragma: export
#include "ferry/address.hpp"       // IWYU pragma: export
#include "ferry/buffer.hpp"        // IWYU pragma: export
#include "ferry/byte_order.hpp"    // IWYU pragma: export
#include "ferry/create.hpp"        // IWYU pragma: export
#include "ferry/duration.hpp"      // IWYU pragma: export
#include "ferry/error.hpp"         // IWYU pragma: export
#include "ferry/event_loop.hpp"    // IWYU pragma: export
#include "ferry/fd.hpp"            // IWYU pragma: export
#include "ferry/framing.hpp"       // IWYU pragma: export
#include "ferry/poller.hpp"        // IWYU pragma: export
#include "ferry/reliable_udp.hpp"  // IWYU pragma: export
#include "ferry/socket.hpp"        // IWYU pragma: export
