// Internal to the ferry command: graceful stop of a server on SIGINT/SIGTERM.
#pragma once

#include <poll.h>

#include <exception>

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
    /// Consumes the stop signal that arrived and returns it (SIGINT or
    /// SIGTERM); SIGTERM if none is pending.
    [[nodiscard]] int take() const;

  private:
    Fd fd_;
};

/// A job stopped by SIGINT or SIGTERM before it was done: thrown so that every
/// destructor on the way up runs (children killed, files removed); the catcher
/// then calls end_by_signal(signal).
class Interrupted : public std::exception {
  public:
    explicit Interrupted(int signal) noexcept : signal_(signal) {}
    [[nodiscard]] int signal() const noexcept { return signal_; }
    [[nodiscard]] const char* what() const noexcept override { return "interrupted"; }

  private:
    int signal_;
};

/// Ends the process by `signal` with its default action (unblocked and raised
/// again), so that the parent sees what a shell shows as 128 + signal (130,
/// 143): the convention for a job a signal stopped before it was done.
[[noreturn]] void end_by_signal(int signal);

}  // namespace ferry::cli
