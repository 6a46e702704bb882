// ferry/run_loops.hpp: several event loops, one per thread, that stop together when one fails.
#pragma once

#include <span>

#include "ferry/event_loop.hpp"

namespace ferry {

/// Runs every loop of `loops` until each has returned: the first on the
/// calling thread, each other one on a thread of its own (the shape of a
/// server with one loop per core). Set the loops up (watch, add_timer) before
/// the call, from the calling thread: starting the threads orders that set-up
/// before their run(). An empty span returns at once.
///
/// Normally each loop runs until something calls its stop(), and run_loops
/// returns once all have returned. When a loop's run() throws (a handler, a
/// timer callback or posted work threw), every loop is stopped
/// (EventLoop::stop), every thread joined, and then the first exception
/// thrown is rethrown to the caller: a failing loop never ends the process
/// through std::terminate, and no thread outlives the call. A loop stopped
/// after it had already returned keeps that stop pending: its next run()
/// returns at once.
///
/// Errors: the first exception of any loop, as it was thrown;
/// std::system_error when a thread cannot be started (the threads already
/// started are stopped and joined first, and the first loop is not run).
/// Thread-safety: each loop belongs to its thread for the duration of the
/// call; the caller touches none of them until it returns.
void run_loops(std::span<EventLoop* const> loops);

}  // namespace ferry
