// saturating_duration: numbers of seconds as Durations without overflow; NaN and infinity refused.
#include "ferry/duration.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ferry/error.hpp"

namespace ferry {
namespace {

using namespace std::chrono_literals;

TEST(SaturatingDuration, OrdinaryValuesConvertExactly) {
    EXPECT_EQ(saturating_duration(2.5), 2500ms);
    EXPECT_EQ(saturating_duration<std::milli>(100), 100ms);
    EXPECT_EQ(saturating_duration<std::micro>(7), 7us);
    EXPECT_EQ(saturating_duration(-1), -1s);
}

TEST(SaturatingDuration, HugeValuesArePracticallyNeverAndTinyOnesZero) {
    EXPECT_EQ(saturating_duration(1e300), kPracticallyNever);
    EXPECT_EQ(saturating_duration<std::milli>(1e300), kPracticallyNever);
    EXPECT_EQ(saturating_duration(-1e300), -kPracticallyNever);
    EXPECT_EQ(saturating_duration(std::numeric_limits<double>::max()), kPracticallyNever);
    EXPECT_EQ(saturating_duration(1e-20), Duration::zero());
    // A deadline from the longest wait stays far inside the clock's range.
    EXPECT_GT(Clock::now() + kPracticallyNever + kPracticallyNever, Clock::now());
}

TEST(SaturatingDuration, NotANumberAndInfinityAreRefusedNamingTheValue) {
    EXPECT_THROW((void)saturating_duration(std::nan("")), Error);
    EXPECT_THROW((void)saturating_duration(std::numeric_limits<double>::infinity()), Error);
    try {
        (void)saturating_duration<std::milli>(-std::numeric_limits<double>::infinity());
        FAIL() << "accepted -inf";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("-inf milliseconds"), std::string::npos) << e.what();
    }
}

TEST(ClampWait, KeepsAWaitBetweenZeroAndPracticallyNever) {
    EXPECT_EQ(clamp_wait(Duration::max()), kPracticallyNever);
    EXPECT_EQ(clamp_wait(-5s), Duration::zero());
    EXPECT_EQ(clamp_wait(3s), 3s);
}

}  // namespace
}  // namespace ferry
