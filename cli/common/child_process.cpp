#include "common/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "common/command.hpp"
#include "ferry/error.hpp"

extern char** environ;

namespace ferry::cli {
namespace {

int poll_ms(Clock::time_point deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

int exit_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

std::string self_executable() {
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n < 0) throw_errno("readlink /proc/self/exe");
    return std::string(path, static_cast<std::size_t>(n));
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& input,
                           const StopSignals* stop)
    : stop_(stop) {
    int out[2];
    int in[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw_errno("pipe");
    Fd out_read(out[0]), out_write(out[1]);
    if (::pipe2(in, O_CLOEXEC) != 0) throw_errno("pipe");
    Fd in_read(in[0]), in_write(in[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_read.get(), 0);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), 2);
    // The child must not inherit the signal mask of a server in this process.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> args;
    for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw_errno(rc, "spawn " + argv[0]);
    // A pidfd becomes readable when the child exits: waiting with a deadline needs no polling loop.
    // (The raw syscall: glibc 2.36's <sys/pidfd.h> lacks C linkage for C++.)
    process_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
    if (!process_) throw_errno("pidfd_open");

    // Input is small (a few lines), far below a pipe's capacity: one write, then EOF.
    if (!input.empty() && ::write(in_write.get(), input.data(), input.size()) < 0)
        throw_errno("write to child");
    output_ = std::move(out_read);
}

ChildProcess::~ChildProcess() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

std::optional<std::string> ChildProcess::read_line(Clock::time_point deadline) {
    for (;;) {
        const std::size_t newline = pending_.find('\n');
        if (newline != std::string::npos) {
            std::string line = pending_.substr(0, newline);
            pending_.erase(0, newline + 1);
            return line;
        }
        if (eof_) {
            if (pending_.empty()) return std::nullopt;
            return std::exchange(pending_, {});
        }
        pollfd p{output_.get(), POLLIN, 0};
        if (poll_until(p, deadline) == 0) throw Failure("a child process gave no output in time");
        char buffer[4096];
        const ssize_t n = ::read(output_.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read from child");
        if (n == 0) eof_ = true;
        pending_.append(buffer, static_cast<std::size_t>(n));
    }
}

std::vector<std::string> ChildProcess::read_rest(Clock::time_point deadline) {
    std::vector<std::string> lines;
    while (auto line = read_line(deadline))
        lines.push_back(std::move(*line));
    return lines;
}

int ChildProcess::stop(int signal, Clock::time_point deadline) {
    if (pid_ > 0) ::kill(pid_, signal);
    return wait(deadline);
}

int ChildProcess::wait(Clock::time_point deadline) {
    if (pid_ <= 0) return -1;
    pollfd p{process_.get(), POLLIN, 0};
    poll_until(p, deadline);
    int status = 0;
    if (p.revents == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        throw Failure("a child process did not exit in time");
    }
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return exit_status(status);
}

int ChildProcess::poll_until(pollfd& p, Clock::time_point deadline) const {
    pollfd fds[2] = {p, {stop_ ? stop_->fd() : -1, POLLIN, 0}};
    for (;;) {
        const int rc = ::poll(fds, 2, poll_ms(deadline));
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) throw_errno("poll");
        if (fds[1].revents != 0) throw Interrupted(stop_->take());
        p.revents = fds[0].revents;
        return rc;
    }
}

}  // namespace ferry::cli
