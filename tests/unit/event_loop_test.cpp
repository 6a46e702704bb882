// EventLoop: descriptors, timers, posted work, signals, and the stale-event rule.
#include "ferry/event_loop.hpp"

#include <csignal>
#include <thread>

#include "unit/fd_leak_check.hpp"

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

class EventLoopTest : public FdLeakCheck, public ::testing::WithParamInterface<Backend> {};

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

INSTANTIATE_TEST_SUITE_P(EveryBackend, EventLoopTest,
                         ::testing::Values(Backend::select, Backend::poll, Backend::epoll),
                         [](const auto& info) { return std::string(backend_name(info.param)); });

}  // namespace
}  // namespace ferry::test
