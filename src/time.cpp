// The deadline-bounded wait: the one place that turns a Deadline into a ppoll(2) timeout.
#include "ferry/time.hpp"

#include <cerrno>

#include "ferry/error.hpp"

namespace ferry {

Deadline deadline_after(std::optional<Duration> timeout) {
    if (!timeout) return std::nullopt;
    return Clock::now() + *timeout;
}

int poll_until(std::span<pollfd> fds, Deadline deadline, std::error_code& ec) noexcept {
    ec.clear();
    for (;;) {
        timespec ts{};
        timespec* limit = nullptr;
        if (deadline) {
            // Recomputed on every turn: after EINTR only the time left is waited.
            const auto left = std::max(Duration::zero(), *deadline - Clock::now());
            ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
            limit = &ts;
        }
        const int rc = ::ppoll(fds.data(), fds.size(), limit, nullptr);
        if (rc >= 0) return rc;
        if (errno == EINTR) continue;
        ec.assign(errno, std::system_category());
        return -1;
    }
}

int poll_until(std::span<pollfd> fds, Deadline deadline) {
    std::error_code ec;
    const int rc = poll_until(fds, deadline, ec);
    if (ec) throw Error(ec, "poll");
    return rc;
}

}  // namespace ferry
