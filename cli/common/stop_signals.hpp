// Internal to the ferry command: graceful stop of a server on SIGINT/SIGTERM.
#pragma once

#include <poll.h>

#include "ferry/fd.hpp"
#include "ferry/socket.hpp"

namespace ferry::cli {

/// Turns SIGINT and SIGTERM into a readable descriptor (signalfd), so a server
/// that waits for a client can wait for "stop" at the same time and then close
/// its sockets and exit 0, instead of dying inside accept() or recvfrom().
///
/// Only servers make one (main() of the ferry command owns signal state; the
/// library never touches it). The signals stay blocked for the process
/// lifetime, so threads started later inherit the mask.
class StopSignals {
  public:
    StopSignals();

    enum class Wake { ready, stop, timeout };
    /// Waits until `socket` is ready for `events`, a stop signal arrives, or the deadline passes.
    Wake wait(const Socket& socket, short events, Deadline deadline = std::nullopt) const;
    /// True once a stop signal has arrived (does not consume it).
    [[nodiscard]] bool requested() const;
    /// The signalfd, for a loop that polls several descriptors: readable once a stop signal
    /// arrived.
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  private:
    Fd fd_;
};

}  // namespace ferry::cli
