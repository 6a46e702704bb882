// ferry/duration.hpp: numbers of seconds or milliseconds turned into a Duration without
// overflow, where a huge value means "practically never".
#pragma once

#include <chrono>
#include <ratio>

#include "ferry/socket.hpp"

namespace ferry {

/// The longest Duration ferry waits for: ten years, which stands for "practically
/// never". Short enough that `Clock::now() + kPracticallyNever` (and a sum of two
/// of them) stays far inside Clock's range, so a deadline computed from it never
/// overflows.
inline constexpr Duration kPracticallyNever = std::chrono::hours(24 * 3650);

/// `count` units of `Period` (seconds by default) as a Duration, saturated: a
/// value beyond ±kPracticallyNever is ±kPracticallyNever, and a value that would
/// round to a fraction of a nanosecond is 0. Never overflows, unlike a
/// duration_cast of a huge double (undefined behaviour).
///
/// Errors: Error(EINVAL) for a count that is not finite (NaN, infinity), which
/// names the value.
template <class Period = std::ratio<1>>
[[nodiscard]] Duration saturating_duration(double count);

/// `d` clamped to [0, kPracticallyNever]: a negative wait is no wait, a longer
/// one practically never.
[[nodiscard]] constexpr Duration clamp_wait(Duration d) noexcept {
    if (d < Duration::zero()) return Duration::zero();
    return d > kPracticallyNever ? kPracticallyNever : d;
}

namespace detail {
/// The work of saturating_duration on a count of nanoseconds.
[[nodiscard]] Duration saturating_nanoseconds(double nanoseconds, double count, const char* unit);
}  // namespace detail

template <class Period>
Duration saturating_duration(double count) {
    constexpr double kNanosecondsPerUnit = double(Period::num) * 1e9 / double(Period::den);
    const char* unit = std::ratio_equal_v<Period, std::ratio<1>> ? "seconds"
                       : std::ratio_equal_v<Period, std::milli>  ? "milliseconds"
                       : std::ratio_equal_v<Period, std::micro>  ? "microseconds"
                                                                 : "units";
    return detail::saturating_nanoseconds(count * kNanosecondsPerUnit, count, unit);
}

}  // namespace ferry
