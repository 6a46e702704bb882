// ferry/acceptor.hpp: taking connections off a listening socket without spinning, hanging or
// starving the rest of the process when it runs out of descriptors; what every ferry server
// (the server models, the chaos servers, the fault proxy) accepts with.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ferry/event_loop.hpp"
#include "ferry/fd.hpp"
#include "ferry/socket.hpp"
#include "ferry/throttled_counter.hpp"

namespace ferry {

/// How an Acceptor takes connections and what it does when it cannot.
struct AcceptorOptions {
    /// accept4(2) flags for the new sockets (SOCK_NONBLOCK or 0); SOCK_CLOEXEC is always added.
    int flags = SOCK_NONBLOCK;
    /// How long accepting stops after the process ran out of descriptors (or
    /// memory), unless a connection closes first (connection_closed()). Bounded,
    /// so an acceptor never waits for ever for a close that is not reported,
    /// and short, so a client waits in the backlog at most this long before it
    /// is served or told.
    Duration pause = std::chrono::milliseconds(100);
    /// Descriptors left free for the rest of the process: a connection whose
    /// descriptor number would leave fewer than this many numbers below the
    /// soft RLIMIT_NOFILE is closed at once, as if accept had failed with
    /// EMFILE. The process keeps room for what it opens besides connections
    /// (a proxy's upstream socket, a name lookup, a log file, the sanitizers'
    /// own pipes), as HAProxy keeps descriptors beyond its maxconn. 0: none.
    unsigned reserve = 4;
    /// LoopAcceptor: connections accepted per readiness event, so a flood of
    /// connections cannot starve the loop's other work.
    unsigned max_per_wakeup = 64;
    /// The shortest time between two warnings (see on_warning).
    Duration report_period = std::chrono::seconds(1);
    /// Told, at most once per report_period, how many connections were closed
    /// unserved for want of descriptors or memory, as one line:
    /// `out of descriptors: 12 connections refused in the last second (Too
    /// many open files)`. The library never prints; the owner decides where
    /// the line goes. Called on the accepting thread; must not throw. Unset: silence.
    std::function<void(std::string_view)> on_warning{};
};

/// Accepts connections on a listening socket, and copes with running out of
/// descriptors the way nginx and libuv do:
///
/// - accept4(2) failing with EMFILE, ENFILE, ENOBUFS or ENOMEM: the acceptor
///   gives up the one spare descriptor it holds, accepts every connection
///   waiting in the backlog and closes it at once (so each client sees its
///   connection closed instead of hanging), takes the spare back, and then
///   **pauses**: accept() returns nothing, and the owner stops watching the
///   listener, until a connection closes (connection_closed()) or `pause`
///   has passed (tick()). A listener that stays readable is never spun on.
/// - a connection that would eat into the reserve (AcceptorOptions::reserve)
///   is closed, and so is every one waiting, then accepting pauses the same way.
/// - a failure of one pending connection (ECONNABORTED, EPROTO, EPERM, the
///   network errors Linux passes on, see accept(2)) skips that connection.
/// - any other failure (EBADF, EINVAL: not a listening socket) is thrown.
///
/// Refused connections are counted (refused()) and reported through
/// AcceptorOptions::on_warning at most once per report_period.
///
/// The listener is not owned and must outlive the acceptor. accept() on a
/// blocking listener blocks like accept(2) when nothing is pending; the
/// shedding never blocks (it looks with poll(2) before each accept).
///
/// Errors: the constructor throws Error when it cannot open its spare
/// descriptor (an eventfd); accept() and adopt() throw Error for a failure
/// that is the listener's, not the connection's (`accept on 127.0.0.1:8000:
/// Invalid argument`).
/// Thread-safety: none; one thread accepts (the owner serialises calls).
class Acceptor {
  public:
    /// An acceptor for `listener` (listening already, not owned: it must
    /// outlive the acceptor); opens the spare descriptor.
    explicit Acceptor(const Socket& listener, AcceptorOptions options = {});
    /// Reports a count of refusals still waiting for its period, so that none
    /// goes unsaid (on_warning must still be callable then).
    ~Acceptor();
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    /// One connection, or nullopt: none pending (would block), paused, or
    /// the pending ones refused for want of descriptors.
    std::optional<Accepted> accept();

    /// The same, for a completion-based owner (io_uring) that accepted by
    /// itself: `result` is the accept operation's result, a new descriptor
    /// (adopted) or -errno (handled as accept() handles that errno). The peer
    /// address of the returned connection is empty.
    std::optional<Accepted> adopt(int result);

    /// A connection of this listener closed, freeing a descriptor: a pause
    /// ends at once.
    void connection_closed() noexcept;

    /// Lets time pass: a pause that is over ends, and a count of refusals
    /// that waited for its period is reported. Call it by next_deadline().
    void tick(Clock::time_point now = Clock::now());

    /// Whether accepting is paused: the owner should not watch the listener.
    [[nodiscard]] bool paused() const noexcept { return paused_; }

    /// When tick() has work: the end of the pause, or the time a waiting
    /// report is due; nullopt when neither.
    [[nodiscard]] std::optional<Clock::time_point> next_deadline() const noexcept;

    /// Connections closed unserved since construction (out of descriptors,
    /// out of memory, or over the reserve).
    [[nodiscard]] std::uint64_t refused() const noexcept { return refusals_.total(); }

    /// The highest descriptor number a connection may take now (from the
    /// soft RLIMIT_NOFILE, read again after each pause, less the reserve).
    [[nodiscard]] long long highest_descriptor() const noexcept { return highest_; }

  private:
    std::optional<Accepted> admit(int fd, const Address& peer);
    void run_out(int err);
    /// Accepts and closes every connection waiting (never blocks); how many.
    std::uint64_t shed_backlog();
    /// Pauses accepting, and counts `shed` refusals for `what` (`reason`).
    void pause_after(std::uint64_t shed, std::string what, std::string reason);
    void report(std::uint64_t count);
    void resume() noexcept;
    void read_limit() noexcept;
    [[nodiscard]] std::string where() const;

    const Socket& listener_;
    AcceptorOptions options_;
    Fd spare_;
    bool paused_ = false;
    Clock::time_point resume_at_{};
    long long highest_ = 0;
    ThrottledCounter refusals_;
    std::string what_;    // of the refusals counted last: "out of descriptors"
    std::string reason_;  // and why: "Too many open files"
};

/// An Acceptor driven by an EventLoop: it watches the listener (made
/// non-blocking), hands each connection to `on_connection`, stops watching
/// while paused and resumes on its own timer or on connection_closed().
///
///     LoopAcceptor acceptor(loop, listener, [&](Accepted client) { serve(std::move(client)); });
///     // ... and for every connection that ends: acceptor.connection_closed();
///
/// Destroying it stops watching and cancels its timer; the loop and the
/// listener must outlive it. `on_connection` must not destroy it.
/// Thread-safety: none; everything on the loop's thread.
class LoopAcceptor {
  public:
    /// Called with each connection accepted, on the loop's thread.
    using OnConnection = std::function<void(Accepted)>;

    /// Watches `listener` (made non-blocking) on `loop` and hands every
    /// connection to `on_connection`; neither is owned.
    LoopAcceptor(EventLoop& loop, Socket& listener, OnConnection on_connection,
                 AcceptorOptions options = {});
    ~LoopAcceptor();
    LoopAcceptor(const LoopAcceptor&) = delete;
    LoopAcceptor& operator=(const LoopAcceptor&) = delete;

    /// A connection this listener gave closed (see Acceptor::connection_closed).
    void connection_closed();
    /// Stops for good: no more watching, no timer (a server draining; the
    /// listener may be closed afterwards).
    void stop();

    /// The Acceptor underneath: its counters and state.
    [[nodiscard]] const Acceptor& acceptor() const noexcept { return acceptor_; }

  private:
    void on_readable();
    void on_timer();
    /// Watches or unwatches the listener and arms the timer, as the acceptor's state asks.
    void settle();

    EventLoop& loop_;
    int listener_fd_;
    unsigned max_per_wakeup_;
    OnConnection on_connection_;
    Acceptor acceptor_;
    bool watching_ = false;
    bool stopped_ = false;
    EventLoop::TimerId timer_ = 0;
    Clock::time_point timer_at_{};
};

}  // namespace ferry
