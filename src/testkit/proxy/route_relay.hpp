// Internal to the testkit (not installed): what the parts of the fault proxy share: a route's
// state, per-flow timers, and the two relay engines (tcp_relay.cpp, udp_relay.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "ferry/address.hpp"
#include "ferry/event_loop.hpp"
#include "ferry/socket.hpp"
#include "ferry/testkit/fault_proxy.hpp"
#include "ferry/testkit/toxic.hpp"
#include "ferry/throttled_counter.hpp"

namespace ferry::testkit::detail {

/// A toxic as a relay sees it: `serial` changes whenever the toxic does, so a
/// live connection can tell which of its toxics to keep, replace or drop.
struct ToxicSlot {
    Toxic toxic;
    std::uint64_t serial = 0;
};

/// What a running relay reads from its proxy, owned by FaultProxy: it
/// outlives every relay started for it, and its counters run on across
/// restarts.
struct RouteState {
    std::string name;
    Protocol protocol = Protocol::tcp;
    Address upstream;  ///< resolved when the proxy starts
    std::vector<ToxicSlot> toxics;
    Counters counters;
};

/// The timers of one connection or flow, on the proxy's loop: all of them
/// are cancelled when it goes away, so none runs for a flow that is gone.
class Timers final : public Scheduler {
  public:
    explicit Timers(EventLoop& loop) : loop_(loop) {}
    ~Timers() override { cancel_all(); }
    Timers(const Timers&) = delete;
    Timers& operator=(const Timers&) = delete;

    Id after(Duration delay, std::function<void()> fn) override {
        auto id = std::make_shared<Id>(0);
        *id = loop_.add_timer(delay, [this, id, fn = std::move(fn)] {
            live_.erase(*id);
            fn();
        });
        live_.insert(*id);
        return *id;
    }
    void cancel(Id id) override {
        if (live_.erase(id) != 0) loop_.cancel_timer(id);
    }
    void cancel_all() {
        for (const Id id : live_)
            loop_.cancel_timer(id);
        live_.clear();
    }

  private:
    EventLoop& loop_;
    std::unordered_set<Id> live_;
};

/// A running relay for one route on the proxy's event loop: the listening
/// socket, the route's random stream, a scratch buffer for reads, and the
/// name its warnings carry. Destroying it closes its listening socket and
/// every connection or flow.
class RouteRelay {
  public:
    virtual ~RouteRelay() = default;
    RouteRelay(const RouteRelay&) = delete;
    RouteRelay& operator=(const RouteRelay&) = delete;

    /// The route's toxics changed: every live connection or flow takes the new list.
    virtual void toxics_changed() = 0;
    /// Brings the counters up to date with what is counted elsewhere (an
    /// acceptor's refusals) before they are read.
    virtual void publish_counters() {}

    [[nodiscard]] Address local_address() const { return local_; }

    EventLoop& loop() { return loop_; }
    RouteState& state() { return state_; }
    const Address& upstream() const { return upstream_; }
    const FaultProxyOptions& settings() const { return settings_; }
    Counters& stats() { return state_.counters; }
    Rng& rng() { return rng_; }
    Socket& listener() { return listener_; }
    char* scratch() { return scratch_.data(); }
    void warn(const std::string& text) const;

  protected:
    /// Binds the listening socket (`socktype` SOCK_STREAM or SOCK_DGRAM,
    /// non-blocking) on `listen`; throws Error when it cannot bind.
    RouteRelay(EventLoop& loop, RouteState& state, const Address& listen,
               const FaultProxyOptions& settings, std::uint64_t seed, int socktype,
               std::size_t scratch_size);

    EventLoop& loop_;
    RouteState& state_;
    Address upstream_;
    const FaultProxyOptions& settings_;
    Rng rng_;
    Socket listener_;
    Address local_;
    std::string name_;
    std::vector<char> scratch_;
};

/// A warning of a route that could repeat thousands of times a second (a
/// flood of new clients), said at most once a second with its count: the
/// first at once, the rest when their second is over (a timer on the route's
/// loop), or when it is destroyed. `text` makes the line from the count.
class ThrottledWarning {
  public:
    ThrottledWarning(RouteRelay& relay, std::function<std::string(std::uint64_t)> text)
        : relay_(relay), text_(std::move(text)) {}
    ~ThrottledWarning();
    ThrottledWarning(const ThrottledWarning&) = delete;
    ThrottledWarning& operator=(const ThrottledWarning&) = delete;

    /// One more occurrence.
    void count();

  private:
    /// A timer for the count that waits, if one waits and none is set.
    void arm();
    void say(std::uint64_t n) const;

    RouteRelay& relay_;
    std::function<std::string(std::uint64_t)> text_;
    ThrottledCounter counter_;
    EventLoop::TimerId timer_ = 0;
};

/// Binds `listen` and starts relaying to state.upstream on `loop`; `seed`
/// seeds every random choice the relay makes. Throws Error when the socket
/// cannot be bound.
std::unique_ptr<RouteRelay> start_tcp_relay(EventLoop& loop, RouteState& state,
                                            const Address& listen,
                                            const FaultProxyOptions& settings, std::uint64_t seed);
std::unique_ptr<RouteRelay> start_udp_relay(EventLoop& loop, RouteState& state,
                                            const Address& listen,
                                            const FaultProxyOptions& settings, std::uint64_t seed);

}  // namespace ferry::testkit::detail
