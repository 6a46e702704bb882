// Internal to the ferry command: the one way a numeric option is declared, read and checked.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace ferry::cli {

/// What a numeric option measures. The kind decides which text is accepted,
/// the words of its errors, and the option's type name in --help and in
/// `ferry --option-table` (in brackets below): the table tells the numeric
/// options apart by it.
///
/// Every kind takes a plain decimal number (`2`, `0.25`, `1e3`) and refuses
/// anything else: `nan`, `inf`, hexadecimal, an empty string, spaces. A
/// number outside the option's limits, `-1` and `1e400` included, is refused
/// as out of range: never wrapped, never rounded to infinity.
enum class NumberKind {
    /// [SECONDS] a duration. A plain number is seconds (`2.5`); units as wrk
    /// and iperf3 users type them: `250us`, `500ms`, `10s`, `1m` or `1min`,
    /// `2h`, `1d`.
    seconds,
    /// [MILLISECONDS] a duration. A plain number is milliseconds; the same units.
    milliseconds,
    /// [RATE] events per second. `k`/`K`, `M`, `G` multiply by 1000, 10^6,
    /// 10^9 (`2.5k` = 2500), as in wrk2's -R and iperf3's -b.
    rate,
    /// [PROBABILITY] a chance, between 0 and 1.
    probability,
    /// [FRACTION] a part of a whole: 0.1 is 10 %.
    fraction,
    /// [FACTOR] a multiplier: 2, 1.5.
    factor,
    /// [SIZE] bytes, a whole number. `K`, `M`, `G`, `T` (either case) are
    /// binary as in iperf3: 64K = 65536 bytes, 1M = 1048576; `1.5K` = 1536.
    size,
    /// [COUNT] a whole number. `k`/`K`, `M`, `G` are decimal as in wrk: 10k = 10000.
    count,
    /// [INTEGER] a whole number that is no amount: a seed, a port number, a process ID.
    integer,
};

/// The type name of `kind`: SECONDS, MILLISECONDS, RATE, PROBABILITY,
/// FRACTION, FACTOR, SIZE, COUNT or INTEGER.
[[nodiscard]] std::string_view number_type_name(NumberKind kind);

/// The smallest and the largest value an option accepts, both included, in
/// its kind's plain unit: seconds, milliseconds, per second, bytes, or none.
template <class T>
struct Limits {
    T min;  ///< the smallest value accepted
    T max;  ///< the largest value accepted
};

/// Time spans in seconds, for the limits of SECONDS options.
inline constexpr double kMillisecond = 0.001;
inline constexpr double kMinute = 60;
inline constexpr double kHour = 3600;
inline constexpr double kDay = 86400;
/// The longest duration any option accepts: a year. Duration counts
/// nanoseconds in 64 bits (292 years), so seconds() of an accepted value
/// never overflows; a longer wait is surely a mistake, and an option that
/// needs "never" says which value means it (0, or leaving it out).
inline constexpr double kLongestDuration = 365 * kDay;

/// Binary multiples of a byte, for the limits of SIZE options.
inline constexpr std::uint64_t kKiB = 1024;
inline constexpr std::uint64_t kMiB = 1024 * kKiB;
inline constexpr std::uint64_t kGiB = 1024 * kMiB;
inline constexpr std::uint64_t kTiB = 1024 * kGiB;

/// A numeric option without its variable's type: what read_number() needs.
struct NumberSpec {
    NumberKind kind = NumberKind::count;
    /// The variable holds whole numbers: whole_min/whole_max are its limits.
    /// Otherwise min/max are.
    bool whole = false;
    double min = 0;               ///< limits of a real-valued option
    double max = 0;               ///< limits of a real-valued option
    std::uint64_t whole_min = 0;  ///< limits of a whole-valued option
    std::uint64_t whole_max = 0;  ///< limits of a whole-valued option
};

/// What read_number() makes of a value: the number in the kind's plain unit,
/// as text CLI11 converts into the variable exactly (`10s` → `10` for
/// SECONDS, `64K` → `65536` for SIZE), or the one-line reason it is refused.
struct NumberReading {
    std::optional<std::string> value;  ///< set when accepted
    std::string error;                 ///< set when refused, e.g. "'abc' is not a duration (...)"
};

/// Reads `text` as `spec` says. Refusals are worded for the user, without the
/// option's name (CLI11 puts "--timeout: " in front): "'nan' is not a
/// duration (a number of seconds, or with a unit: ...)", "1e9 is out of range
/// (0.001 s to 1 day)", "'1.5' is not a whole number of bytes". Never throws.
[[nodiscard]] NumberReading read_number(std::string_view text, const NumberSpec& spec);

/// The limits of `spec` in words, as the errors print them: "0.001 s to 1
/// day", "1 byte to 16 MiB", "1 to 255".
[[nodiscard]] std::string limits_text(const NumberSpec& spec);

/// Throws std::logic_error when `spec` cannot be right: min above max, a
/// duration beyond kLongestDuration, a negative minimum, a whole kind (size,
/// count, integer) on a variable that is not whole. A programming error in a
/// declaration, found the first time the command runs at all.
void check_spec(const NumberSpec& spec);

/// The CLI11 transform of a numeric option: replaces the text by read_number()'s
/// value, or refuses it with its error (a usage error, exit 2). Its own
/// description is empty, so the option's type name stays the kind's.
[[nodiscard]] CLI::Validator number_validator(const NumberSpec& spec);

/// The number type inside an option's variable: T, or U for std::optional<U>.
template <class T>
struct number_type {
    using type = T;
};
template <class U>
struct number_type<std::optional<U>> {
    using type = U;
};
template <class T>
using number_type_t = typename number_type<T>::type;

/// Declares the numeric option `names` of `cmd`, bound to `variable` (a
/// number, or a std::optional of one for an option without default), with
/// `kind` and `limits`: the one way the ferry command declares one. Chain
/// ->capture_default_str() and the rest as with add_option. Example:
///
///     add_number(cmd, "--timeout", o->timeout, NumberKind::seconds,
///                {kMillisecond, kDay}, "seconds to wait for the reply");
template <class T>
CLI::Option* add_number(CLI::App* cmd, const std::string& names, T& variable, NumberKind kind,
                        Limits<number_type_t<T>> limits, const std::string& description) {
    using V = number_type_t<T>;
    static_assert(std::is_arithmetic_v<V> && !std::is_same_v<V, bool>,
                  "a numeric option is bound to a number");
    NumberSpec spec;
    spec.kind = kind;
    if constexpr (std::is_integral_v<V>) {
        if constexpr (std::is_signed_v<V>)
            if (limits.min < 0) throw std::logic_error(names + ": a negative minimum");
        spec.whole = true;
        spec.whole_min = static_cast<std::uint64_t>(limits.min);
        spec.whole_max = static_cast<std::uint64_t>(limits.max);
    } else {
        spec.min = static_cast<double>(limits.min);
        spec.max = static_cast<double>(limits.max);
    }
    check_spec(spec);
    return cmd->add_option(names, variable, description)
        ->transform(number_validator(spec))
        ->type_name(std::string(number_type_name(kind)));
}

}  // namespace ferry::cli
