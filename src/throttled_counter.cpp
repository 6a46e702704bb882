// ThrottledCounter: at most one report per period, with the count of what happened in it.
#include "ferry/throttled_counter.hpp"

#include <utility>

namespace ferry {

std::uint64_t ThrottledCounter::add(Clock::time_point now, std::uint64_t n) noexcept {
    pending_ += n;
    total_ += n;
    return take_due(now);
}

std::uint64_t ThrottledCounter::take_due(Clock::time_point now) noexcept {
    if (pending_ == 0) return 0;
    if (last_report_ && now - *last_report_ < period_) return 0;
    last_report_ = now;
    return std::exchange(pending_, 0);
}

std::uint64_t ThrottledCounter::take_waiting() noexcept {
    return std::exchange(pending_, 0);
}

std::optional<Clock::time_point> ThrottledCounter::next_due() const noexcept {
    if (pending_ == 0) return std::nullopt;
    if (!last_report_) return Clock::now();  // not reached: add() reports the first at once
    return *last_report_ + period_;
}

}  // namespace ferry
