// Saturating conversions from numbers of seconds (or milliseconds) to Duration.
#include "ferry/duration.hpp"

#include <cerrno>
#include <cmath>
#include <string>

#include "ferry/error.hpp"

namespace ferry::detail {

Duration saturating_nanoseconds(double nanoseconds, double count, const char* unit) {
    // The count itself is checked too: count * factor may be finite (0 * inf is
    // NaN, but a tiny factor times a huge count is not) where the count is not.
    if (!std::isfinite(count) || std::isnan(nanoseconds))
        throw_errno(EINVAL, "a duration of " + std::to_string(count) + " " + unit);
    const double limit = double(kPracticallyNever.count());
    // Compared as doubles before any conversion: converting a double outside
    // the range of the integer type is undefined behaviour.
    if (nanoseconds >= limit) return kPracticallyNever;
    if (nanoseconds <= -limit) return -kPracticallyNever;
    return Duration(static_cast<Duration::rep>(std::llround(nanoseconds)));
}

}  // namespace ferry::detail
