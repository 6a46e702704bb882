// The command line's numbers (cli/common/numbers): every kind reads its units,
// refuses what is not a number apart from what is out of range, never wraps a
// negative count, never prints DBL_MAX, and a duration it accepts always fits
// a Duration.
#include "common/numbers.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/command.hpp"

namespace ferry::cli {
namespace {

NumberSpec real(NumberKind kind, double min, double max) {
    NumberSpec spec;
    spec.kind = kind;
    spec.min = min;
    spec.max = max;
    return spec;
}

NumberSpec whole(NumberKind kind, std::uint64_t min, std::uint64_t max) {
    NumberSpec spec;
    spec.kind = kind;
    spec.whole = true;
    spec.whole_min = min;
    spec.whole_max = max;
    return spec;
}

const NumberSpec kTimeout = real(NumberKind::seconds, kMillisecond, kDay);

/// The value read_number() hands to CLI11, or "refused: <error>".
std::string read(std::string_view text, const NumberSpec& spec) {
    const NumberReading r = read_number(text, spec);
    if (r.value) {
        EXPECT_TRUE(r.error.empty()) << r.error;
        return *r.value;
    }
    return "refused: " + r.error;
}

TEST(Numbers, SecondsTakePlainNumbersAndUnits) {
    EXPECT_EQ(read("2.5", kTimeout), "2.5");
    EXPECT_EQ(read("10", kTimeout), "10");
    EXPECT_EQ(read("10s", kTimeout), "10");
    EXPECT_EQ(read("500ms", kTimeout), "0.5");
    EXPECT_EQ(read("250us", real(NumberKind::seconds, 0, kDay)), "0.00025");
    EXPECT_EQ(read("1m", kTimeout), "60");
    EXPECT_EQ(read("1min", kTimeout), "60");
    EXPECT_EQ(read("2h", kTimeout), "7200");
    EXPECT_EQ(read("1d", kTimeout), "86400");
    EXPECT_EQ(read("1.5s", kTimeout), "1.5");
    EXPECT_EQ(read(".5", kTimeout), "0.5");
    EXPECT_EQ(read("5.", kTimeout), "5");
    EXPECT_EQ(read("1e3", kTimeout), "1000");
    EXPECT_EQ(read("+3", kTimeout), "3");
}

TEST(Numbers, MillisecondsTakeTheSameUnits) {
    const NumberSpec ms = real(NumberKind::milliseconds, kMillisecond, 600000);
    EXPECT_EQ(read("200", ms), "200");
    EXPECT_EQ(read("1s", ms), "1000");
    EXPECT_EQ(read("250us", ms), "0.25");
    EXPECT_EQ(read("1m", ms), "60000");
}

TEST(Numbers, NotANumberIsSaidSo) {
    for (const char* text : {"nan", "NaN", "inf", "-inf", "infinity", "", " 1", "1 ", "0x10", "abc",
                             "1e", "10S", "10 s", "1..2", "-", ".", "e3", "1s2"}) {
        SCOPED_TRACE(text);
        const std::string got = read(text, kTimeout);
        EXPECT_EQ(got, "refused: '" + std::string(text) +
                           "' is not a duration (a number of seconds, or with a unit: 250us, "
                           "500ms, 10s, 1m, 2h, 1d)");
    }
}

TEST(Numbers, OutOfRangeIsNotTheSameMessageAsNotANumber) {
    EXPECT_EQ(read("1e9", kTimeout), "refused: 1e9 is out of range (0.001 s to 1 day)");
    EXPECT_EQ(read("abc", kTimeout),
              "refused: 'abc' is not a duration (a number of seconds, or with a unit: 250us, "
              "500ms, 10s, 1m, 2h, 1d)");
    EXPECT_EQ(read("-1", kTimeout), "refused: -1 is out of range (0.001 s to 1 day)");
    EXPECT_EQ(read("0", kTimeout), "refused: 0 is out of range (0.001 s to 1 day)");
    EXPECT_EQ(read("2d", kTimeout), "refused: 2d is out of range (0.001 s to 1 day)");
    // Beyond a double: out of range, not infinity.
    EXPECT_EQ(read("1e400", kTimeout), "refused: 1e400 is out of range (0.001 s to 1 day)");
}

TEST(Numbers, TheRangeIsWordsNeverDblMax) {
    EXPECT_EQ(limits_text(real(NumberKind::seconds, 0, kLongestDuration)), "0 s to 365 days");
    EXPECT_EQ(limits_text(real(NumberKind::seconds, 0.002, kHour)), "0.002 s to 1 h");
    EXPECT_EQ(limits_text(real(NumberKind::seconds, 0, 90)), "0 s to 90 s");
    EXPECT_EQ(limits_text(real(NumberKind::milliseconds, kMillisecond, 600000)),
              "0.001 ms to 10 min");
    EXPECT_EQ(limits_text(whole(NumberKind::size, 1, 16 * kMiB)), "1 byte to 16 MiB");
    EXPECT_EQ(limits_text(whole(NumberKind::size, 0, 65507)), "0 bytes to 65507 bytes");
    EXPECT_EQ(limits_text(whole(NumberKind::count, 1, 255)), "1 to 255");
    EXPECT_EQ(limits_text(real(NumberKind::rate, 0.001, 1e9)), "0.001 to 1000000000 per second");
    EXPECT_EQ(limits_text(real(NumberKind::probability, 0, 1)), "0 to 1");
    const std::string widest =
        limits_text(whole(NumberKind::integer, 0, std::numeric_limits<std::uint64_t>::max()));
    EXPECT_EQ(widest, "0 to 18446744073709551615");
}

TEST(Numbers, ANegativeCountIsRefusedNotWrapped) {
    const NumberSpec bytes = whole(NumberKind::size, 0, std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(read("-1", bytes),
              "refused: -1 is out of range (0 bytes to 18446744073709551615 bytes)");
    const NumberSpec tries = whole(NumberKind::count, 1, 255);
    EXPECT_EQ(read("-1", tries), "refused: -1 is out of range (1 to 255)");
    EXPECT_EQ(read("-1.5e3", tries), "refused: -1.5e3 is out of range (1 to 255)");
    EXPECT_EQ(read("-0", whole(NumberKind::count, 0, 9)), "0");
}

TEST(Numbers, WholeNumbersAreExactToTheLastOne) {
    const NumberSpec seed =
        whole(NumberKind::integer, 0, std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(read("18446744073709551615", seed), "18446744073709551615");
    EXPECT_EQ(read("18446744073709551616", seed),
              "refused: 18446744073709551616 is out of range (0 to 18446744073709551615)");
    EXPECT_EQ(read("1e30", seed), "refused: 1e30 is out of range (0 to 18446744073709551615)");
    const NumberSpec requests = whole(NumberKind::count, 1, std::uint64_t{1} << 53);
    EXPECT_EQ(read("9007199254740992", requests), "9007199254740992");
    EXPECT_EQ(read("9007199254740993", requests),
              "refused: 9007199254740993 is out of range (1 to 9007199254740992)");
}

TEST(Numbers, CountsTakeDecimalMultipliers) {
    const NumberSpec count = whole(NumberKind::count, 1, 1'000'000'000);
    EXPECT_EQ(read("100", count), "100");
    EXPECT_EQ(read("10k", count), "10000");
    EXPECT_EQ(read("10K", count), "10000");
    EXPECT_EQ(read("1.5k", count), "1500");
    EXPECT_EQ(read("1M", count), "1000000");
    EXPECT_EQ(read("1G", count), "1000000000");
    EXPECT_EQ(read("1e3", count), "1000");
    const std::string not_a_count =
        "is not a count (a whole number, or with k, M or G for thousands, millions, billions: "
        "100, 10k, 1M)";
    EXPECT_EQ(read("1.5", count), "refused: '1.5' " + not_a_count);
    EXPECT_EQ(read("1m", count), "refused: '1m' " + not_a_count);
    EXPECT_EQ(read("2G", count), "refused: 2G is out of range (1 to 1000000000)");
}

TEST(Numbers, SizesTakeBinaryMultipliers) {
    const NumberSpec size = whole(NumberKind::size, 1, kTiB);
    EXPECT_EQ(read("1500", size), "1500");
    EXPECT_EQ(read("64K", size), "65536");
    EXPECT_EQ(read("64k", size), "65536");
    EXPECT_EQ(read("1.5K", size), "1536");
    EXPECT_EQ(read("16M", size), "16777216");
    EXPECT_EQ(read("1G", size), "1073741824");
    EXPECT_EQ(read("1T", size), "1099511627776");
    EXPECT_EQ(read("0.3", size), "refused: '0.3' is not a whole number of bytes");
    EXPECT_EQ(read("2T", size), "refused: 2T is out of range (1 byte to 1 TiB)");
    EXPECT_EQ(read("64KiB", size),
              "refused: '64KiB' is not a size (a number of bytes, or with K, M, G or T for KiB, "
              "MiB, GiB, TiB: 1500, 64K, 16M)");
}

TEST(Numbers, MillisecondsIntoAWholeVariable) {
    const NumberSpec delay = whole(NumberKind::milliseconds, 1, 3'600'000);
    EXPECT_EQ(read("100", delay), "100");
    EXPECT_EQ(read("0.1s", delay), "100");  // 0.1 * 1000 is not exactly 100 in binary
    EXPECT_EQ(read("1000us", delay), "1");
    EXPECT_EQ(read("1h", delay), "3600000");
    EXPECT_EQ(read("1.5", delay), "refused: '1.5' is not a whole number of milliseconds");
    EXPECT_EQ(read("500us", delay), "refused: '500us' is not a whole number of milliseconds");
    EXPECT_EQ(read("2h", delay), "refused: 2h is out of range (1 ms to 1 h)");
}

TEST(Numbers, RatesProbabilitiesFractionsFactors) {
    const NumberSpec rate = real(NumberKind::rate, 0.001, 1e9);
    EXPECT_EQ(read("2.5k", rate), "2500");
    EXPECT_EQ(read("1M", rate), "1000000");
    EXPECT_EQ(read("0.5", rate), "0.5");
    EXPECT_EQ(read("2G", rate), "refused: 2G is out of range (0.001 to 1000000000 per second)");
    const NumberSpec drop = real(NumberKind::probability, 0, 1);
    EXPECT_EQ(read("0.25", drop), "0.25");
    EXPECT_EQ(read("1", drop), "1");
    EXPECT_EQ(read("1.5", drop), "refused: 1.5 is out of range (0 to 1)");
    EXPECT_EQ(read("half", drop),
              "refused: 'half' is not a probability (a number from 0 to 1, such as 0.25)");
    EXPECT_EQ(read("50%", drop),
              "refused: '50%' is not a probability (a number from 0 to 1, such as 0.25)");
    EXPECT_EQ(read("1k", real(NumberKind::factor, 1, 100)),
              "refused: '1k' is not a number (such as 2 or 1.5)");
}

TEST(Numbers, ARefusedTextIsPrintedOnOneShortLine) {
    const std::string got = read("1\n2", kTimeout);
    EXPECT_EQ(got.find('\n'), std::string::npos);
    EXPECT_NE(got.find("'1\\x0a2'"), std::string::npos) << got;
    const std::string long_one = read(std::string(5000, '7'), kTimeout);
    EXPECT_LT(long_one.size(), 120U) << long_one;
}

TEST(Numbers, TheLongestDurationFitsADuration) {
    // seconds() converts an accepted value; the largest must not overflow.
    const Duration longest = seconds(kLongestDuration);
    EXPECT_GT(longest.count(), 0);
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::hours>(longest).count(), 365 * 24);
    EXPECT_GT(std::chrono::duration<double>(Duration::max()).count(), 100 * kLongestDuration);
}

TEST(Numbers, ADeclarationThatCannotBeRightIsCaught) {
    EXPECT_THROW(check_spec(real(NumberKind::seconds, 0, 1e10)), std::logic_error);
    EXPECT_THROW(check_spec(real(NumberKind::milliseconds, 0, 1e14)), std::logic_error);
    EXPECT_THROW(check_spec(real(NumberKind::seconds, 2, 1)), std::logic_error);
    EXPECT_THROW(check_spec(real(NumberKind::seconds, -1, 1)), std::logic_error);
    EXPECT_THROW(check_spec(real(NumberKind::size, 0, 1)), std::logic_error);
    EXPECT_THROW(check_spec(whole(NumberKind::count, 5, 1)), std::logic_error);
    EXPECT_NO_THROW(check_spec(kTimeout));
}

// --- through CLI11, as the command declares them ------------------------------

struct Parsed {
    double timeout = 5;
    std::optional<unsigned> tries;
    std::size_t bytecount = 0;
    unsigned delay_ms = 100;
};

/// Parses `args` with one option of each shape; the error's text, or "" when it parsed.
std::string parse(std::vector<std::string> args, Parsed& into) {
    CLI::App app("test");
    add_number(&app, "--timeout", into.timeout, NumberKind::seconds, {kMillisecond, kDay},
               "seconds");
    add_number(&app, "--tries", into.tries, NumberKind::count, {1, 255}, "tries");
    add_number(&app, "--delay", into.delay_ms, NumberKind::milliseconds, {1, 3'600'000}, "ms");
    add_number(&app, "bytecount", into.bytecount, NumberKind::size, {0, kTiB}, "bytes");
    args.insert(args.begin(), "test");
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
        return e.what();
    }
    return {};
}

TEST(Numbers, AddNumberConvertsUnitsIntoTheVariable) {
    Parsed p;
    EXPECT_EQ(parse({"--timeout", "500ms", "--tries", "10k", "--delay", "1s", "64K"}, p),
              "--tries: 10k is out of range (1 to 255)");
    Parsed q;
    EXPECT_EQ(parse({"--timeout", "500ms", "--tries", "7", "--delay", "1s", "64K"}, q), "");
    EXPECT_DOUBLE_EQ(q.timeout, 0.5);
    EXPECT_EQ(q.tries, 7U);
    EXPECT_EQ(q.delay_ms, 1000U);
    EXPECT_EQ(q.bytecount, 65536U);
    Parsed defaults;
    EXPECT_EQ(parse({}, defaults), "");
    EXPECT_DOUBLE_EQ(defaults.timeout, 5);
    EXPECT_FALSE(defaults.tries.has_value());
}

TEST(Numbers, AddNumberRefusalsNameTheOption) {
    Parsed p;
    EXPECT_EQ(parse({"--timeout", "nan"}, p),
              "--timeout: 'nan' is not a duration (a number of seconds, or with a unit: 250us, "
              "500ms, 10s, 1m, 2h, 1d)");
    EXPECT_EQ(parse({"--timeout", "1e9"}, p), "--timeout: 1e9 is out of range (0.001 s to 1 day)");
    EXPECT_EQ(parse({"--tries", "-1"}, p), "--tries: -1 is out of range (1 to 255)");
    EXPECT_EQ(parse({"--timeout", ""}, p).substr(0, 26), "--timeout: '' is not a dur");
    EXPECT_EQ(parse({"-1"}, p), "bytecount: -1 is out of range (0 bytes to 1 TiB)");
}

TEST(Numbers, TheTypeNameIsTheKind) {
    CLI::App app("test");
    double timeout = 1;
    std::optional<std::uint64_t> seed;
    const CLI::Option* t =
        add_number(&app, "--timeout", timeout, NumberKind::seconds, {0, kDay}, "seconds")
            ->capture_default_str();
    const CLI::Option* s = add_number(&app, "--seed", seed, NumberKind::integer,
                                      {0, std::numeric_limits<std::uint64_t>::max()}, "seed");
    EXPECT_EQ(t->get_type_name(), "SECONDS");
    EXPECT_EQ(t->get_default_str(), "1");
    EXPECT_EQ(s->get_type_name(), "INTEGER");
}

}  // namespace
}  // namespace ferry::cli
