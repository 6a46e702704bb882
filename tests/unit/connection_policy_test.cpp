// ConnectionPolicy without sockets: states and times in, steps and expiries out, one test per
// transition of a server connection's life.
#include "ferry/server/connection_policy.hpp"

#include <gtest/gtest.h>

namespace ferry {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kHighWater = 100;

ServerLimits test_limits() {
    ServerLimits limits;
    limits.output_high_water = kHighWater;
    limits.stalled_timeout = 10s;
    limits.idle_timeout = 300s;
    limits.drain_timeout = 5s;
    return limits;
}

class ConnectionPolicyTest : public ::testing::Test {
  protected:
    ConnectionPolicyTest() { c.last_activity = t0; }

    ConnectionPolicy policy{test_limits()};
    ConnectionState c;
    const Clock::time_point t0 = Clock::time_point{} + 1000s;  // any fixed instant
};

TEST_F(ConnectionPolicyTest, AFreshConnectionReadsAndHasNothingToWrite) {
    EXPECT_EQ(policy.settle(c, 0, t0), ConnectionStep::serve);
    EXPECT_TRUE(policy.wants_read(c, 0));
    EXPECT_FALSE(policy.wants_write(c, 0));
    EXPECT_EQ(policy.expiry(c, t0), ConnectionExpiry::none);
}

TEST_F(ConnectionPolicyTest, QueuedRepliesAreWrittenWhileReadingGoesOn) {
    EXPECT_EQ(policy.settle(c, 10, t0), ConnectionStep::serve);
    EXPECT_TRUE(policy.wants_write(c, 10));
    EXPECT_TRUE(policy.wants_read(c, 10));
}

TEST_F(ConnectionPolicyTest, TheHighWaterMarkIsTheLastSizeThatStillReads) {
    EXPECT_TRUE(policy.wants_read(c, kHighWater));
    EXPECT_FALSE(policy.wants_read(c, kHighWater + 1));
}

TEST_F(ConnectionPolicyTest, AboveTheHighWaterMarkTheStallClockStartsAndKeepsItsStart) {
    EXPECT_EQ(policy.settle(c, kHighWater + 1, t0), ConnectionStep::serve);
    ASSERT_TRUE(c.stalled_since);
    EXPECT_EQ(*c.stalled_since, t0);
    policy.settle(c, kHighWater + 50, t0 + 3s);  // still above: the clock runs on
    EXPECT_EQ(*c.stalled_since, t0);
}

TEST_F(ConnectionPolicyTest, BackAtTheHighWaterMarkTheStallClockStops) {
    policy.settle(c, kHighWater + 1, t0);
    policy.settle(c, kHighWater, t0 + 1s);
    EXPECT_FALSE(c.stalled_since);
    EXPECT_TRUE(policy.wants_read(c, kHighWater));
}

TEST_F(ConnectionPolicyTest, StalledForTheStalledTimeoutExpires) {
    policy.settle(c, kHighWater + 1, t0);
    c.last_activity = t0 + 9s;  // bytes may still trickle out: a stall is not idleness
    EXPECT_EQ(policy.expiry(c, t0 + 10s - 1ns), ConnectionExpiry::none);
    EXPECT_EQ(policy.expiry(c, t0 + 10s), ConnectionExpiry::stalled);
    EXPECT_EQ(policy.next_deadline(c), t0 + 10s);
}

TEST_F(ConnectionPolicyTest, NoByteEitherWayForTheIdleTimeoutExpires) {
    EXPECT_EQ(policy.expiry(c, t0 + 300s - 1ns), ConnectionExpiry::none);
    EXPECT_EQ(policy.expiry(c, t0 + 300s), ConnectionExpiry::idle);
    EXPECT_EQ(policy.next_deadline(c), t0 + 300s);
    c.last_activity = t0 + 200s;  // activity moves the idle deadline
    EXPECT_EQ(policy.expiry(c, t0 + 300s), ConnectionExpiry::none);
    EXPECT_EQ(policy.next_deadline(c), t0 + 500s);
}

TEST_F(ConnectionPolicyTest, WithoutAnIdleTimeoutAQuietConnectionNeverExpires) {
    ServerLimits limits = test_limits();
    limits.idle_timeout.reset();
    const ConnectionPolicy patient(limits);
    EXPECT_EQ(patient.expiry(c, t0 + 1000h), ConnectionExpiry::none);
    EXPECT_FALSE(patient.next_deadline(c));
}

TEST_F(ConnectionPolicyTest, ThePeersEndOfStreamClosesOnceEveryReplyIsOut) {
    c.peer_done = true;
    EXPECT_EQ(policy.settle(c, 10, t0), ConnectionStep::serve);  // a half-closed peer is answered
    EXPECT_FALSE(policy.wants_read(c, 10));
    EXPECT_TRUE(policy.wants_write(c, 10));
    EXPECT_EQ(policy.settle(c, 0, t0), ConnectionStep::close);
}

TEST_F(ConnectionPolicyTest, DrainingStopsReadingRequests) {
    policy.start_draining(t0);
    EXPECT_TRUE(policy.draining());
    EXPECT_EQ(policy.settle(c, 10, t0), ConnectionStep::serve);
    EXPECT_FALSE(policy.wants_read(c, 10));
    EXPECT_TRUE(policy.wants_write(c, 10));
}

TEST_F(ConnectionPolicyTest, DrainingShutsTheWritingSideOnceAnsweredThenAwaitsThePeer) {
    policy.start_draining(t0);
    EXPECT_EQ(policy.settle(c, 0, t0), ConnectionStep::shut_write);
    EXPECT_TRUE(c.write_shut);
    // Shut once: from now on it only reads (to discard) until the peer closes.
    EXPECT_EQ(policy.settle(c, 0, t0), ConnectionStep::serve);
    EXPECT_TRUE(policy.wants_read(c, 0));
    EXPECT_FALSE(policy.wants_write(c, 0));
}

TEST_F(ConnectionPolicyTest, DrainingAConnectionWhosePeerIsDoneClosesIt) {
    policy.start_draining(t0);
    c.peer_done = true;
    EXPECT_EQ(policy.settle(c, 0, t0), ConnectionStep::close);
    EXPECT_FALSE(c.write_shut);
}

TEST_F(ConnectionPolicyTest, TheDrainTimeoutEndsEveryConnectionAndIdlenessNoLongerCounts) {
    policy.start_draining(t0);
    ASSERT_TRUE(policy.drain_deadline());
    EXPECT_EQ(*policy.drain_deadline(), t0 + 5s);
    c.last_activity = t0 - 400s;  // idle long ago: the drain bounds it now, not idleness
    EXPECT_EQ(policy.expiry(c, t0 + 1s), ConnectionExpiry::none);
    EXPECT_EQ(policy.next_deadline(c), t0 + 5s);
    EXPECT_EQ(policy.expiry(c, t0 + 5s), ConnectionExpiry::drain_over);
}

TEST_F(ConnectionPolicyTest, TheDrainDeadlineIsSetOnce) {
    policy.start_draining(t0);
    policy.start_draining(t0 + 3s);
    EXPECT_EQ(*policy.drain_deadline(), t0 + 5s);
}

TEST_F(ConnectionPolicyTest, AStallRunningOutWhileDrainingIsStillAStall) {
    policy.settle(c, kHighWater + 1, t0);
    policy.start_draining(t0 + 8s);
    EXPECT_EQ(policy.next_deadline(c), t0 + 10s);  // the stall ends before the drain
    EXPECT_EQ(policy.expiry(c, t0 + 10s), ConnectionExpiry::stalled);
    EXPECT_EQ(policy.expiry(c, t0 + 13s), ConnectionExpiry::drain_over);  // the drain first
}

TEST_F(ConnectionPolicyTest, NotDrainingThereIsNoDrainDeadline) {
    EXPECT_FALSE(policy.draining());
    EXPECT_FALSE(policy.drain_deadline());
}

}  // namespace
}  // namespace ferry
