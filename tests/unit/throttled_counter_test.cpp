// ThrottledCounter: the first event at once, then at most one report per period, with the count.
#include "ferry/throttled_counter.hpp"

#include <gtest/gtest.h>

namespace ferry {
namespace {

using namespace std::chrono_literals;

TEST(ThrottledCounter, TheFirstIsReportedAtOnceAndTheRestOncePerPeriodWithTheirCount) {
    ThrottledCounter counter(1s);
    const Clock::time_point t0 = Clock::now();
    EXPECT_EQ(counter.add(t0), 1u);
    EXPECT_FALSE(counter.next_due());
    for (int i = 1; i <= 1000; ++i)
        EXPECT_EQ(counter.add(t0 + i * 500us), 0u);
    ASSERT_TRUE(counter.next_due());
    EXPECT_EQ(*counter.next_due(), t0 + 1s);
    EXPECT_EQ(counter.take_due(t0 + 999ms), 0u);
    EXPECT_EQ(counter.take_due(t0 + 1s), 1000u);
    EXPECT_FALSE(counter.next_due());
    EXPECT_EQ(counter.total(), 1001u);
}

TEST(ThrottledCounter, AnEventAfterAQuietPeriodIsReportedAtOnce) {
    ThrottledCounter counter(1s);
    const Clock::time_point t0 = Clock::now();
    counter.add(t0);
    EXPECT_EQ(counter.add(t0 + 3s, 5), 5u);
    EXPECT_EQ(counter.take_due(t0 + 10s), 0u);  // nothing waits
}

TEST(ThrottledCounter, WhatWaitsCanBeTakenBeforeItIsDue) {
    ThrottledCounter counter(1s);
    const Clock::time_point t0 = Clock::now();
    counter.add(t0);
    counter.add(t0 + 1ms, 7);
    EXPECT_EQ(counter.take_waiting(), 7u);
    EXPECT_FALSE(counter.next_due());
    EXPECT_EQ(counter.take_waiting(), 0u);
}

}  // namespace
}  // namespace ferry
