// ferry/time.hpp: the library's clock, durations and deadlines, and the one wait bounded by a
// deadline that every blocking step uses.
#pragma once

#include <poll.h>

#include <chrono>
#include <optional>
#include <span>
#include <system_error>

namespace ferry {

/// Every timeout and period of the library, to the nanosecond.
using Duration = std::chrono::nanoseconds;
/// Monotonic: deadlines never move when the wall clock is set.
using Clock = std::chrono::steady_clock;
/// An absolute point by which an operation must finish; nullopt = no limit.
using Deadline = std::optional<Clock::time_point>;

/// The deadline `timeout` from now; nullopt (no limit) for no timeout.
[[nodiscard]] Deadline deadline_after(std::optional<Duration> timeout);

/// ppoll(2) on `fds` until one of them is ready or `deadline` passes
/// (nullopt: no limit), to the nanosecond. EINTR is retried with the time
/// left, so a signal never ends the wait early; a deadline already past polls
/// once without waiting. Returns how many descriptors have revents set, 0
/// once the deadline has passed. Throws Error("poll: ...") when ppoll fails
/// otherwise (EINVAL, ENOMEM).
int poll_until(std::span<pollfd> fds, Deadline deadline);
/// The same without exceptions: -1 and `ec` set (std::system_category) where
/// the other throws; `ec` is cleared otherwise.
int poll_until(std::span<pollfd> fds, Deadline deadline, std::error_code& ec) noexcept;

}  // namespace ferry
