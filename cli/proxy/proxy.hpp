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
#include "ferry/socket.hpp"
#include "proxy/proxy_toxics.hpp"

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
/// What the TCP and the UDP relay of one route both hold: the listening
/// socket, the route's counters and random stream, a scratch buffer for
/// reads, and the name its stderr messages carry.
class RouteRelay {
  public:
    virtual ~RouteRelay() = default;
    RouteRelay(const RouteRelay&) = delete;
    RouteRelay& operator=(const RouteRelay&) = delete;

    [[nodiscard]] Address local_address() const { return local_; }
    [[nodiscard]] const Counters& counters() const { return counters_; }

    EventLoop& loop() { return loop_; }
    const Route& route() const { return route_; }
    const Settings& settings() const { return settings_; }
    Counters& stats() { return counters_; }
    Rng& rng() { return rng_; }
    Socket& listener() { return listener_; }
    char* scratch() { return scratch_.data(); }
    void warn(const std::string& text) const;

  protected:
    /// Binds the listening socket (`socktype` SOCK_STREAM or SOCK_DGRAM,
    /// non-blocking) and names the route; throws Error when it cannot bind.
    RouteRelay(EventLoop& loop, const Route& route, const Settings& settings, std::uint64_t seed,
               int socktype, std::size_t scratch_size);

    EventLoop& loop_;
    Route route_;
    Settings settings_;
    Counters counters_;
    Rng rng_;
    Socket listener_;
    Address local_;
    std::string name_;
    std::vector<char> scratch_;
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
