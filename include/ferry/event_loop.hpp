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
/// - now(): the time the current round's wait returned, read once per round,
///   so that a handler timing many events of one round reads no clock.
///
/// - on_signal(signo, fn): throws Error(EINVAL) for a number that is no signal.
///
/// Errors: Error from the system calls. An exception thrown by a handler, a
/// timer callback or posted work propagates out of run() or run_once(), and
/// the loop stays consistent, ready to run again: what did not run is still
/// queued (the other timers due in the same tick, later timers, the rest of
/// the posted work, in order), the timerfd is re-armed for the earliest
/// timer, and the events of the round not yet dispatched are reported again
/// by the next round (level-triggered). A one-shot timer or posted function
/// that threw has run and is gone; a repeating timer stays scheduled.
/// Thread-safety: post() and stop() from any thread; everything else on the
/// loop's own thread (the one that calls run()).
class EventLoop {
  public:
    /// Runs with the ready bits (events::readable, writable, error, hangup).
    using Handler = std::function<void(std::uint32_t ready)>;
    /// A handler without a function object, for hot paths: a plain function
    /// called with the context given to watch(), the descriptor and the ready bits.
    using DirectHandler = void (*)(void* context, int fd, std::uint32_t ready);
    /// Names a timer for cancel_timer(); never reused by the same loop.
    using TimerId = std::uint64_t;

    /// Throws Error when the poller, the timerfd or the eventfd cannot be created.
    explicit EventLoop(Backend backend = Backend::epoll);
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// Starts watching `fd` (not owned) for `interest`; Error(EEXIST) if already watched.
    void watch(int fd, std::uint32_t interest, Handler handler);
    /// The same with a DirectHandler: one indirect call per event, no
    /// std::function. `context` (not owned) must outlive the watch.
    void watch(int fd, std::uint32_t interest, DirectHandler handler, void* context);
    /// The same with `Method` of `object` as the handler, called as
    /// object->Method(fd, ready) through a DirectHandler (the member call is
    /// inlined into it). `object` must outlive the watch.
    template <auto Method, class T>
    void watch(int fd, std::uint32_t interest, T* object) {
        watch(
            fd, interest,
            [](void* context, int ready_fd, std::uint32_t ready) {
                (static_cast<T*>(context)->*Method)(ready_fd, ready);
            },
            static_cast<void*>(object));
    }
    /// Changes the interest of a watched descriptor.
    void modify(int fd, std::uint32_t interest);
    /// Stops watching `fd`; nothing happens for a descriptor not watched.
    void unwatch(int fd);
    /// Whether `fd` is watched now.
    [[nodiscard]] bool watching(int fd) const noexcept;
    /// The interest of a watched descriptor, 0 for one not watched.
    [[nodiscard]] std::uint32_t interest(int fd) const noexcept;

    /// Runs `fn` once `after` has passed, then every `every` if given
    /// (Error(EINVAL) for a period <= 0). Timers due together run in deadline order.
    TimerId add_timer(Duration after, std::function<void()> fn,
                      std::optional<Duration> every = std::nullopt);
    /// Cancels a timer (its own callback may do it); an unknown id is ignored.
    void cancel_timer(TimerId id);

    /// From any thread: runs `fn` on the loop's thread soon, in the order posted.
    void post(std::function<void()> fn);
    /// Delivers `signo` through a signalfd to `fn` (see the class comment).
    void on_signal(int signo, std::function<void()> fn);

    /// Runs rounds until stop(); then it may be run again.
    void run();
    /// Runs one round: waits at most `timeout` and dispatches what is ready.
    void run_once(std::optional<Duration> timeout);
    /// From any thread: run() returns after the current round.
    void stop();

    /// From any thread: whether the caller is this loop's thread inside run()
    /// or run_once() (a handler, a timer, posted work), where waiting for the
    /// loop would wait for itself.
    [[nodiscard]] bool in_loop_thread() const noexcept {
        return runner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
    }

    /// When the current round's wait returned (before the first round: when
    /// the loop was made). Read once per round: handlers of the same round
    /// share it, and it lags the true time by the round's own work, which
    /// is what timeouts counted in rounds expect. Clock::now() for the exact time.
    [[nodiscard]] Clock::time_point now() const noexcept { return now_; }

    /// The poller backend the loop waits with.
    [[nodiscard]] Backend backend() const noexcept { return poller_->backend(); }

  private:
    struct Watch {
        Handler handler;                 // empty when `direct` is set
        DirectHandler direct = nullptr;  // called with `context` instead of `handler`
        void* context = nullptr;
        std::uint64_t round = 0;  // the dispatch round in which it was watched
        std::uint32_t interest = 0;
        bool active = false;
    };
    struct Timer {
        std::shared_ptr<std::function<void()>> fn;  // shared: a callback may cancel itself
        Clock::time_point when;
        std::optional<Duration> every;
    };

    Watch& add_watch(int fd, std::uint32_t interest);  // the slot, active, with no handler yet
    void dispatch(const ReadyEvent& ready);
    void on_timers();
    void run_due_timers(Clock::time_point now);
    void on_wakeup();
    void wake() noexcept;
    void on_signals();
    void arm_timerfd();

    std::unique_ptr<Poller> poller_;
    std::vector<Watch> watches_;    // indexed by descriptor number
    std::vector<Handler> retired_;  // handlers unwatched mid-round, freed after it
    std::uint64_t round_ = 0;
    Clock::time_point now_ = Clock::now();  // when the current round's wait returned
    std::atomic<bool> stopping_{false};
    std::atomic<std::thread::id> runner_{};  // the thread inside run_once(), if any

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
