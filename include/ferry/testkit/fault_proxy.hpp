// ferry/testkit/fault_proxy.hpp: a fault-injecting TCP and UDP proxy that a program or a test
// embeds: named proxies (Toxiproxy's word for a route: listen here, relay to there), each with
// toxics that can be added, changed and removed while connections are open.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "ferry/event_loop.hpp"
#include "ferry/testkit/toxic.hpp"

/// The testkit library (`ferry::testkit`): the fault proxy, its toxics and the chaos
/// servers, for programs and tests to embed.
namespace ferry::testkit {

/// One proxy as its creator describes it. `listen` and `upstream` are
/// `HOST:PORT` or `[IPV6]:PORT`; an empty listen host (`:8000`) is
/// 127.0.0.1, port 0 any free port.
struct ProxyConfig {
    /// Its name, unique among the proxies.
    std::string name{};
    /// Where it listens.
    std::string listen = "127.0.0.1:0";
    /// Where it relays to.
    std::string upstream{};
    /// Whether it listens and relays; a disabled proxy holds no socket.
    bool enabled = true;
    /// TCP connections or UDP datagrams.
    Protocol protocol = Protocol::tcp;
};

/// What an update changes; what is not set keeps its value. A new listen or
/// upstream restarts the proxy (its connections are closed, its toxics kept).
struct ProxyChange {
    /// A new listening address.
    std::optional<std::string> listen{};
    /// A new upstream address.
    std::optional<std::string> upstream{};
    /// Enables or disables the proxy.
    std::optional<bool> enabled{};
};

/// What a proxy has done since it was created (restarts do not reset it).
struct Counters {
    std::uint64_t connections = 0;    ///< TCP connections accepted / UDP client flows started
    std::uint64_t active = 0;         ///< open now
    std::uint64_t refused = 0;        ///< TCP: upstream connects that failed; UDP: refusals seen
    std::uint64_t received_up = 0;    ///< bytes read from clients
    std::uint64_t bytes_up = 0;       ///< bytes written to the upstream
    std::uint64_t received_down = 0;  ///< bytes read from the upstream
    std::uint64_t bytes_down = 0;     ///< bytes written to the clients
    /// TCP: of bytes_up, those moved with splice(2), never copied through the
    /// proxy (FaultProxyOptions::splice).
    std::uint64_t spliced_up = 0;
    /// TCP: of bytes_down, those moved with splice(2).
    std::uint64_t spliced_down = 0;
    std::uint64_t datagrams_up = 0;    ///< UDP: received from clients
    std::uint64_t datagrams_down = 0;  ///< UDP: received from the upstream
    /// TCP: connections closed at once, unserved: over max_connections, or the
    /// process out of descriptors (see ferry::Acceptor).
    std::uint64_t shed = 0;
    std::uint64_t idle_closed = 0;  ///< TCP: closed after idle_timeout without a byte
    /// UDP: flows dropped to make room for a new client (udp_max_flows).
    std::uint64_t evicted = 0;
    /// UDP: what the toxics did to datagrams.
    UdpEffects effects;
};

/// A proxy as it is now: `config.listen` is the address actually bound
/// while it runs (`localhost:0` reads `127.0.0.1:41234`), and as given while
/// it is disabled. Toxics in Toxiproxy's order: upstream ones, then downstream.
struct ProxyState {
    /// Its configuration, with the address bound.
    ProxyConfig config;
    /// Its toxics, upstream ones first.
    std::vector<Toxic> toxics;
    /// What it has done.
    Counters counters;
};

/// What a FaultProxy call was asked that cannot be. `kind` maps to an HTTP
/// status in the API layer (400, 404, 409, 500); what() is Toxiproxy's own
/// message where it has one ("proxy not found", "toxic already exists").
class ProxyError : public std::runtime_error {
  public:
    /// What was wrong with the request.
    enum class Kind {
        invalid,    ///< a field missing or wrong
        not_found,  ///< no proxy or toxic of that name
        exists,     ///< the name is taken
        start,      ///< the proxy could not start: its address does not parse, resolve or bind
    };
    /// An error of `kind` saying `what`.
    ProxyError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    /// What was wrong with the request.
    [[nodiscard]] Kind kind() const noexcept { return kind_; }

  private:
    Kind kind_;
};

/// The address a proxy binds (`passive`) or relays to, from `HOST:PORT` or
/// `[IPV6]:PORT`: a name with both kinds of address (localhost) gives its
/// IPv4 one, as Toxiproxy's `localhost:0` binds 127.0.0.1; an empty listen
/// host is 127.0.0.1, never every interface. Throws ProxyError (Kind::start)
/// for a malformed address, ferry::Error for a bad port or a name that does
/// not resolve.
Address resolve_endpoint(const std::string& text, Protocol protocol, bool passive);

/// How every route of a FaultProxy behaves. Durations beyond ten years
/// (ferry::kPracticallyNever) mean practically never: they are clamped, so
/// no deadline computed from them overflows.
struct FaultProxyOptions {
    /// Seeds every random choice (toxicity draws, jitter, loss); unset: random.
    std::optional<std::uint64_t> seed{};
    /// A UDP client's flow (and its upstream socket) is dropped after this much silence.
    Duration udp_idle = std::chrono::seconds(60);
    /// UDP: client flows per route, each with a socket of its own. A datagram
    /// from a new client when the route is full evicts the least recently used
    /// flow (the one that sent or received last the longest ago), so a flood
    /// of source addresses cannot lock real clients out; evictions are counted
    /// (Counters::evicted) and warned about at most once a second. Lowered to
    /// half of what the soft RLIMIT_NOFILE leaves after 64 descriptors when
    /// that is less (224 flows for a limit of 512), at least 1.
    std::size_t udp_max_flows = 1024;
    /// TCP: connections open at once per route. One more is accepted and
    /// closed at once, unserved (its client sees end of stream, or a reset if
    /// it had sent already), counted in Counters::shed and warned about at
    /// most once a second. Unset: the smaller of 10000 and half of what the
    /// soft RLIMIT_NOFILE leaves after 64 descriptors (each connection holds
    /// two: the client's and the upstream's), at least 1.
    std::optional<std::size_t> max_connections{};
    /// TCP: a connection through which no byte has moved, either way, for this
    /// long is closed (both sides, FIN), as `ferry echo server --idle-timeout`
    /// does; counted in Counters::idle_closed. Unset: never, as Toxiproxy.
    std::optional<Duration> idle_timeout{};
    /// A TCP upstream that has not answered the connect by then counts as refusing.
    Duration connect_timeout = std::chrono::seconds(10);
    /// Flow control: a direction holding this many bytes not yet written stops
    /// reading from its sender, and resumes below half of it.
    std::size_t high_water = std::size_t{1} << 20;
    /// TCP: relay a direction with no toxic on it by splice(2) through a pipe
    /// (zero copy) instead of through a buffer; a toxic added to it on a live
    /// connection takes the bytes already in the pipe first, so none is lost
    /// or reordered, and it splices again once its toxics are gone and what
    /// they held has gone out. Only when the process ignores SIGPIPE (which
    /// splice(2) into a reset socket raises; the ferry command does): else,
    /// and with false, every byte goes through the buffer.
    bool splice = true;
    /// Told what goes wrong while relaying (an upstream refusing; and at most
    /// once a second with a count: connections refused out of descriptors or
    /// over max_connections, UDP flows evicted), one line naming the proxy;
    /// relaying goes on. Unset: silence.
    std::function<void(std::string_view)> on_warning{};
};

/// The options as a FaultProxy applies them: durations clamped to
/// [0, kPracticallyNever], max_connections filled in from RLIMIT_NOFILE when
/// unset, udp_max_flows lowered to what RLIMIT_NOFILE allows (see
/// FaultProxyOptions). Throws ferry::Error (EINVAL) for max_connections or
/// udp_max_flows 0.
FaultProxyOptions effective_options(FaultProxyOptions options);

/// Named proxies on one EventLoop, as Toxiproxy's server holds them. Every
/// change applies at once: a toxic added, changed or removed acts on the
/// connections and UDP flows already open (latency added shows on a live
/// connection's next bytes); disabling or removing a proxy closes its
/// listening socket and every connection.
///
/// Errors: ProxyError for a request that cannot be (unknown or duplicate
/// name, bad field, and Kind::start with the system's reason when a
/// listening socket cannot be bound or an address not resolved: a proxy
/// being created is then not created, one being updated is left disabled,
/// as Toxiproxy leaves them); ToxicError for a toxic that is not valid.
/// Thread-safety: none; call it on the loop's thread (FaultProxyThread does
/// that for callers on other threads).
class FaultProxy {
  public:
    /// Proxies on `loop` (which must outlive this object); none at first.
    explicit FaultProxy(EventLoop& loop, FaultProxyOptions options = {});
    ~FaultProxy();
    FaultProxy(const FaultProxy&) = delete;
    FaultProxy& operator=(const FaultProxy&) = delete;

    /// Creates a proxy and, when enabled, starts it; returns its state.
    ProxyState create(const ProxyConfig& config);
    /// Changes proxy `name`; returns its new state.
    ProxyState update(const std::string& name, const ProxyChange& change);
    /// Removes proxy `name`, closing its sockets and connections.
    void remove(const std::string& name);
    /// The state of proxy `name`.
    [[nodiscard]] ProxyState get(const std::string& name) const;
    /// Whether a proxy called `name` exists.
    [[nodiscard]] bool contains(const std::string& name) const;
    /// Every proxy, by name.
    [[nodiscard]] std::vector<ProxyState> list() const;

    /// Adds a toxic; toxics apply in the order they were added (TCP pieces
    /// and UDP datagrams pass through them in turn). Its name must be new in
    /// this proxy, and its type exist for the proxy's protocol.
    Toxic add_toxic(const std::string& proxy, Toxic toxic);
    /// Changes a toxic's toxicity or attributes (see apply_change()); returns it.
    Toxic update_toxic(const std::string& proxy, const std::string& toxic,
                       const ToxicChange& change, const ToxicRules& rules = {});
    /// Removes a toxic; the proxy's connections go on without it.
    void remove_toxic(const std::string& proxy, const std::string& toxic);
    /// One toxic of `proxy`.
    [[nodiscard]] Toxic get_toxic(const std::string& proxy, const std::string& toxic) const;

    /// Toxiproxy's reset: every proxy enabled, every toxic removed.
    void reset();

    /// The loop the proxies run on.
    [[nodiscard]] EventLoop& loop() const noexcept { return loop_; }

  private:
    struct Entry;
    Entry& find(const std::string& name) const;
    void start(Entry& entry);
    void notify_toxics(Entry& entry);

    EventLoop& loop_;
    FaultProxyOptions options_;
    Rng seeds_;
    std::uint64_t next_serial_ = 1;
    std::map<std::string, std::unique_ptr<Entry>> entries_;
};

/// Runs `fn` on `loop`'s thread and returns its result, or throws what it
/// threw; the caller waits. Called on the loop's own thread (from a handler
/// or posted work: EventLoop::in_loop_thread()), it runs `fn` at once, as
/// Asio's dispatch() does, where waiting would wait for itself. Never call it
/// once the loop has stopped for good.
template <class F>
auto call_on_loop(EventLoop& loop, F&& fn) -> std::invoke_result_t<F&> {
    if (loop.in_loop_thread()) return fn();
    using R = std::invoke_result_t<F&>;
    std::packaged_task<R()> task([&fn] { return fn(); });
    auto result = task.get_future();
    loop.post([&task] { task(); });
    return result.get();
}

/// A FaultProxy with an EventLoop on a thread of its own, for a test that
/// wants one line to start it:
///
///     ferry::testkit::FaultProxyThread proxy;
///     auto p = proxy.call([](FaultProxy& f) {
///         return f.create({.name = "db", .upstream = "127.0.0.1:5432"});
///     });
///     proxy.call([](FaultProxy& f) { f.add_toxic("db", parse_toxic("latency:down:latency=100"));
///     });
///
/// call() runs a function on the loop's thread and returns its result, or
/// throws what it threw. The destructor stops the loop and joins the thread.
/// Thread-safety: call() from any thread but the loop's own.
class FaultProxyThread {
  public:
    /// Starts the loop's thread with a FaultProxy of `options` on it.
    explicit FaultProxyThread(FaultProxyOptions options = {});
    ~FaultProxyThread();
    FaultProxyThread(const FaultProxyThread&) = delete;
    FaultProxyThread& operator=(const FaultProxyThread&) = delete;

    template <class F>
    /// Runs `fn(proxy)` on the loop's thread; returns its result or throws what it threw.
    auto call(F&& fn) -> std::invoke_result_t<F&, FaultProxy&> {
        return call_on_loop(loop_, [this, &fn] { return fn(*proxy_); });
    }

  private:
    void run();

    EventLoop loop_;
    std::function<void(std::string_view)> on_warning_;
    std::unique_ptr<FaultProxy> proxy_;
    std::thread thread_;
};

}  // namespace ferry::testkit
