// The fault proxy's UDP engine: one listening socket per route; each client address gets its
// own flow with a connected upstream socket (so the upstream's replies come back to it, and
// only from the upstream), and each direction of a flow passes its datagrams through a
// chain of UDP toxics. One datagram in, one send out: boundaries are never changed.
//
// When the route's toxics change, every flow rebuilds its chains. A datagram a removed toxic
// still holds (latency, bandwidth) is passed on when its time comes, straight to its
// receiver: the chain it came from is gone.
#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <list>
#include <string>
#include <unordered_map>

#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "route_relay.hpp"

namespace ferry::testkit::detail {
namespace {

constexpr int kDatagramsPerWakeup = 64;
constexpr std::size_t kMaxDatagram = 65536;  // above the largest UDP payload (65527 on IPv6)

bool refused(const Error& e) {
    return e.code() == std::error_code(ECONNREFUSED, std::system_category());
}

/// A direction's toxics in order; each draws its toxicity per datagram, and
/// one it skips goes on to the next untouched.
class Chain {
  public:
    Chain(Rng& rng, std::function<void(std::string)> sink) : rng_(rng), sink_(std::move(sink)) {}
    Chain(const Chain&) = delete;
    Chain& operator=(const Chain&) = delete;

    void add(std::unique_ptr<UdpToxic> toxic, double toxicity) {
        const std::size_t next = stages_.size() + 1;
        stages_.push_back(
            {std::move(toxic), toxicity, [this, next, generation = generation_](std::string d) {
                 // From a toxic of an older chain (held while the toxics changed).
                 if (generation != generation_) {
                     sink_(std::move(d));
                     return;
                 }
                 forward(next, std::move(d));
             }});
    }
    /// Drops every stage: the next add()s build a new chain.
    void clear() {
        ++generation_;
        stages_.clear();
    }
    void push(std::string datagram) { forward(0, std::move(datagram)); }

  private:
    struct Stage {
        std::unique_ptr<UdpToxic> toxic;
        double toxicity;
        UdpToxic::Emit emit;
    };

    void forward(std::size_t i, std::string datagram) {
        if (i == stages_.size()) {
            sink_(std::move(datagram));
            return;
        }
        const Stage& stage = stages_[i];
        if (stage.toxicity < 1.0 &&
            !(std::uniform_real_distribution<double>(0, 1)(rng_) < stage.toxicity)) {
            forward(i + 1, std::move(datagram));
            return;
        }
        stage.toxic->push(std::move(datagram), stage.emit);
    }

    Rng& rng_;
    std::function<void(std::string)> sink_;
    std::vector<Stage> stages_;
    std::uint64_t generation_ = 0;
};

class UdpRelay;

/// One client address: its upstream socket and the toxics of both directions.
class Flow {
  public:
    /// Where a flow stands in its relay's order of use, most recent first.
    using Recency = std::list<Flow*>::iterator;

    Flow(UdpRelay& relay, Address client, std::uint64_t seed);
    ~Flow();
    Flow(const Flow&) = delete;
    Flow& operator=(const Flow&) = delete;

    void from_client(std::string datagram);
    [[nodiscard]] Clock::time_point last_active() const { return last_active_; }
    /// Builds both chains from the route's toxics as they are now.
    void attach_toxics();

    std::string key;  // the client's raw sockaddr: its entry in the relay's map
    Recency recency;  // set by the relay

  private:
    void on_readable();
    void send_up(std::string datagram);
    void send_down(std::string datagram);
    void note_refused();

    UdpRelay& relay_;
    Address client_;
    Socket upstream_;
    Rng rng_;
    Timers timers_;  // before the chains: their toxics cancel timers as they go
    Chain up_;
    Chain down_;
    Clock::time_point last_active_ = Clock::now();
    bool warned_ = false;
};

class UdpRelay final : public RouteRelay {
  public:
    UdpRelay(EventLoop& loop, RouteState& state, const Address& listen,
             const FaultProxyOptions& settings, std::uint64_t seed);
    ~UdpRelay() override;

    void toxics_changed() override {
        for (auto& [key, flow] : flows_)
            flow->attach_toxics();
    }

    /// `flow` sent or received: it becomes the most recently used.
    void touch(Flow& flow) { recency_.splice(recency_.begin(), recency_, flow.recency); }

  private:
    using Flows = std::unordered_map<std::string, std::unique_ptr<Flow>>;

    void on_readable();
    /// The flow of a new client, after making room for it; nullptr when its socket cannot be had.
    Flow* start_flow(const Received& got, std::string key);
    void drop(Flows::iterator it);
    void sweep();

    Flows flows_;               // by raw client sockaddr
    std::list<Flow*> recency_;  // most recently used first: eviction takes the back
    std::size_t max_flows_;
    std::string no_socket_why_;   // before the warning that says it: it outlives it
    ThrottledWarning evictions_;  // the route is full: the least recently used flow goes
    ThrottledWarning no_socket_;  // a new client's upstream socket could not be opened
    EventLoop::TimerId sweeper_ = 0;
};

// ---- Flow -------------------------------------------------------------------------------

Flow::Flow(UdpRelay& relay, Address client, std::uint64_t seed)
    : relay_(relay),
      client_(std::move(client)),
      upstream_(relay.upstream().family(), SOCK_DGRAM | SOCK_NONBLOCK),
      rng_(seed),
      timers_(relay.loop()),
      up_(rng_, [this](std::string d) { send_up(std::move(d)); }),
      down_(rng_, [this](std::string d) { send_down(std::move(d)); }) {
    // Connected: the kernel fills in the route once, filters out datagrams
    // from anyone but the upstream, and reports its ICMP "port unreachable".
    upstream_.connect(relay.upstream());
    attach_toxics();
    relay.loop().watch(upstream_.fd(), events::readable, [this](std::uint32_t) { on_readable(); });
    ++relay.stats().connections;
    ++relay.stats().active;
}

void Flow::attach_toxics() {
    up_.clear();
    down_.clear();
    UdpEffects& effects = relay_.stats().effects;
    for (const ToxicSlot& slot : relay_.state().toxics) {
        const Toxic& spec = slot.toxic;
        if (spec.direction != Direction::down)
            up_.add(make_udp_toxic(spec, rng_, timers_, effects), spec.toxicity);
        if (spec.direction != Direction::up)
            down_.add(make_udp_toxic(spec, rng_, timers_, effects), spec.toxicity);
    }
}

Flow::~Flow() {
    relay_.loop().unwatch(upstream_.fd());
    --relay_.stats().active;
}

void Flow::from_client(std::string datagram) {
    last_active_ = Clock::now();
    relay_.touch(*this);
    up_.push(std::move(datagram));
}

void Flow::on_readable() {
    for (int i = 0; i < kDatagramsPerWakeup; ++i) {
        IoResult n;
        try {
            n = upstream_.recv(relay_.scratch(), kMaxDatagram);
        } catch (const Error& e) {
            if (refused(e)) {
                note_refused();
                continue;
            }
            relay_.warn(fmt::format("from the upstream for {}: {}", client_.to_string(), e.what()));
            return;
        }
        if (!n) return;
        ++relay_.stats().datagrams_down;
        relay_.stats().received_down += *n;
        last_active_ = Clock::now();
        relay_.touch(*this);
        down_.push(std::string(relay_.scratch(), *n));
    }
}

void Flow::send_up(std::string datagram) {
    try {
        if (const IoResult n = upstream_.send(datagram)) {
            relay_.stats().bytes_up += *n;
            return;
        }
    } catch (const Error& e) {
        if (refused(e)) {
            note_refused();
        } else if (!warned_) {
            warned_ = true;
            relay_.warn(fmt::format("to the upstream for {}: {}", client_.to_string(), e.what()));
        }
    }
    ++relay_.stats().effects.dropped;  // the socket's queue is full, or the send failed
}

void Flow::send_down(std::string datagram) {
    try {
        if (const IoResult n = relay_.listener().sendto(datagram, client_)) {
            relay_.stats().bytes_down += *n;
            return;
        }
    } catch (const Error& e) {
        if (!warned_) {
            warned_ = true;
            relay_.warn(fmt::format("to {}: {}", client_.to_string(), e.what()));
        }
    }
    ++relay_.stats().effects.dropped;
}

void Flow::note_refused() {
    ++relay_.stats().refused;
    if (warned_) return;
    warned_ = true;
    relay_.warn(fmt::format(
        "the upstream refused datagrams from {} (ICMP port unreachable: nothing listening there?)",
        client_.to_string()));
}

// ---- UdpRelay ---------------------------------------------------------------------------

UdpRelay::UdpRelay(EventLoop& loop, RouteState& state, const Address& listen,
                   const FaultProxyOptions& settings, std::uint64_t seed)
    : RouteRelay(loop, state, listen, settings, seed, SOCK_DGRAM, kMaxDatagram),
      max_flows_(std::max<std::size_t>(1, settings.udp_max_flows)),
      evictions_(*this,
                 [this](std::uint64_t n) {
                     return fmt::format(
                         "too many clients (max {} flows): {} least recently used {} evicted in "
                         "the last second",
                         max_flows_, n, n == 1 ? "flow" : "flows");
                 }),
      no_socket_(*this, [this](std::uint64_t n) {
          return fmt::format("{} {} from new clients dropped in the last second: {}", n,
                             n == 1 ? "datagram" : "datagrams", no_socket_why_);
      }) {
    loop_.watch(listener_.fd(), events::readable, [this](std::uint32_t) { on_readable(); });
    const Duration period = std::clamp<Duration>(
        settings_.udp_idle / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
    sweeper_ = loop_.add_timer(
        period, [this] { sweep(); }, period);
}

UdpRelay::~UdpRelay() {
    loop_.cancel_timer(sweeper_);
    loop_.unwatch(listener_.fd());
    flows_.clear();
    recency_.clear();
}

void UdpRelay::on_readable() {
    for (int i = 0; i < kDatagramsPerWakeup; ++i) {
        std::optional<Received> got;
        try {
            got = listener_.recvfrom(scratch_.data(), scratch_.size());
        } catch (const Error& e) {
            warn(e.what());
            return;
        }
        if (!got) return;
        ++stats().datagrams_up;
        stats().received_up += got->size;
        std::string key(reinterpret_cast<const char*>(got->from.data()), got->from.size());
        const auto it = flows_.find(key);
        Flow* flow = it != flows_.end() ? it->second.get() : start_flow(*got, std::move(key));
        if (flow == nullptr) continue;
        flow->from_client(std::string(scratch_.data(), got->size));
    }
}

Flow* UdpRelay::start_flow(const Received& got, std::string key) {
    // Full: the least recently used flow makes room, so that a flood of new
    // source addresses (spoofed or not) can never lock a new client out; a
    // flow in real use is the most recently used and goes last.
    if (flows_.size() >= max_flows_) {
        drop(flows_.find(recency_.back()->key));
        ++stats().evicted;
        evictions_.count();
    }
    std::unique_ptr<Flow> flow;
    try {
        flow = std::make_unique<Flow>(*this, got.from, rng_());
    } catch (const Error& e) {
        ++stats().effects.dropped;
        no_socket_why_ = e.what();
        no_socket_.count();
        return nullptr;
    }
    flow->key = key;
    recency_.push_front(flow.get());
    flow->recency = recency_.begin();
    return flows_.emplace(std::move(key), std::move(flow)).first->second.get();
}

void UdpRelay::drop(Flows::iterator it) {
    recency_.erase(it->second->recency);
    flows_.erase(it);
}

void UdpRelay::sweep() {
    const auto now = Clock::now();
    // The least recently used are at the back: stop at the first that is not idle.
    while (!recency_.empty() && now - recency_.back()->last_active() >= settings_.udp_idle)
        drop(flows_.find(recency_.back()->key));
}

}  // namespace

std::unique_ptr<RouteRelay> start_udp_relay(EventLoop& loop, RouteState& state,
                                            const Address& listen,
                                            const FaultProxyOptions& settings, std::uint64_t seed) {
    return std::make_unique<UdpRelay>(loop, state, listen, settings, seed);
}

}  // namespace ferry::testkit::detail
