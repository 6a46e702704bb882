#include "ferry/event_loop.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "ferry/error.hpp"

namespace ferry {

EventLoop::EventLoop(Backend backend)
    : poller_(Poller::create(backend)),
      timerfd_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)),
      wakeup_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!timerfd_) throw_errno("timerfd_create");
    if (!wakeup_) throw_errno("eventfd");
    watch(timerfd_.get(), events::readable, [this](std::uint32_t) { on_timers(); });
    watch(wakeup_.get(), events::readable, [this](std::uint32_t) { on_wakeup(); });
}

EventLoop::~EventLoop() = default;

EventLoop::Watch& EventLoop::add_watch(int fd, std::uint32_t interest) {
    if (fd < 0) throw_errno(EBADF, "watch descriptor " + std::to_string(fd));
    const auto slot = static_cast<std::size_t>(fd);
    if (slot >= watches_.size()) watches_.resize(std::max(slot + 1, watches_.size() * 2));
    Watch& w = watches_[slot];
    if (w.active) throw_errno(EEXIST, "watch descriptor " + std::to_string(fd));
    poller_->add(fd, interest);
    w.interest = interest;
    w.round = round_;
    w.active = true;
    return w;
}

void EventLoop::watch(int fd, std::uint32_t interest, Handler handler) {
    Watch& w = add_watch(fd, interest);
    w.handler = std::move(handler);
    w.direct = nullptr;
    w.context = nullptr;
}

void EventLoop::watch(int fd, std::uint32_t interest, DirectHandler handler, void* context) {
    Watch& w = add_watch(fd, interest);
    w.handler = nullptr;
    w.direct = handler;
    w.context = context;
}

void EventLoop::modify(int fd, std::uint32_t interest) {
    Watch& w = watches_.at(static_cast<std::size_t>(fd));
    if (w.interest == interest) return;  // saves a system call on the hot path
    poller_->modify(fd, interest);
    w.interest = interest;
}

void EventLoop::unwatch(int fd) {
    if (!watching(fd)) return;
    Watch& w = watches_[static_cast<std::size_t>(fd)];
    poller_->remove(fd);
    w.active = false;
    w.direct = nullptr;
    // The handler may be the one running now: keep it alive until the round ends.
    if (w.handler) retired_.push_back(std::move(w.handler));
}

bool EventLoop::watching(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < watches_.size() &&
           watches_[static_cast<std::size_t>(fd)].active;
}

std::uint32_t EventLoop::interest(int fd) const noexcept {
    return watching(fd) ? watches_[static_cast<std::size_t>(fd)].interest : 0;
}

void EventLoop::run() {
    // stop() may come before run() starts (from another thread): it still counts.
    while (!stopping_.load(std::memory_order_relaxed))
        run_once(std::nullopt);
    stopping_ = false;  // so that the loop can be run again
}

void EventLoop::run_once(std::optional<Duration> timeout) {
    struct Running {  // in_loop_thread() for the round, whichever way it ends
        std::atomic<std::thread::id>& runner;
        explicit Running(std::atomic<std::thread::id>& r) : runner(r) {
            runner.store(std::this_thread::get_id(), std::memory_order_relaxed);
        }
        ~Running() { runner.store(std::thread::id{}, std::memory_order_relaxed); }
        Running(const Running&) = delete;
        Running& operator=(const Running&) = delete;
    } running(runner_);
    ++round_;
    const auto ready = poller_->wait(timeout);
    now_ = Clock::now();
    try {
        for (const ReadyEvent& r : ready)
            dispatch(r);
    } catch (...) {
        // The events not dispatched are level-triggered: the next round reports them again.
        retired_.clear();
        throw;
    }
    retired_.clear();
}

void EventLoop::dispatch(const ReadyEvent& ready) {
    const auto slot = static_cast<std::size_t>(ready.fd);
    if (slot >= watches_.size()) return;
    Watch& w = watches_[slot];
    // Unwatched during this round, or watched anew during it (a reused
    // descriptor number): the event belonged to the previous owner.
    if (!w.active || w.round == round_) return;
    if (w.direct != nullptr) return w.direct(w.context, ready.fd, ready.events);
    w.handler(ready.events);
}

void EventLoop::stop() {
    stopping_ = true;
    wake();
}

void EventLoop::wake() noexcept {
    const std::uint64_t one = 1;
    // The eventfd counter cannot overflow from wake-ups; a failed write only means "already awake".
    [[maybe_unused]] const ssize_t n = ::write(wakeup_.get(), &one, sizeof one);
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    wake();
}

void EventLoop::on_wakeup() {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(wakeup_.get(), &count, sizeof count);
    std::vector<std::function<void()>> work;
    {
        std::lock_guard lock(posted_mutex_);
        work.swap(posted_);
    }
    std::size_t next = 0;
    try {
        while (next < work.size())
            work[next++]();
    } catch (...) {
        // What was not run goes back to the front of the queue, ahead of
        // anything posted meanwhile, and the eventfd is signalled again so
        // that the next round runs it.
        {
            std::lock_guard lock(posted_mutex_);
            posted_.insert(
                posted_.begin(),
                std::make_move_iterator(work.begin() + static_cast<std::ptrdiff_t>(next)),
                std::make_move_iterator(work.end()));
        }
        wake();
        throw;
    }
}

EventLoop::TimerId EventLoop::add_timer(Duration after, std::function<void()> fn,
                                        std::optional<Duration> every) {
    if (every && *every <= Duration::zero())
        throw_errno(EINVAL, "a repeating timer of period <= 0");
    const TimerId id = next_timer_++;
    const auto when = Clock::now() + std::max(after, Duration::zero());
    timers_.emplace(id, Timer{std::make_shared<std::function<void()>>(std::move(fn)), when, every});
    timer_queue_.emplace(std::pair{when, id}, id);
    arm_timerfd();
    return id;
}

void EventLoop::cancel_timer(TimerId id) {
    const auto it = timers_.find(id);
    if (it == timers_.end()) return;
    timer_queue_.erase({it->second.when, id});
    timers_.erase(it);
    arm_timerfd();
}

void EventLoop::arm_timerfd() {
    itimerspec spec{};
    if (!timer_queue_.empty()) {
        const auto left = timer_queue_.begin()->first.first - Clock::now();
        const auto ns =
            std::max<std::int64_t>(1, std::chrono::duration_cast<Duration>(left).count());
        spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    if (::timerfd_settime(timerfd_.get(), 0, &spec, nullptr) != 0) throw_errno("timerfd_settime");
}

void EventLoop::on_timers() {
    std::uint64_t expirations = 0;
    [[maybe_unused]] const ssize_t n = ::read(timerfd_.get(), &expirations, sizeof expirations);
    try {
        run_due_timers(Clock::now());
    } catch (...) {
        // The timerfd is one-shot and was just read: without re-arming it the
        // timers still queued would never fire.
        arm_timerfd();
        throw;
    }
    arm_timerfd();
}

void EventLoop::run_due_timers(Clock::time_point now) {
    // One at a time, each taken off the queue just before it runs: a callback
    // that throws leaves every other due timer queued. A repeating timer comes
    // back at now + period, never <= now, so the loop ends.
    while (!timer_queue_.empty() && timer_queue_.begin()->first.first <= now) {
        const TimerId id = timer_queue_.begin()->second;
        timer_queue_.erase(timer_queue_.begin());
        const auto it = timers_.find(id);
        if (it == timers_.end()) continue;
        const auto fn = it->second.fn;  // a copy: the callback may cancel its own timer
        if (it->second.every) {
            it->second.when = now + *it->second.every;
            timer_queue_.emplace(std::pair{it->second.when, id}, id);
        } else {
            timers_.erase(it);
        }
        (*fn)();
    }
}

void EventLoop::on_signal(int signo, std::function<void()> fn) {
    sigset_t set;
    sigemptyset(&set);
    // Checked before anything changes: sigaddset(3) is the judge of a valid number.
    if (sigaddset(&set, signo) != 0)
        throw_errno(EINVAL, "on_signal(" + std::to_string(signo) + ")");
    signal_handlers_[signo] = std::move(fn);
    for (const auto& [s, unused] : signal_handlers_)
        sigaddset(&set, s);
    // pthread_sigmask returns its error instead of setting errno.
    if (const int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0)
        throw_errno(err, "pthread_sigmask");
    const int fd = ::signalfd(signalfd_ ? signalfd_.get() : -1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0) throw_errno("signalfd");
    if (!signalfd_) {
        signalfd_.reset(fd);
        watch(fd, events::readable, [this](std::uint32_t) { on_signals(); });
    }
}

void EventLoop::on_signals() {
    signalfd_siginfo info{};
    while (::read(signalfd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        const auto it = signal_handlers_.find(static_cast<int>(info.ssi_signo));
        if (it != signal_handlers_.end()) it->second();
    }
}

}  // namespace ferry
