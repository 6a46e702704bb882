// run_loops: a loop that throws stops the others and its error reaches the caller; the process
// goes on (were it std::terminate, this test process would die and the test fail).
#include "ferry/run_loops.hpp"

#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "ferry/create.hpp"
#include "ferry/server/stream_server.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry::test {
namespace {

using RunLoopsTest = FdLeakCheck;

/// A loop with nothing to do, which only a stop ends; if nothing stops it, a
/// guard does after kGuard and says so in `guard_fired`.
void idle_with_guard(EventLoop& loop, std::atomic<bool>& guard_fired) {
    loop.add_timer(kGuard, [&loop, &guard_fired] {
        guard_fired = true;
        loop.stop();
    });
}

TEST_F(RunLoopsTest, AWorkerLoopThatThrowsStopsTheOthersAndTheCallerGetsItsError) {
    EventLoop first;
    EventLoop failing;
    EventLoop other;
    std::atomic<bool> first_guard{false};
    std::atomic<bool> other_guard{false};
    idle_with_guard(first, first_guard);
    idle_with_guard(other, other_guard);
    failing.post([] { throw std::runtime_error("worker loop failed"); });
    EventLoop* const loops[] = {&first, &failing, &other};
    try {
        run_loops(loops);
        ADD_FAILURE() << "run_loops returned normally";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "worker loop failed");
    }
    EXPECT_FALSE(first_guard) << "the calling thread's loop was not stopped";
    EXPECT_FALSE(other_guard) << "the other worker loop was not stopped";
}

TEST_F(RunLoopsTest, TheFirstLoopThrowingWhileTheOthersRunStopsAndJoinsThem) {
    EventLoop first;
    EventLoop worker1;
    EventLoop worker2;
    std::atomic<bool> guard1{false};
    std::atomic<bool> guard2{false};
    idle_with_guard(worker1, guard1);
    idle_with_guard(worker2, guard2);
    first.post([] { throw std::logic_error("first loop failed"); });
    EventLoop* const loops[] = {&first, &worker1, &worker2};
    EXPECT_THROW(run_loops(loops), std::logic_error);
    EXPECT_FALSE(guard1);
    EXPECT_FALSE(guard2);
}

TEST_F(RunLoopsTest, WhenSeveralLoopsThrowOneErrorIsReported) {
    EventLoop a;
    EventLoop b;
    a.post([] { throw std::runtime_error("a failed"); });
    b.post([] { throw std::runtime_error("b failed"); });
    EventLoop* const loops[] = {&a, &b};
    try {
        run_loops(loops);
        ADD_FAILURE() << "run_loops returned normally";
    } catch (const std::runtime_error& e) {
        // Which one is first is the scheduler's choice.
        const std::string what = e.what();
        EXPECT_TRUE(what == "a failed" || what == "b failed") << what;
    }
}

TEST_F(RunLoopsTest, LoopsThatStopOnTheirOwnReturnNormally) {
    EventLoop a;
    EventLoop b;
    EventLoop c;
    int ran = 0;
    std::atomic<int> ran_elsewhere{0};
    a.post([&] {
        ++ran;
        a.stop();
    });
    b.post([&] {
        ++ran_elsewhere;
        b.stop();
    });
    c.post([&] {
        ++ran_elsewhere;
        c.stop();
    });
    EventLoop* const loops[] = {&a, &b, &c};
    run_loops(loops);
    EXPECT_EQ(ran, 1);
    EXPECT_EQ(ran_elsewhere, 2);
}

TEST_F(RunLoopsTest, NoLoopsIsNothingToRun) {
    run_loops({});
}

/// An echo that fails in a way no server model catches (not a ferry::Error).
class FailingHandler final : public StreamHandler {
  public:
    std::size_t on_data(Buffer&, Buffer&) const override {
        throw std::logic_error("the handler failed");
    }
};

TEST_F(RunLoopsTest, AnEpollServerWithSeveralLoopsReportsAFailingLoopFromRun) {
    ServerLimits limits;
    limits.threads = 3;  // three loops, each with its own SO_REUSEPORT listener
    const FailingHandler handler;
    StreamServer server(Address::ip("127.0.0.1", 0), Model::epoll, limits, handler);
    std::promise<std::string> outcome;
    std::thread runner([&] {
        try {
            server.run();
            outcome.set_value("run() returned normally");
        } catch (const std::exception& e) {
            outcome.set_value(e.what());
        }
    });
    // Whichever loop the kernel hands the connection to fails.
    Socket client = create_connection("127.0.0.1", std::to_string(server.local_address().port()));
    client.send_all("x");
    auto result = outcome.get_future();
    const bool ended = result.wait_for(kGuard) == std::future_status::ready;
    if (!ended) server.stop();  // so that the join below cannot hang
    runner.join();
    ASSERT_TRUE(ended) << "run() did not end after a loop failed";
    EXPECT_EQ(result.get(), "the handler failed");
}

}  // namespace
}  // namespace ferry::test
