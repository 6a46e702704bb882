#include "common/stop_signals.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>

#include "ferry/error.hpp"

namespace ferry::cli {

StopSignals::StopSignals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) throw_errno("sigprocmask");
    fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd_) throw_errno("signalfd");
}

StopSignals::Wake StopSignals::wait(const Socket& socket, short events, Deadline deadline) const {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {socket.fd(), events, 0}};
    for (;;) {
        int timeout_ms = -1;
        if (deadline) {
            const auto left =
                std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
            timeout_ms = static_cast<int>(std::max<std::int64_t>(0, left.count()));
        }
        const int rc = ::poll(fds, 2, timeout_ms);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) throw_errno("poll");
        if (fds[0].revents != 0) return Wake::stop;
        if (fds[1].revents != 0) return Wake::ready;
        if (rc == 0) return Wake::timeout;
    }
}

int StopSignals::take() const {
    signalfd_siginfo info{};
    if (::read(fd_.get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return SIGTERM;
    return static_cast<int>(info.ssi_signo);
}

void end_by_signal(int signal) {
    std::signal(signal, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    std::fflush(nullptr);
    // Pending once unblocked: delivered before sigprocmask returns.
    ::raise(signal);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::_exit(128 + signal);  // not reached
}

bool StopSignals::requested() const {
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

}  // namespace ferry::cli
