// ferry/throttled_counter.hpp: counting events that deserve a warning (connections refused,
// flows evicted) and saying when to report them, at most once per period, with the count.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "ferry/socket.hpp"

namespace ferry {

/// A warning that could repeat thousands of times a second (a flood of
/// connections while out of descriptors) becomes one line per period that
/// says how many times it happened, as a syslog "last message repeated N
/// times" or nginx's rate-limited logging would.
///
/// The first event after a quiet period is reported at once; the ones that
/// follow within `period` of a report are counted, and their count is due one
/// period after that report. The owner prints: add() and take_due() return
/// the count to report (0: nothing now), and next_due() says when a count
/// that is waiting becomes due, for the owner's timer.
///
/// Thread-safety: none; one owner thread.
class ThrottledCounter {
  public:
    /// The shortest time between two reports.
    explicit ThrottledCounter(Duration period = std::chrono::seconds(1)) noexcept
        : period_(period) {}

    /// Counts `n` events at `now`; returns the count to report now (this one
    /// and any that waited), or 0 while the last report is younger than the period.
    std::uint64_t add(Clock::time_point now, std::uint64_t n = 1) noexcept;

    /// The count that waited, once its period is over; 0 before that, or when
    /// nothing waits.
    std::uint64_t take_due(Clock::time_point now) noexcept;

    /// The count that waits, due or not (for a last report before the owner
    /// goes away); 0 when nothing waits.
    std::uint64_t take_waiting() noexcept;

    /// When the count that waits becomes due; nullopt when nothing waits.
    [[nodiscard]] std::optional<Clock::time_point> next_due() const noexcept;

    /// Every event counted since construction, reported or not.
    [[nodiscard]] std::uint64_t total() const noexcept { return total_; }

  private:
    Duration period_;
    std::uint64_t pending_ = 0;
    std::uint64_t total_ = 0;
    std::optional<Clock::time_point> last_report_;
};

}  // namespace ferry
