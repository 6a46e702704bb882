// ferry/event_loop.hpp: a reactor: descriptors, timers (timerfd), work from other threads
// (eventfd), signals (signalfd).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ferry/fd.hpp"
#include "ferry/poller.hpp"

namespace ferry {

/// One thread's event loop, on any Poller backend (epoll by default).
///
/// - watch(fd, interest, handler): the handler runs with the ready bits
///   (events::readable, writable, error, hangup) while the descriptor is
///   watched. The loop never owns the descriptor. A handler may unwatch any
///   descriptor, its own included: events already returned for a descriptor
///   unwatched (or re-watched) during a dispatch round are dropped, so a
///   handler never runs for a closed connection whose number was reused.
/// - add_timer(after, fn, every): one timerfd armed for the earliest timer.
/// - post(fn): from any thread; runs fn on the loop thread, soon (eventfd wake-up).
/// - on_signal(signo, fn): the signal is blocked in the calling thread and
///   delivered through a signalfd instead. This changes the calling thread's
///   signal mask (threads created afterwards inherit it): only a program's
///   main is expected to call it, never a library.
/// - stop(): from any thread; run() returns after the current round.
///
/// Errors: Error from the system calls. An exception thrown by a handler
/// propagates out of run() (the loop is left stopped and consistent).
/// Thread-safety: post() and stop() from any thread; everything else on the
/// loop's own thread (the one that calls run()).
class EventLoop {
  public:
    /// Called with the ready bits (events::readable, writable, error, hangup).
    using Handler = std::function<void(std::uint32_t ready)>;
    /// Names a timer for cancel_timer(); never reused by one loop.
    using TimerId = std::uint64_t;

    /// A loop on `backend`, with its timerfd and eventfd. Throws Error.
    explicit EventLoop(Backend backend = Backend::epoll);
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// Starts watching `fd` for `interest`; Error(EEXIST) if it is watched already.
    void watch(int fd, std::uint32_t interest, Handler handler);
    /// Changes what a watched `fd` is watched for.
    void modify(int fd, std::uint32_t interest);
    /// Stops watching `fd` (nothing if it was not); its pending events are dropped.
    void unwatch(int fd);
    /// Whether `fd` is watched.
    [[nodiscard]] bool watching(int fd) const noexcept;
    /// What `fd` is watched for (0 when it is not).
    [[nodiscard]] std::uint32_t interest(int fd) const noexcept;

    /// Runs `fn` once after `after`, then every `every` if given; returns its id.
    TimerId add_timer(Duration after, std::function<void()> fn,
                      std::optional<Duration> every = std::nullopt);
    /// Cancels a timer (nothing if it already ran or was cancelled); a timer may cancel itself.
    void cancel_timer(TimerId id);

    /// From any thread: runs `fn` on the loop's thread, soon.
    void post(std::function<void()> fn);
    /// Runs `fn` on the loop's thread when `signo` arrives (see the class notes).
    void on_signal(int signo, std::function<void()> fn);

    /// Dispatches rounds until stop().
    void run();
    /// Runs one round: waits at most `timeout` and dispatches what is ready.
    void run_once(std::optional<Duration> timeout);
    /// From any thread: run() returns after the current round.
    void stop();

    /// The Poller backend the loop runs on.
    [[nodiscard]] Backend backend() const noexcept { return poller_->backend(); }

  private:
    struct Watch {
        Handler handler;
        std::uint32_t interest = 0;
        std::uint64_t round = 0;  // the dispatch round in which it was watched
        bool active = false;
    };
    struct Timer {
        std::shared_ptr<std::function<void()>> fn;  // shared: a callback may cancel itself
        Clock::time_point when;
        std::optional<Duration> every;
    };

    void dispatch(const ReadyEvent& ready);
    void on_timers();
    void on_wakeup();
    void on_signals();
    void arm_timerfd();

    std::unique_ptr<Poller> poller_;
    std::vector<Watch> watches_;    // indexed by descriptor number
    std::vector<Handler> retired_;  // handlers unwatched mid-round, freed after it
    std::uint64_t round_ = 0;
    std::atomic<bool> stopping_{false};

    Fd timerfd_;
    std::map<std::pair<Clock::time_point, TimerId>, TimerId> timer_queue_;
    std::unordered_map<TimerId, Timer> timers_;
    TimerId next_timer_ = 1;

    Fd wakeup_;  // eventfd
    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;

    Fd signalfd_;
    std::unordered_map<int, std::function<void()>> signal_handlers_;
};

}  // namespace ferry
