// EventLoop: descriptors, timers, posted work, signals, and the stale-event rule.
#include "ferry/event_loop.hpp"

#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ferry/error.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

class EventLoopTest : public FdLeakCheck, public ::testing::WithParamInterface<Backend> {};

/// Runs rounds until `done()` holds or kGuard has passed; false on the guard.
/// A bound that does not rely on the loop's timers, which some tests check.
template <class Done>
bool run_until(EventLoop& loop, Done done) {
    const auto deadline = Clock::now() + kGuard;
    while (!done()) {
        const auto now = Clock::now();
        if (now >= deadline) return false;
        loop.run_once(deadline - now);
    }
    return true;
}

bool never() {
    return false;
}

TEST_P(EventLoopTest, HandlerRunsWhenItsDescriptorIsReadable) {
    EventLoop loop(GetParam());
    auto [a, b] = Socket::pair();
    std::string got;
    loop.watch(a.fd(), events::readable, [&](std::uint32_t) {
        char buffer[16];
        got.append(buffer, *a.recv(buffer, sizeof buffer));
        loop.stop();
    });
    b.send_all("ping");
    loop.add_timer(kGuard, [&] { loop.stop(); });
    loop.run();
    EXPECT_EQ(got, "ping");
    loop.unwatch(a.fd());
}

/// Counts what reaches its member handler, for the direct-handler watch.
struct DirectCounter {
    EventLoop* loop = nullptr;
    Socket* socket = nullptr;
    std::string got;
    int last_fd = -1;
    void on_ready(int fd, std::uint32_t ready) {
        last_fd = fd;
        if (!(ready & events::readable)) return;
        char buffer[16];
        got.append(buffer, *socket->recv(buffer, sizeof buffer));
        loop->unwatch(fd);  // its own watch, from inside the call
    }
};

TEST_P(EventLoopTest, ADirectHandlerIsCalledWithItsDescriptorAndCanUnwatchItself) {
    EventLoop loop(GetParam());
    auto [a, b] = Socket::pair();
    DirectCounter counter{&loop, &a, {}, -1};
    loop.watch<&DirectCounter::on_ready>(a.fd(), events::readable, &counter);
    b.send_all("ping");
    ASSERT_TRUE(run_until(loop, [&] { return !counter.got.empty(); }));
    EXPECT_EQ(counter.got, "ping");
    EXPECT_EQ(counter.last_fd, a.fd());
    EXPECT_FALSE(loop.watching(a.fd()));
    // Watched again with a function object: the direct handler is gone.
    int calls = 0;
    loop.watch(a.fd(), events::readable, [&](std::uint32_t) {
        ++calls;
        char buffer[16];
        (void)a.recv(buffer, sizeof buffer);
    });
    b.send_all("pong");
    ASSERT_TRUE(run_until(loop, [&] { return calls > 0; }));
    EXPECT_EQ(counter.got, "ping");
    loop.unwatch(a.fd());
}

TEST_P(EventLoopTest, NowIsOneClockReadingPerRoundSharedByItsHandlers) {
    EventLoop loop(GetParam());
    auto [a1, b1] = Socket::pair();
    auto [a2, b2] = Socket::pair();
    std::vector<Clock::time_point> seen;
    const auto record = [&](Socket& s) {
        return [&](std::uint32_t) {
            char buffer[16];
            (void)s.recv(buffer, sizeof buffer);
            seen.push_back(loop.now());
        };
    };
    loop.watch(a1.fd(), events::readable, record(a1));
    loop.watch(a2.fd(), events::readable, record(a2));
    const auto before = Clock::now();
    b1.send_all("x");
    b2.send_all("x");
    // Both are ready before the round starts: one wait returns them together.
    ASSERT_TRUE(run_until(loop, [&] { return seen.size() == 2; }));
    EXPECT_EQ(seen[0], seen[1]);
    EXPECT_GE(seen[0], before);
    EXPECT_LE(seen[0], Clock::now());
    const auto first_round = loop.now();
    b1.send_all("y");
    ASSERT_TRUE(run_until(loop, [&] { return seen.size() == 3; }));
    EXPECT_GE(seen[2], first_round);
    loop.unwatch(a1.fd());
    loop.unwatch(a2.fd());
}

TEST_P(EventLoopTest, EventsOfADescriptorUnwatchedInTheSameRoundAreDropped) {
    EventLoop loop(GetParam());
    auto [a1, b1] = Socket::pair();
    auto [a2, b2] = Socket::pair();
    b1.send_all("x");
    b2.send_all("x");
    int calls = 0;
    // Whichever handler runs first unwatches and closes the other descriptor
    // and watches a new socket that may well get the same number: the event
    // already returned for the old one must not reach the new handler.
    Socket replacement_peer;
    Socket replacement;
    int first = -1;
    auto handler = [&](int self, int other, Socket& other_socket) {
        return [&, self, other](std::uint32_t) {
            ++calls;
            first = self;
            loop.unwatch(other);
            other_socket.close();
            auto [x, y] = Socket::pair();
            replacement = std::move(x);
            replacement_peer = std::move(y);
            loop.watch(replacement.fd(), events::readable | events::writable, [&](std::uint32_t) {
                ADD_FAILURE() << "a stale event reached a new handler";
            });
            loop.unwatch(self);
        };
    };
    loop.watch(a1.fd(), events::readable, handler(a1.fd(), a2.fd(), a2));
    loop.watch(a2.fd(), events::readable, handler(a2.fd(), a1.fd(), a1));
    loop.run_once(kGuard);
    EXPECT_EQ(calls, 1);
    loop.unwatch(replacement.fd());
}

TEST_P(EventLoopTest, TimersFireInDeadlineOrder) {
    EventLoop loop(GetParam());
    std::vector<int> order;
    // 100 ms apart, so that a loaded machine pausing between the calls
    // cannot reorder the deadlines themselves.
    loop.add_timer(300ms, [&] {
        order.push_back(3);
        loop.stop();
    });
    loop.add_timer(100ms, [&] { order.push_back(1); });
    loop.add_timer(200ms, [&] { order.push_back(2); });
    loop.run();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST_P(EventLoopTest, RepeatingTimerCanCancelItself) {
    EventLoop loop(GetParam());
    int ticks = 0;
    EventLoop::TimerId id = 0;
    id = loop.add_timer(
        1ms,
        [&] {
            if (++ticks == 3) {
                loop.cancel_timer(id);
                loop.add_timer(20ms, [&] { loop.stop(); });
            }
        },
        1ms);
    loop.run();
    EXPECT_EQ(ticks, 3);
}

TEST_P(EventLoopTest, CancelledTimerNeverFires) {
    EventLoop loop(GetParam());
    bool fired = false;
    const auto id = loop.add_timer(5ms, [&] { fired = true; });
    loop.cancel_timer(id);
    loop.add_timer(30ms, [&] { loop.stop(); });
    loop.run();
    EXPECT_FALSE(fired);
}

TEST_P(EventLoopTest, WorkPostedFromAnotherThreadRunsOnTheLoopThread) {
    EventLoop loop(GetParam());
    std::thread::id ran_on;
    std::thread poster([&] {
        loop.post([&] {
            ran_on = std::this_thread::get_id();
            loop.stop();
        });
    });
    loop.add_timer(kGuard, [&] { loop.stop(); });
    loop.run();
    poster.join();
    EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST_P(EventLoopTest, InLoopThreadHoldsOnlyOnTheLoopsThreadDuringARound) {
    EventLoop loop(GetParam());
    EXPECT_FALSE(loop.in_loop_thread());  // not inside a round
    bool inside = false;
    bool elsewhere = true;
    loop.post([&] {
        inside = loop.in_loop_thread();
        std::thread other([&] { elsewhere = loop.in_loop_thread(); });
        other.join();
    });
    ASSERT_TRUE(run_until(loop, [&] { return inside; }));
    EXPECT_FALSE(elsewhere);
    EXPECT_FALSE(loop.in_loop_thread());
}

TEST_P(EventLoopTest, StopFromAnotherThreadWakesABlockedLoop) {
    EventLoop loop(GetParam());
    std::thread stopper([&] {
        loop.post([] {});
        loop.stop();
    });
    const auto start = Clock::now();
    loop.run();
    stopper.join();
    EXPECT_LT(Clock::now() - start, kGuard);
}

TEST_P(EventLoopTest, SignalArrivesAsACallback) {
    EventLoop loop(GetParam());
    int seen = 0;
    loop.on_signal(SIGUSR1, [&] {
        ++seen;
        loop.stop();
    });
    loop.add_timer(kGuard, [&] { loop.stop(); });
    ::raise(SIGUSR1);  // blocked in this thread now: it waits in the signalfd
    loop.run();
    EXPECT_EQ(seen, 1);
}

TEST_P(EventLoopTest, ATimerThatThrowsLeavesTheTimersDueWithItAndLaterOnesQueued) {
    EventLoop loop(GetParam());
    std::vector<std::string> fired;
    loop.add_timer(0ms, [&] {
        fired.push_back("first");
        throw std::runtime_error("timer failed");
    });
    loop.add_timer(0ms, [&] { fired.push_back("due with it"); });
    loop.add_timer(50ms, [&] { fired.push_back("later"); });
    EXPECT_THROW(run_until(loop, never), std::runtime_error);
    // Run again: the rest fires, in order, through the re-armed timerfd.
    EXPECT_TRUE(run_until(loop, [&] { return fired.size() == 3; }));
    EXPECT_EQ(fired, (std::vector<std::string>{"first", "due with it", "later"}));
}

TEST_P(EventLoopTest, ARepeatingTimerThatThrowsStaysScheduled) {
    EventLoop loop(GetParam());
    int ticks = 0;
    loop.add_timer(
        1ms,
        [&] {
            if (++ticks == 1) throw std::runtime_error("first tick failed");
        },
        1ms);
    EXPECT_THROW(run_until(loop, never), std::runtime_error);
    EXPECT_TRUE(run_until(loop, [&] { return ticks >= 3; }));
}

TEST_P(EventLoopTest, PostedWorkThatThrowsLeavesTheRestQueuedInOrder) {
    EventLoop loop(GetParam());
    std::vector<int> ran;
    loop.post([&] {
        ran.push_back(1);
        throw std::runtime_error("posted work failed");
    });
    loop.post([&] { ran.push_back(2); });
    loop.post([&] { ran.push_back(3); });
    EXPECT_THROW(run_until(loop, never), std::runtime_error);
    loop.post([&] { ran.push_back(4); });  // after the failure: still behind the rest
    EXPECT_TRUE(run_until(loop, [&] { return ran.size() == 4; }));
    EXPECT_EQ(ran, (std::vector<int>{1, 2, 3, 4}));
}

TEST_P(EventLoopTest, RunPropagatesAHandlersExceptionAndCanRunAgain) {
    EventLoop loop(GetParam());
    auto [a, b] = Socket::pair();
    int calls = 0;
    loop.watch(a.fd(), events::readable, [&](std::uint32_t) {
        if (++calls == 1) throw std::runtime_error("handler failed");
        char c;
        a.recv(&c, 1);
        loop.stop();
    });
    b.send_all("x");
    loop.add_timer(kGuard, [&] { loop.stop(); });
    EXPECT_THROW(loop.run(), std::runtime_error);
    loop.run();  // the byte is still unread: the level-triggered event comes again
    EXPECT_EQ(calls, 2);
    loop.unwatch(a.fd());
}

TEST_P(EventLoopTest, OnSignalRefusesANumberThatIsNoSignal) {
    EventLoop loop(GetParam());
    try {
        loop.on_signal(1000, [] {});
        ADD_FAILURE() << "on_signal(1000) was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("on_signal(1000)"), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, EventLoopTest,
                         ::testing::Values(Backend::select, Backend::poll, Backend::epoll),
                         [](const auto& param_info) {
                             return std::string(backend_name(param_info.param));
                         });

}  // namespace
}  // namespace ferry::test
