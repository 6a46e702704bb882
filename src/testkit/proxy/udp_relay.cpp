// The fault proxy's UDP engine: one listening socket per route; each client address gets its
// own flow with a connected upstream socket (so the upstream's replies come back to it, and
// only from the upstream), and each direction of a flow passes its datagrams through a
// chain of UDP toxics. One datagram in, one send out: boundaries are never changed.
//
// Batched both ways: a readable socket is drained with recvmmsg, one batch after another
// while they come back full, and what the toxics pass on during that wakeup is queued and
// sent at its end with one sendmmsg per socket (the listening socket for every client, each
// flow's upstream socket for its own). A datagram a toxic releases later (a timer) is sent at
// once. Every toxic still sees one datagram at a time.
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
#include "ferry/datagram_batch.hpp"
#include "ferry/error.hpp"
#include "route_relay.hpp"

namespace ferry::testkit::detail {
namespace {

constexpr std::size_t kBatchSize = 64;
// Full batches drained in one wakeup before the loop serves its other sockets and timers.
constexpr int kBatchesPerWakeup = 16;
constexpr std::size_t kMaxDatagram = 65536;  // above the largest UDP payload (65527 on IPv6)

bool refused(const std::error_code& ec) {
    return ec == std::error_code(ECONNREFUSED, std::system_category());
}

bool would_block(const std::error_code& ec) {
    return ec == std::errc::operation_would_block || ec == std::errc::timed_out;
}

bool refused(const Error& e) {
    return refused(e.code());
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

    Socket& upstream() { return upstream_; }
    const Address& client() const { return client_; }
    /// The upstream said "port unreachable": counted, and said once per flow (through the
    /// relay's warn_flow, at most once a second across flows).
    void note_refused();
    /// A send of this flow failed: said once per flow.
    void warn_once(std::string text);

  private:
    void on_readable();
    void send_up(std::string datagram);
    void send_down(std::string datagram);

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

    /// A flow's first trouble (its upstream refuses, a send fails): said at once, then at
    /// most once a second with the count, since a flood of clients makes as many flows.
    void warn_flow(std::string text) {
        flow_warning_ = std::move(text);
        flow_warnings_.count();
    }

    /// `flow` sent or received: it becomes the most recently used.
    void touch(Flow& flow) { recency_.splice(recency_.begin(), recency_, flow.recency); }

    /// The batch every socket of the relay receives into (one wakeup at a time).
    DatagramBatch& incoming() { return incoming_; }
    /// Whether a wakeup is draining a socket: sends wait for flush() at its end.
    [[nodiscard]] bool batching() const { return batching_; }
    void begin_batch() { batching_ = true; }
    /// Sends what the wakeup queued, and ends the batch: sends go out at once again.
    void end_batch();
    /// Queues a datagram for `flow`'s upstream socket, or for its client.
    void queue_up(Flow& flow, std::string datagram) {
        up_queue_.push_back({&flow, std::move(datagram)});
    }
    void queue_down(Flow& flow, std::string datagram) {
        down_queue_.push_back({&flow, std::move(datagram)});
    }

  private:
    using Flows = std::unordered_map<std::string, std::unique_ptr<Flow>>;
    struct Queued {
        Flow* flow;
        std::string datagram;
    };
    /// Sends what was queued: one sendmmsg per socket (more when over a batch).
    void flush();
    /// Sends `count` queued datagrams through `sock`, kBatchSize at a time; each goes to its
    /// flow's client when `to_clients`, else to the socket's connected peer.
    void send_queued(Socket& sock, Queued* queued, std::size_t count, bool to_clients);

    void on_readable();
    /// The flow of a new client, after making room for it; nullptr when its socket cannot be had.
    Flow* start_flow(const Address& from, std::string key);
    void drop(Flows::iterator it);
    void sweep();

    DatagramBatch incoming_{kBatchSize, kMaxDatagram};
    DatagramBatch outgoing_{kBatchSize, 0};  // refers to queued datagrams while they are sent
    std::vector<Queued> up_queue_;
    std::vector<Queued> down_queue_;
    bool batching_ = false;
    Flows flows_;               // by raw client sockaddr
    std::list<Flow*> recency_;  // most recently used first: eviction takes the back
    std::size_t max_flows_;
    std::string no_socket_why_;   // before the warning that says it: it outlives it
    ThrottledWarning evictions_;  // the route is full: the least recently used flow goes
    ThrottledWarning no_socket_;  // a new client's upstream socket could not be opened
    std::string flow_warning_;    // the last flow's trouble, said by flow_warnings_
    ThrottledWarning flow_warnings_;
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
    relay_.begin_batch();
    DatagramBatch& batch = relay_.incoming();
    for (int round = 0; round < kBatchesPerWakeup; ++round) {
        std::error_code ec;
        upstream_.recvmmsg(batch, 0, ec);
        if (refused(ec)) {
            note_refused();
            continue;
        }
        if (ec) {
            if (!would_block(ec))
                warn_once(
                    fmt::format("from the upstream for {}: {}", client_.to_string(),
                                Error(ec, "recv from " + relay_.upstream().to_string()).what()));
            break;
        }
        last_active_ = Clock::now();
        relay_.touch(*this);
        for (std::size_t i = 0; i < batch.size(); ++i) {
            ++relay_.stats().datagrams_down;
            relay_.stats().received_down += batch.datagram(i).size();
            down_.push(std::string(batch.datagram(i)));
        }
        // A batch that did not fill up emptied the queue: no need to find it empty.
        if (!batch.full()) break;
    }
    relay_.end_batch();
}

void Flow::send_up(std::string datagram) {
    if (relay_.batching()) {
        relay_.queue_up(*this, std::move(datagram));
        return;
    }
    try {
        if (const IoResult n = upstream_.send(datagram)) {
            relay_.stats().bytes_up += *n;
            return;
        }
    } catch (const Error& e) {
        if (refused(e)) {
            note_refused();
        } else {
            warn_once(fmt::format("to the upstream for {}: {}", client_.to_string(), e.what()));
        }
    }
    ++relay_.stats().effects.dropped;  // the socket's queue is full, or the send failed
}

void Flow::send_down(std::string datagram) {
    if (relay_.batching()) {
        relay_.queue_down(*this, std::move(datagram));
        return;
    }
    try {
        if (const IoResult n = relay_.listener().sendto(datagram, client_)) {
            relay_.stats().bytes_down += *n;
            return;
        }
    } catch (const Error& e) {
        warn_once(fmt::format("to {}: {}", client_.to_string(), e.what()));
    }
    ++relay_.stats().effects.dropped;
}

void Flow::warn_once(std::string text) {
    if (warned_) return;
    warned_ = true;
    relay_.warn_flow(std::move(text));
}

void Flow::note_refused() {
    ++relay_.stats().refused;
    warn_once(fmt::format(
        "the upstream refused datagrams from {} (ICMP port unreachable: nothing listening there?)",
        client_.to_string()));
}

// ---- UdpRelay ---------------------------------------------------------------------------

UdpRelay::UdpRelay(EventLoop& loop, RouteState& state, const Address& listen,
                   const FaultProxyOptions& settings, std::uint64_t seed)
    // No scratch buffer: every read goes into the batch.
    : RouteRelay(loop, state, listen, settings, seed, SOCK_DGRAM, 0),
      max_flows_(std::max<std::size_t>(1, settings.udp_max_flows)),
      evictions_(*this,
                 [this](std::uint64_t n) {
                     return fmt::format(
                         "too many clients (max {} flows): {} least recently used {} evicted in "
                         "the last second",
                         max_flows_, n, n == 1 ? "flow" : "flows");
                 }),
      no_socket_(*this,
                 [this](std::uint64_t n) {
                     return fmt::format("{} {} from new clients dropped in the last second: {}", n,
                                        n == 1 ? "datagram" : "datagrams", no_socket_why_);
                 }),
      flow_warnings_(*this, [this](std::uint64_t n) {
          return n == 1 ? flow_warning_
                        : fmt::format("{} flows in trouble in the last second, the last: {}", n,
                                      flow_warning_);
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
    up_queue_.clear();
    down_queue_.clear();
    flows_.clear();
    recency_.clear();
}

void UdpRelay::on_readable() {
    begin_batch();
    for (int round = 0; round < kBatchesPerWakeup; ++round) {
        std::error_code ec;
        listener_.recvmmsg(incoming_, 0, ec);
        if (ec) {
            if (!would_block(ec)) warn(Error(ec, "recvmmsg on " + local_.to_string()).what());
            break;
        }
        for (std::size_t i = 0; i < incoming_.size(); ++i) {
            const std::string_view datagram = incoming_.datagram(i);
            const Address& from = incoming_.address(i);
            ++stats().datagrams_up;
            stats().received_up += datagram.size();
            std::string key(reinterpret_cast<const char*>(from.data()), from.size());
            const auto it = flows_.find(key);
            Flow* flow = it != flows_.end() ? it->second.get() : start_flow(from, std::move(key));
            if (flow == nullptr) continue;
            flow->from_client(std::string(datagram));
        }
        // A batch that did not fill up emptied the queue: no need to find it empty.
        if (!incoming_.full()) break;
    }
    end_batch();
}

void UdpRelay::end_batch() {
    flush();
    batching_ = false;
}

void UdpRelay::flush() {
    // Each flow's datagrams go out through its own socket, in the order they came.
    std::stable_sort(up_queue_.begin(), up_queue_.end(), [](const Queued& a, const Queued& b) {
        return std::less<const Flow*>()(a.flow, b.flow);
    });
    for (std::size_t i = 0; i < up_queue_.size();) {
        std::size_t end = i;
        while (end < up_queue_.size() && up_queue_[end].flow == up_queue_[i].flow)
            ++end;
        send_queued(up_queue_[i].flow->upstream(), up_queue_.data() + i, end - i, false);
        i = end;
    }
    up_queue_.clear();
    send_queued(listener_, down_queue_.data(), down_queue_.size(), true);
    down_queue_.clear();
}

void UdpRelay::send_queued(Socket& sock, Queued* queued, std::size_t count, bool to_clients) {
    for (std::size_t base = 0; base < count; base += outgoing_.capacity()) {
        const std::size_t n = std::min(count - base, outgoing_.capacity());
        outgoing_.clear();
        for (std::size_t i = 0; i < n; ++i) {
            const Queued& q = queued[base + i];
            outgoing_.add(q.datagram.data(), q.datagram.size(),
                          to_clients ? &q.flow->client() : nullptr);
        }
        std::size_t next = 0;
        while (next < n) {
            std::error_code ec;
            const std::size_t sent = sock.sendmmsg(outgoing_, next, 0, ec);
            if (!ec) {
                for (std::size_t i = next; i < next + sent; ++i)
                    (to_clients ? stats().bytes_down : stats().bytes_up) +=
                        outgoing_.datagram(i).size();
                next += sent;
                continue;
            }
            if (would_block(ec)) {
                // The socket's queue is full: the rest are dropped, as the network could.
                stats().effects.dropped += n - next;
                break;
            }
            Flow& flow = *queued[base + next].flow;
            if (!to_clients && refused(ec)) {
                flow.note_refused();
            } else if (to_clients) {
                flow.warn_once(
                    fmt::format("to {}: {}", flow.client().to_string(),
                                Error(ec, "sendto " + flow.client().to_string()).what()));
            } else {
                flow.warn_once(fmt::format("to the upstream for {}: {}", flow.client().to_string(),
                                           Error(ec, "send to " + upstream_.to_string()).what()));
            }
            ++stats().effects.dropped;
            ++next;
        }
    }
}

Flow* UdpRelay::start_flow(const Address& from, std::string key) {
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
        flow = std::make_unique<Flow>(*this, from, rng_());
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
    flush();  // what is queued may be the dropped flow's
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
