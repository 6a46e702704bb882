// Internal to the ferry command: reading numeric options, one grammar for all of them.
#include "common/numbers.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace ferry::cli {
namespace {

/// A number as typed: a sign, then digits with an optional point and exponent
/// (what from_chars reads), then a suffix (a unit or a multiplier, maybe none).
struct Scanned {
    bool negative = false;
    std::string_view magnitude;
    std::string_view suffix;
    bool plain_digits = false;  ///< no point and no exponent: read exactly as an integer
};

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/// Our own grammar first, so that nothing from_chars or strtod would also
/// take (nan, inf, hexadecimal, spaces) ever reaches them.
std::optional<Scanned> scan(std::string_view text) {
    Scanned s;
    std::size_t i = 0;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
        s.negative = text[i] == '-';
        ++i;
    }
    const std::size_t start = i;
    std::size_t digits = 0;
    while (i < text.size() && is_digit(text[i])) {
        ++i;
        ++digits;
    }
    bool point = false;
    if (i < text.size() && text[i] == '.') {
        point = true;
        ++i;
        while (i < text.size() && is_digit(text[i])) {
            ++i;
            ++digits;
        }
    }
    if (digits == 0) return std::nullopt;
    bool exponent = false;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        std::size_t j = i + 1;
        if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
        if (j < text.size() && is_digit(text[j])) {
            while (j < text.size() && is_digit(text[j]))
                ++j;
            i = j;
            exponent = true;
        }
    }
    s.magnitude = text.substr(start, i - start);
    s.suffix = text.substr(i);
    s.plain_digits = !point && !exponent;
    return s;
}

/// A suffix's meaning: multiply by `times`, divide by `per` (whole numbers, so
/// that 500us of a MILLISECONDS option is exactly 0.5 and a whole count stays exact).
struct Scale {
    std::uint64_t times = 1;
    std::uint64_t per = 1;
};

std::optional<Scale> duration_scale(std::string_view suffix, std::uint64_t base_ns) {
    struct Unit {
        std::string_view name;
        std::uint64_t ns;
    };
    static constexpr Unit kUnits[] = {
        {"", 0},  // the plain number: the option's own unit
        {"us", 1'000},
        {"ms", 1'000'000},
        {"s", 1'000'000'000},
        {"m", 60'000'000'000},
        {"min", 60'000'000'000},
        {"h", 3'600'000'000'000},
        {"d", 86'400'000'000'000},
    };
    for (const Unit& unit : kUnits) {
        if (unit.name != suffix) continue;
        if (unit.ns == 0) return Scale{};
        if (unit.ns >= base_ns) return Scale{unit.ns / base_ns, 1};
        return Scale{1, base_ns / unit.ns};
    }
    return std::nullopt;
}

std::optional<Scale> scale_of(NumberKind kind, std::string_view suffix) {
    if (suffix.empty()) return Scale{};
    switch (kind) {
        case NumberKind::seconds:
            return duration_scale(suffix, 1'000'000'000);
        case NumberKind::milliseconds:
            return duration_scale(suffix, 1'000'000);
        case NumberKind::rate:
        case NumberKind::count:
            if (suffix == "k" || suffix == "K") return Scale{1'000, 1};
            if (suffix == "M") return Scale{1'000'000, 1};
            if (suffix == "G") return Scale{1'000'000'000, 1};
            return std::nullopt;
        case NumberKind::size:
            if (suffix.size() != 1) return std::nullopt;
            switch (suffix[0]) {
                case 'k':
                case 'K':
                    return Scale{kKiB, 1};
                case 'm':
                case 'M':
                    return Scale{kMiB, 1};
                case 'g':
                case 'G':
                    return Scale{kGiB, 1};
                case 't':
                case 'T':
                    return Scale{kTiB, 1};
                default:
                    return std::nullopt;
            }
        case NumberKind::probability:
        case NumberKind::fraction:
        case NumberKind::factor:
        case NumberKind::integer:
            return std::nullopt;
    }
    return std::nullopt;
}

/// What a value of `kind` looks like, for the error that says it is not one.
std::string_view what_it_is(NumberKind kind) {
    switch (kind) {
        case NumberKind::seconds:
            return "a duration (a number of seconds, or with a unit: 250us, 500ms, 10s, 1m, 2h, "
                   "1d)";
        case NumberKind::milliseconds:
            return "a duration (a number of milliseconds, or with a unit: 250us, 500ms, 10s, 1m)";
        case NumberKind::rate:
            return "a rate (a number per second, or with k, M or G for thousands, millions, "
                   "billions: 500, 2.5k, 1M)";
        case NumberKind::probability:
            return "a probability (a number from 0 to 1, such as 0.25)";
        case NumberKind::fraction:
            return "a fraction (a number such as 0.1)";
        case NumberKind::factor:
            return "a number (such as 2 or 1.5)";
        case NumberKind::size:
            return "a size (a number of bytes, or with K, M, G or T for KiB, MiB, GiB, TiB: "
                   "1500, 64K, 16M)";
        case NumberKind::count:
            return "a count (a whole number, or with k, M or G for thousands, millions, "
                   "billions: 100, 10k, 1M)";
        case NumberKind::integer:
            return "a whole number";
    }
    return "a number";
}

/// The unit a whole-number refusal names: "'1.5' is not a whole number of bytes".
std::string_view whole_unit(NumberKind kind) {
    switch (kind) {
        case NumberKind::seconds:
            return " of seconds";
        case NumberKind::milliseconds:
            return " of milliseconds";
        case NumberKind::size:
            return " of bytes";
        case NumberKind::rate:
            return " per second";
        default:
            return "";
    }
}

/// The text as typed, safe to print on one line: control characters escaped,
/// a very long text cut.
std::string printable(std::string_view text) {
    constexpr std::size_t kLongest = 40;
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < kLongest; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", c);
        else
            out += static_cast<char>(c);
    }
    if (text.size() > kLongest) out += "...";
    return out;
}

std::string number_words(double value) {
    return fmt::format("{}", value);
}

/// A duration as a person writes it: "0.001 s", "90 s", "10 min", "1 h", "1 day".
std::string duration_words(double s) {
    if (s >= kDay && std::fmod(s, kDay) == 0) {
        const double days = s / kDay;
        return fmt::format("{} day{}", days, days == 1 ? "" : "s");
    }
    if (s >= kHour && std::fmod(s, kHour) == 0) return fmt::format("{} h", s / kHour);
    if (s >= kMinute && std::fmod(s, kMinute) == 0) return fmt::format("{} min", s / kMinute);
    return fmt::format("{} s", s);
}

std::string milliseconds_words(double ms) {
    if (ms >= 1000) return duration_words(ms / 1000);
    return fmt::format("{} ms", ms);
}

/// Bytes in the largest binary unit that divides them: "1 byte", "65507 bytes", "16 MiB".
std::string bytes_words(std::uint64_t n) {
    if (n == 1) return "1 byte";
    static constexpr std::pair<std::uint64_t, std::string_view> kUnits[] = {
        {kTiB, "TiB"}, {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
    for (const auto& [unit, name] : kUnits)
        if (n >= unit && n % unit == 0) return fmt::format("{} {}", n / unit, name);
    return fmt::format("{} bytes", n);
}

}  // namespace

std::string_view number_type_name(NumberKind kind) {
    switch (kind) {
        case NumberKind::seconds:
            return "SECONDS";
        case NumberKind::milliseconds:
            return "MILLISECONDS";
        case NumberKind::rate:
            return "RATE";
        case NumberKind::probability:
            return "PROBABILITY";
        case NumberKind::fraction:
            return "FRACTION";
        case NumberKind::factor:
            return "FACTOR";
        case NumberKind::size:
            return "SIZE";
        case NumberKind::count:
            return "COUNT";
        case NumberKind::integer:
            return "INTEGER";
    }
    return "NUMBER";
}

std::string limits_text(const NumberSpec& spec) {
    const double min = spec.whole ? static_cast<double>(spec.whole_min) : spec.min;
    const double max = spec.whole ? static_cast<double>(spec.whole_max) : spec.max;
    switch (spec.kind) {
        case NumberKind::seconds:
            return duration_words(min) + " to " + duration_words(max);
        case NumberKind::milliseconds:
            return milliseconds_words(min) + " to " + milliseconds_words(max);
        case NumberKind::rate:
            return fmt::format("{} to {} per second", number_words(min), number_words(max));
        case NumberKind::size:
            return bytes_words(spec.whole_min) + " to " + bytes_words(spec.whole_max);
        default:
            if (spec.whole) return fmt::format("{} to {}", spec.whole_min, spec.whole_max);
            return number_words(min) + " to " + number_words(max);
    }
}

NumberReading read_number(std::string_view text, const NumberSpec& spec) {
    const auto refused = [](std::string why) {
        return NumberReading{std::nullopt, std::move(why)};
    };
    const auto not_a_number = [&] {
        return refused(fmt::format("'{}' is not {}", printable(text), what_it_is(spec.kind)));
    };
    const auto out_of_range = [&] {
        return refused(fmt::format("{} is out of range ({})", printable(text), limits_text(spec)));
    };
    const auto not_whole = [&] {
        if (spec.kind == NumberKind::count || spec.kind == NumberKind::integer)
            return not_a_number();
        return refused(
            fmt::format("'{}' is not a whole number{}", printable(text), whole_unit(spec.kind)));
    };

    const std::optional<Scanned> s = scan(text);
    if (!s) return not_a_number();
    const std::optional<Scale> scale = scale_of(spec.kind, s->suffix);
    if (!scale) return not_a_number();
    const char* first = s->magnitude.data();
    const char* last = first + s->magnitude.size();

    if (spec.whole) {
        std::uint64_t n = 0;
        if (s->plain_digits) {
            // Exact: no detour through a double, so 2^64 - 1 is still itself.
            const auto [end, ec] = std::from_chars(first, last, n);
            if (ec == std::errc::result_out_of_range) return out_of_range();
            if (ec != std::errc() || end != last) return not_a_number();
            if (s->negative && n != 0) return out_of_range();
            if (n % scale->per != 0) return not_whole();
            n /= scale->per;
            if (n > std::numeric_limits<std::uint64_t>::max() / scale->times) return out_of_range();
            n *= scale->times;
        } else {
            double d = 0;
            const auto [end, ec] = std::from_chars(first, last, d);
            if (ec == std::errc::result_out_of_range) return out_of_range();
            if (ec != std::errc() || end != last) return not_a_number();
            d = d * static_cast<double>(scale->times) / static_cast<double>(scale->per);
            if (s->negative && d != 0) return out_of_range();
            // 2^64: the first double above every uint64_t.
            if (!(d < 18446744073709551616.0)) return out_of_range();
            const double whole = std::round(d);
            // 0.1s is 100 ms though 0.1 * 1000 is not exactly 100 in binary.
            if (std::fabs(d - whole) > 1e-9 * std::max(1.0, d)) return not_whole();
            n = static_cast<std::uint64_t>(whole);
        }
        if (n < spec.whole_min || n > spec.whole_max) return out_of_range();
        return {std::to_string(n), {}};
    }

    double d = 0;
    const auto [end, ec] = std::from_chars(first, last, d);
    if (ec == std::errc::result_out_of_range) return out_of_range();
    if (ec != std::errc() || end != last) return not_a_number();
    double value = d * static_cast<double>(scale->times) / static_cast<double>(scale->per);
    if (s->negative) value = -value;
    if (value == 0) value = 0;  // never "-0"
    if (!std::isfinite(value) || value < spec.min || value > spec.max) return out_of_range();
    return {fmt::format("{}", value), {}};
}

void check_spec(const NumberSpec& spec) {
    const auto wrong = [&](std::string_view why) {
        throw std::logic_error(fmt::format("a {} option: {}", number_type_name(spec.kind), why));
    };
    const bool whole_kind = spec.kind == NumberKind::size || spec.kind == NumberKind::count ||
                            spec.kind == NumberKind::integer;
    if (whole_kind && !spec.whole) wrong("bound to a variable that is not a whole number");
    double max = 0;
    if (spec.whole) {
        if (spec.whole_min > spec.whole_max) wrong("its minimum is above its maximum");
        max = static_cast<double>(spec.whole_max);
    } else {
        if (!(std::isfinite(spec.min) && std::isfinite(spec.max) && spec.min >= 0 &&
              spec.min <= spec.max))
            wrong("its limits are not 0 <= min <= max");
        max = spec.max;
    }
    if (spec.kind == NumberKind::seconds && max > kLongestDuration)
        wrong("its maximum is beyond the longest duration");
    if (spec.kind == NumberKind::milliseconds && max > kLongestDuration * 1000)
        wrong("its maximum is beyond the longest duration");
}

CLI::Validator number_validator(const NumberSpec& spec) {
    return CLI::Validator(
        [spec](std::string& text) -> std::string {
            NumberReading reading = read_number(text, spec);
            if (!reading.value) return reading.error;
            text = std::move(*reading.value);
            return {};
        },
        "", "");
}

}  // namespace ferry::cli
