// run_loops: one event loop per thread, stopped together and joined when one of them throws.
#include "ferry/run_loops.hpp"

#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry {

void run_loops(std::span<EventLoop* const> loops) {
    if (loops.empty()) return;
    std::mutex mutex;
    std::exception_ptr first_failure;
    // An exception escaping a thread's function would be std::terminate: each
    // one is caught, kept if it is the first, and ends every loop instead.
    const auto fail = [&](std::exception_ptr failure) noexcept {
        {
            const std::lock_guard lock(mutex);
            if (!first_failure) first_failure = std::move(failure);
        }
        for (EventLoop* loop : loops)
            loop->stop();
    };
    const auto run_one = [&](EventLoop* loop) noexcept {
        try {
            loop->run();
        } catch (...) {
            fail(std::current_exception());
        }
    };

    std::vector<std::thread> threads;
    bool started = true;
    try {
        threads.reserve(loops.size() - 1);
        for (std::size_t i = 1; i < loops.size(); ++i)
            threads.emplace_back(run_one, loops[i]);
    } catch (...) {
        started = false;
        fail(std::current_exception());
    }
    if (started) run_one(loops.front());
    for (std::thread& t : threads)
        t.join();
    // Every thread has been joined: no lock is needed to read what they left.
    if (first_failure) std::rethrow_exception(first_failure);
}

}  // namespace ferry
