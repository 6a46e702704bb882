// The three Poller backends. Each is small; they share this file so that the
// differences between select, poll and epoll can be read side by side.
#include "ferry/poller.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <unordered_map>
#include <vector>

#include "ferry/error.hpp"

namespace ferry {
namespace {

int timeout_ms(std::optional<Duration> timeout) {
    if (!timeout) return -1;
    // Round up: a 0.4 ms timeout must not become a busy 0 ms poll.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
    return static_cast<int>(std::clamp<std::int64_t>(ms, 0, INT32_MAX));
}

std::string fd_text(int fd) {
    return "descriptor " + std::to_string(fd);
}

class SelectPoller final : public Poller {
  public:
    void add(int fd, std::uint32_t interest) override {
        if (fd < 0 || fd >= FD_SETSIZE)
            throw_errno(EINVAL, "select: " + fd_text(fd) + " is beyond FD_SETSIZE (1024)");
        if (!interest_.emplace(fd, interest).second)
            throw_errno(EEXIST, "select add " + fd_text(fd));
    }
    void modify(int fd, std::uint32_t interest) override {
        const auto it = interest_.find(fd);
        if (it == interest_.end()) throw_errno(ENOENT, "select modify " + fd_text(fd));
        it->second = interest;
    }
    void remove(int fd) override { interest_.erase(fd); }

    std::span<const ReadyEvent> wait(std::optional<Duration> timeout) override {
        // No exceptional set: for a socket it means TCP urgent data (POLLPRI),
        // which no backend watches and which is no error (see events::error).
        // A pending error makes select(2) report the descriptor in the read
        // and write sets instead.
        fd_set in, out;
        FD_ZERO(&in);
        FD_ZERO(&out);
        int top = -1;
        for (const auto& [fd, want] : interest_) {
            if (want & events::readable) FD_SET(fd, &in);
            if (want & events::writable) FD_SET(fd, &out);
            top = std::max(top, fd);
        }
        timeval tv{};
        timeval* limit = nullptr;
        if (timeout) {
            const auto us = std::chrono::ceil<std::chrono::microseconds>(*timeout).count();
            tv.tv_sec = static_cast<time_t>(us / 1'000'000);
            tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
            limit = &tv;
        }
        ready_.clear();
        const int rc = ::select(top + 1, &in, &out, nullptr, limit);
        if (rc < 0 && errno == EINTR) return {};
        if (rc < 0) throw_errno("select");
        for (const auto& [fd, want] : interest_) {
            std::uint32_t got = 0;
            if (FD_ISSET(fd, &in)) got |= events::readable;
            if (FD_ISSET(fd, &out)) got |= events::writable;
            if (got != 0) ready_.push_back({fd, got});
        }
        return ready_;
    }
    Backend backend() const noexcept override { return Backend::select; }

  private:
    std::unordered_map<int, std::uint32_t> interest_;
    std::vector<ReadyEvent> ready_;
};

class PollPoller final : public Poller {
  public:
    void add(int fd, std::uint32_t interest) override {
        if (!index_.emplace(fd, fds_.size()).second) throw_errno(EEXIST, "poll add " + fd_text(fd));
        fds_.push_back({fd, to_poll(interest), 0});
    }
    void modify(int fd, std::uint32_t interest) override {
        const auto it = index_.find(fd);
        if (it == index_.end()) throw_errno(ENOENT, "poll modify " + fd_text(fd));
        fds_[it->second].events = to_poll(interest);
    }
    void remove(int fd) override {
        const auto it = index_.find(fd);
        if (it == index_.end()) return;
        // Swap with the last entry: O(1), and order does not matter to poll().
        const std::size_t slot = it->second;
        index_.erase(it);
        if (slot != fds_.size() - 1) {
            fds_[slot] = fds_.back();
            index_[fds_[slot].fd] = slot;
        }
        fds_.pop_back();
    }
    std::span<const ReadyEvent> wait(std::optional<Duration> timeout) override {
        ready_.clear();
        const int rc = ::poll(fds_.data(), fds_.size(), timeout_ms(timeout));
        if (rc < 0 && errno == EINTR) return {};
        if (rc < 0) throw_errno("poll");
        for (const pollfd& p : fds_) {
            if (p.revents == 0) continue;
            std::uint32_t got = 0;
            if (p.revents & POLLIN) got |= events::readable;
            if (p.revents & POLLOUT) got |= events::writable;
            if (p.revents & (POLLERR | POLLNVAL)) got |= events::error;
            if (p.revents & POLLHUP) got |= events::hangup;
            ready_.push_back({p.fd, got});
        }
        return ready_;
    }
    Backend backend() const noexcept override { return Backend::poll; }

  private:
    static short to_poll(std::uint32_t interest) {
        return static_cast<short>(((interest & events::readable) ? POLLIN : 0) |
                                  ((interest & events::writable) ? POLLOUT : 0));
    }
    std::vector<pollfd> fds_;
    std::unordered_map<int, std::size_t> index_;
    std::vector<ReadyEvent> ready_;
};

class EpollPoller final : public Poller {
  public:
    EpollPoller() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (!epoll_) throw_errno("epoll_create1");
        events_.resize(64);
    }
    void add(int fd, std::uint32_t interest) override {
        control(EPOLL_CTL_ADD, fd, interest, "add");
    }
    void modify(int fd, std::uint32_t interest) override {
        control(EPOLL_CTL_MOD, fd, interest, "modify");
    }
    void remove(int fd) override {
        // A descriptor already closed has left the set on its own; ENOENT/EBADF are fine here.
        epoll_event unused{};
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, &unused);
    }
    std::span<const ReadyEvent> wait(std::optional<Duration> timeout) override {
        ready_.clear();
        const int n = ::epoll_wait(epoll_.get(), events_.data(), static_cast<int>(events_.size()),
                                   timeout_ms(timeout));
        if (n < 0 && errno == EINTR) return {};
        if (n < 0) throw_errno("epoll_wait");
        for (int i = 0; i < n; ++i) {
            const std::uint32_t e = events_[static_cast<std::size_t>(i)].events;
            std::uint32_t got = 0;
            if (e & EPOLLIN) got |= events::readable;
            if (e & EPOLLOUT) got |= events::writable;
            if (e & EPOLLERR) got |= events::error;
            if (e & (EPOLLHUP | EPOLLRDHUP)) got |= events::hangup;
            ready_.push_back({events_[static_cast<std::size_t>(i)].data.fd, got});
        }
        // A full array means more may be waiting: grow it for the next round.
        if (static_cast<std::size_t>(n) == events_.size()) events_.resize(events_.size() * 2);
        return ready_;
    }
    Backend backend() const noexcept override { return Backend::epoll; }

  private:
    void control(int op, int fd, std::uint32_t interest, const char* what) {
        epoll_event ev{};
        ev.events = ((interest & events::readable) ? EPOLLIN : 0u) |
                    ((interest & events::writable) ? EPOLLOUT : 0u);
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0)
            throw_errno(std::string("epoll ") + what + " " + fd_text(fd));
    }
    Fd epoll_;
    std::vector<epoll_event> events_;
    std::vector<ReadyEvent> ready_;
};

}  // namespace

std::string_view backend_name(Backend backend) {
    switch (backend) {
        case Backend::select:
            return "select";
        case Backend::poll:
            return "poll";
        case Backend::epoll:
            return "epoll";
    }
    return "unknown";
}

std::optional<Backend> parse_backend(std::string_view name) {
    for (Backend b : {Backend::select, Backend::poll, Backend::epoll})
        if (backend_name(b) == name) return b;
    return std::nullopt;
}

std::unique_ptr<Poller> Poller::create(Backend backend) {
    switch (backend) {
        case Backend::select:
            return std::make_unique<SelectPoller>();
        case Backend::poll:
            return std::make_unique<PollPoller>();
        case Backend::epoll:
            return std::make_unique<EpollPoller>();
    }
    throw_errno(EINVAL, "unknown poller backend");
}

}  // namespace ferry
