// Internal to the ferry command: a child process whose output is read line by line (for `ferry
// tour`).
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/stop_signals.hpp"
#include "ferry/fd.hpp"
#include "ferry/socket.hpp"

namespace ferry::cli {

/// Runs `argv` with standard output and error on one pipe, and `input`
/// written to its standard input (then closed). The destructor kills and
/// reaps a child still running, so no process outlives its owner.
/// With `stop`, every wait also watches for SIGINT/SIGTERM and throws
/// Interrupted when one arrives (the owner unwinds, killing its children).
class ChildProcess {
  public:
    ChildProcess(const std::vector<std::string>& argv, const std::string& input = {},
                 const StopSignals* stop = nullptr);
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    ~ChildProcess();

    /// The next line of output; nullopt at end of output. Throws Failure at the deadline.
    std::optional<std::string> read_line(Clock::time_point deadline);
    /// Every remaining line, until the child closes its output.
    std::vector<std::string> read_rest(Clock::time_point deadline);
    /// Sends `signal`, then waits for the exit; returns the exit status as a shell shows it.
    int stop(int signal, Clock::time_point deadline);
    /// Waits for the exit (killing the child at the deadline).
    int wait(Clock::time_point deadline);

  private:
    /// poll() on `fd` and the stop signal until `deadline`; returns poll's count.
    int poll_until(pollfd& p, Clock::time_point deadline) const;

    const StopSignals* stop_ = nullptr;
    pid_t pid_ = -1;
    Fd process_;  // pidfd
    Fd output_;
    std::string pending_;
    bool eof_ = false;
};

/// The path of the running ferry binary, to start more of itself.
std::string self_executable();

}  // namespace ferry::cli
