// Internal to the ferry command: what the parts of `ferry proxy` share: a route, its
// counters, per-flow timers, and the two relay engines (proxy_tcp.cpp, proxy_udp.cpp).
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
#include "proxy_toxics.hpp"

namespace ferry::cli::proxy {

/// One relay: where it listens, where it forwards, and the faults on the way.
struct Route {
    Protocol protocol = Protocol::tcp;
    std::string listen_host;  ///< as given ("" = every IPv4 interface)
    std::string listen_port;
    Address upstream;  ///< resolved once, at start
    std::vector<ToxicSpec> toxics;
};

struct Settings {
    /// A UDP client's flow (and its upstream socket) is dropped after this much silence.
    Duration udp_idle = std::chrono::seconds(60);
    /// A TCP upstream that has not answered the connect by then counts as refusing.
    Duration connect_timeout = std::chrono::seconds(10);
    /// Flow control: a direction holding this many bytes not yet written
    /// stops reading from its sender, and resumes below half of it.
    std::size_t high_water = std::size_t{1} << 20;
};

/// What a route has done so far (printed once a second on a terminal, and by --json).
struct Counters {
    std::uint64_t connections = 0;     ///< TCP connections accepted / UDP client flows started
    std::uint64_t active = 0;          ///< open now
    std::uint64_t refused = 0;         ///< TCP: upstream connects that failed; UDP: refusals seen
    std::uint64_t bytes_up = 0;        ///< written to the upstream
    std::uint64_t bytes_down = 0;      ///< written to the clients
    std::uint64_t datagrams_up = 0;    ///< UDP: received from clients
    std::uint64_t datagrams_down = 0;  ///< UDP: received from the upstream
    UdpEffects effects;
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

/// A running relay for one route on the proxy's event loop. Destroying it
/// closes its listening socket and every connection or flow.
class RouteRelay {
  public:
    virtual ~RouteRelay() = default;
    [[nodiscard]] virtual Address local_address() const = 0;
    [[nodiscard]] virtual const Counters& counters() const = 0;
};

/// Binds the route's listening socket and starts relaying on `loop`; its
/// messages on stderr name it as `ferry proxy 127.0.0.1:4000 -> 127.0.0.1:5000: ...`.
/// `seed` seeds every random choice the route makes. Throws Error when the
/// socket cannot be bound.
std::unique_ptr<RouteRelay> start_tcp_relay(EventLoop& loop, const Route& route,
                                            const Settings& settings, std::uint64_t seed);
std::unique_ptr<RouteRelay> start_udp_relay(EventLoop& loop, const Route& route,
                                            const Settings& settings, std::uint64_t seed);

}  // namespace ferry::cli::proxy
