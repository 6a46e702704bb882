// The fault proxy's TCP engine: accept a client, connect to the upstream, and relay both
// directions on the event loop, each through its toxics, with flow control and half-close.
//
// Each direction ("stream") reads from one socket and writes to the other. Without toxics
// the bytes go straight into the output Buffer (one readv, one send). With toxics each read
// becomes a Piece that the toxics stamp with the time it may be written; a timer moves due
// pieces into the output Buffer. Flow control: once a stream holds kHighWater bytes not yet
// written (scheduled or buffered) it stops reading from its sender until half of that has
// drained, so a slow receiver or a bandwidth toxic never makes the proxy buffer without bound.
//
// Toxics change while connections are open: each connection keeps, per toxic of its route,
// the model instances it drew (by the toxic's serial number). When the route's list changes,
// it keeps the instances whose serial is unchanged, builds new ones for toxics added or
// updated (with a fresh toxicity draw and end timer, as Toxiproxy restarts a changed toxic),
// and drops the rest. Pieces already scheduled keep their times, so bytes never reorder.
//
// Zero copy: a stream with no toxics and nothing buffered or scheduled moves its bytes with
// splice(2), socket -> pipe -> socket, never through user space (as nginx and HAProxy relay).
// The pipe is taken from the relay's pool when bytes come and given back once it is empty,
// so only directions with bytes in flight hold one (at most kMaxPipes per route, two
// descriptors each; without one a stream is relayed through the buffer). The moment a toxic
// is attached to a splicing stream, the bytes in its pipe move into the output Buffer, ahead
// of anything read later, and the stream is buffered from then on: the toxics see every byte
// read after that. Once its toxics are gone and its buffer and schedule have drained, the
// stream splices again. Splicing needs the process to ignore SIGPIPE, which splice(2) into
// a reset socket raises (the ferry command does); otherwise every stream is buffered.
#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <limits>
#include <map>
#include <unordered_map>

#include "ferry/acceptor.hpp"
#include "ferry/buffer.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "ferry/splice_pipe.hpp"
#include "route_relay.hpp"

namespace ferry::testkit::detail {
namespace {

constexpr int kClient = 0;
constexpr int kUpstream = 1;
constexpr unsigned kAcceptsPerWakeup = 64;
constexpr std::size_t kReadChunk = 64 * 1024;
/// Pipes a route splices through at once (HAProxy's maxpipes): a stream with bytes
/// in flight holds one; when all are taken, further streams are buffered.
constexpr std::size_t kMaxPipes = 64;

class TcpRelay;

/// Accepting for a route: out of descriptors it sheds and pauses, and says so
/// at most once a second, in the route's name (see ferry::Acceptor).
AcceptorOptions accept_options(const RouteRelay& relay) {
    AcceptorOptions options;
    options.max_per_wakeup = kAcceptsPerWakeup;
    options.on_warning = [&relay](std::string_view line) { relay.warn(std::string(line)); };
    return options;
}

/// One direction of a connection: read from sockets[from], written to sockets[to].
struct Stream {
    Stream(int f, int t) : from(f), to(t) {}
    int from;
    int to;
    Buffer out;                        // due for the receiver
    std::unique_ptr<SplicePipe> pipe;  // splicing: bytes read, not yet written (before `out`)
    bool pipe_full = false;            // the last splice in found no room: wait for a drain
    bool splice_refused = false;       // a socket splice(2) does not take (EINVAL): buffered
    std::deque<Piece> scheduled;       // through the toxics, not yet due
    std::size_t scheduled_bytes = 0;
    std::vector<TcpToxic*> toxics;  // owned by the connection's Attached entries
    bool reading = true;            // the sender has not ended its side
    bool paused = false;            // over the high-water mark: not reading
    bool eof_due = false;           // the end reached the output: shut down once `out` drains
    bool close_due = false;         // a close (limit_data) reached the output
    bool done = false;              // the receiver was shut down for writing
    Scheduler::Id timer = 0;

    [[nodiscard]] std::size_t in_pipe() const { return pipe ? pipe->size() : 0; }
    [[nodiscard]] std::size_t backlog() const { return out.size() + scheduled_bytes + in_pipe(); }
    /// Bytes are waiting for the receiver to take them.
    [[nodiscard]] bool unwritten() const { return !out.empty() || in_pipe() > 0; }
    /// Whether the next read may splice: nothing for the toxics to see, nothing ahead of it.
    [[nodiscard]] bool may_splice() const {
        return !splice_refused && toxics.empty() && scheduled.empty() && out.empty();
    }
    /// Toxics gone and what they held handed to `out`: the next read waits for `out` to
    /// drain, so that it can splice. Read now, it would queue behind `out`, and a sender
    /// faster than the receiver would keep the stream off splicing to its end.
    [[nodiscard]] bool waits_to_splice(bool splicing) const {
        return splicing && !splice_refused && toxics.empty() && scheduled.empty() && !out.empty();
    }
};

class Connection {
  public:
    Connection(TcpRelay& relay, std::uint64_t id, Socket client, Address peer);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void start();
    /// The route's toxics changed: keep, replace or drop this connection's instances.
    void attach_toxics();
    /// Closes it if no byte has moved either way since `since` (connected ones only:
    /// a connect in progress has its own timeout). True if it closed.
    bool close_if_idle(Clock::time_point since);

  private:
    /// One toxic of the route as this connection drew it.
    struct Attached {
        std::uint64_t serial = 0;
        bool chosen = false;  // its toxicity draw: false means it passes this connection by
        std::unique_ptr<TcpToxic> up, down;
        Scheduler::Id end_timer = 0;
    };

    void on_event(int side, std::uint32_t ready);
    void on_connected();
    void read(Stream& s);
    /// Whether `s` is read from now (not ended, not over the high-water mark, room to read).
    [[nodiscard]] bool may_read(const Stream& s) const;
    /// read() for a stream that may splice; false when no pipe is to be had.
    bool splice_in(Stream& s);
    /// Writes what the stream's pipe holds; false if bytes remain (or it failed).
    bool splice_out(Stream& s);
    /// Moves what the stream's pipe holds into its buffer and gives the pipe back.
    void stop_splicing(Stream& s);
    /// Gives an empty pipe back to the relay's pool (a full one is closed).
    void give_back(Stream& s);
    void deliver(Stream& s);
    void flush(Stream& s);
    void sync(int side);
    void sync_all() {
        sync(kClient);
        sync(kUpstream);
    }
    void close();
    void reset(unsigned sides);
    void failed(int side) { reset(1u << (1 - side)); }
    void refuse(const std::string& why);
    void unwatch_all();

    Stream& reading_from(int side) { return side == kClient ? up_ : down_; }
    Stream& writing_to(int side) { return side == kClient ? down_ : up_; }

    TcpRelay& relay_;
    std::uint64_t id_;
    Address peer_;
    Socket sockets_[2];
    Stream up_{kClient, kUpstream};
    Stream down_{kUpstream, kClient};
    Rng rng_;
    Timers timers_;
    std::vector<Attached> attached_;
    Clock::time_point last_activity_ = Clock::now();  // a byte read or written, either side
    bool connecting_ = true;
    bool closed_ = false;
};

class TcpRelay final : public RouteRelay {
  public:
    TcpRelay(EventLoop& loop, RouteState& state, const Address& listen,
             const FaultProxyOptions& settings, std::uint64_t seed);
    ~TcpRelay() override;

    void toxics_changed() override;
    void publish_counters() override;

    /// Called by a connection that closed: it is freed after the current loop round.
    void retire(std::uint64_t id);

    /// A connection closed because its upstream could not be reached (`why`): said at
    /// once, then at most once a second with the count, as a refused upstream under a
    /// flood of clients would otherwise write a line per connection.
    void refused(std::string why, const Address& peer);

    /// A pipe to splice through, or null: splicing off, kMaxPipes taken, or
    /// none can be opened (out of descriptors).
    std::unique_ptr<SplicePipe> take_pipe();
    /// Whether splicing is on (not --no-splice, SIGPIPE ignored).
    [[nodiscard]] bool splicing() const noexcept { return splice_; }
    /// Takes back a pipe from take_pipe(): kept for the next taker when empty.
    void give_pipe(std::unique_ptr<SplicePipe> pipe);

  private:
    void on_accept(Accepted client);
    void close_idle();

    std::size_t max_connections_;
    bool splice_;                                     // SIGPIPE ignored: splice(2) is safe
    std::vector<std::unique_ptr<SplicePipe>> pipes_;  // empty, for the next taker
    std::size_t pipes_taken_ = 0;
    ThrottledWarning over_capacity_;
    std::string last_refusal_;  // why the last refused connection was closed, and its client
    ThrottledWarning refusals_;
    LoopAcceptor acceptor_;
    std::uint64_t acceptor_counted_ = 0;  // the acceptor's refusals already in the counters
    EventLoop::TimerId idle_sweeper_ = 0;
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
    std::vector<std::unique_ptr<Connection>> retired_;
    // Expires with the relay: the posted clean-up of retired_ checks it, since
    // a proxy can be disabled or removed before the loop runs posted work.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// ---- Connection -------------------------------------------------------------------------

Connection::Connection(TcpRelay& relay, std::uint64_t id, Socket client, Address peer)
    : relay_(relay), id_(id), peer_(std::move(peer)), rng_(relay.rng()()), timers_(relay.loop()) {
    sockets_[kClient] = std::move(client);
}

Connection::~Connection() {
    give_back(up_);
    give_back(down_);
    if (closed_) return;
    unwatch_all();  // the relay is going away with its connections open
    --relay_.stats().active;
}

void Connection::give_back(Stream& s) {
    if (!s.pipe) return;
    s.pipe_full = false;
    relay_.give_pipe(std::move(s.pipe));
}

void Connection::stop_splicing(Stream& s) {
    if (!s.pipe) return;
    s.pipe->drain_into(s.out);
    give_back(s);
}

void Connection::unwatch_all() {
    for (Socket& s : sockets_)
        if (s) relay_.loop().unwatch(s.fd());
}

void Connection::start() {
    ++relay_.stats().connections;
    ++relay_.stats().active;
    const Address& upstream = relay_.upstream();
    try {
        Socket up(upstream.family(), SOCK_STREAM | SOCK_NONBLOCK);
        // Small writes (a slicer's, an interactive client's) go out at once, as the client
        // sent them; Nagle would merge them and add up to a round trip of delay.
        up.set_no_delay(true);
        sockets_[kClient].set_no_delay(true);
        const bool connected = up.connect(upstream);
        sockets_[kUpstream] = std::move(up);
        if (connected) {
            on_connected();
            return;
        }
        timers_.after(relay_.settings().connect_timeout, [this, upstream] {
            refuse("connect to " + upstream.to_string() + ": timed out");
        });
        sync(kUpstream);
    } catch (const Error& e) {
        refuse(e.what());
    }
}

void Connection::refuse(const std::string& why) {
    ++relay_.stats().refused;
    relay_.refused(why, peer_);
    close();
}

void Connection::on_connected() {
    connecting_ = false;
    timers_.cancel_all();  // the connect timeout
    attach_toxics();
    sync_all();
}

void Connection::attach_toxics() {
    if (connecting_ || closed_) return;  // on_connected attaches them
    std::vector<Attached> next;
    bool close_now = false;
    for (const ToxicSlot& slot : relay_.state().toxics) {
        const auto same = std::find_if(attached_.begin(), attached_.end(),
                                       [&](const Attached& a) { return a.serial == slot.serial; });
        if (same != attached_.end()) {
            next.push_back(std::move(*same));
            attached_.erase(same);
            continue;
        }
        const Toxic& spec = slot.toxic;
        Attached a;
        a.serial = slot.serial;
        // One draw per toxic and connection, so that a toxic on "both"
        // directions applies to both or to neither.
        a.chosen = spec.toxicity >= 1.0 ||
                   std::uniform_real_distribution<double>(0, 1)(rng_) < spec.toxicity;
        if (a.chosen) {
            unsigned sides = 0;
            std::optional<TcpEnd> end;
            if (spec.direction != Direction::down) {
                a.up = make_tcp_toxic(spec, rng_);
                if ((end = a.up->end())) sides |= 1u << kUpstream;
            }
            if (spec.direction != Direction::up) {
                a.down = make_tcp_toxic(spec, rng_);
                if (const auto e = a.down->end()) {
                    end = e;
                    sides |= 1u << kClient;
                }
            }
            if (end) {
                if (end->kind == TcpEnd::Kind::close)
                    a.end_timer = timers_.after(end->after, [this] { close(); });
                else
                    a.end_timer = timers_.after(end->after, [this, sides] { reset(sides); });
            }
        }
        next.push_back(std::move(a));
    }
    // What is left was removed from the route, or changed (and rebuilt above).
    for (Attached& gone : attached_) {
        if (gone.end_timer != 0) timers_.cancel(gone.end_timer);
        const bool still_there =
            std::any_of(relay_.state().toxics.begin(), relay_.state().toxics.end(),
                        [&](const ToxicSlot& t) { return t.serial == gone.serial; });
        for (const auto* t : {gone.up.get(), gone.down.get()})
            if (t != nullptr && t->closes_when_removed() && !still_there) close_now = true;
    }
    attached_ = std::move(next);
    up_.toxics.clear();
    down_.toxics.clear();
    for (const Attached& a : attached_) {
        if (a.up) up_.toxics.push_back(a.up.get());
        if (a.down) down_.toxics.push_back(a.down.get());
    }
    if (close_now) {
        close();
        return;
    }
    // A toxic on a splicing stream sees every byte read from now on: what the
    // pipe holds was read before, and goes out first, as the buffer's bytes would.
    for (Stream* s : {&up_, &down_}) {
        if (s->toxics.empty() || !s->pipe) continue;
        try {
            stop_splicing(*s);
        } catch (const Error&) {
            reset((1u << kClient) | (1u << kUpstream));
            return;
        }
    }
}

void Connection::on_event(int side, std::uint32_t ready) {
    if (closed_) return;
    if (connecting_) {
        try {
            sockets_[kUpstream].finish_connect(relay_.upstream());
        } catch (const Error& e) {
            refuse(e.what());
            return;
        }
        on_connected();
        return;
    }
    if ((ready & events::error) != 0 && sockets_[side].get_option<int>(SOL_SOCKET, SO_ERROR) != 0) {
        failed(side);
        return;
    }
    Stream& out = writing_to(side);
    if (out.unwritten() && (ready & (events::writable | events::hangup)) != 0) {
        flush(out);
        if (closed_) return;
    }
    Stream& in = reading_from(side);
    if (may_read(in) && (ready & (events::readable | events::hangup)) != 0) {
        read(in);
        if (closed_) return;
    }
    sync_all();
}

bool Connection::may_read(const Stream& s) const {
    return s.reading && !s.paused && !s.pipe_full && !s.waits_to_splice(relay_.splicing());
}

void Connection::read(Stream& s) {
    Socket& src = sockets_[s.from];
    std::uint64_t& received =
        s.from == kClient ? relay_.stats().received_up : relay_.stats().received_down;
    if (s.may_splice() && splice_in(s)) return;
    // Straight into the output buffer unless toxics are on, or pieces that
    // toxics scheduled before they were removed still wait their turn.
    if (s.toxics.empty() && s.scheduled.empty()) {
        IoResult n;
        try {
            n = s.out.read_from(src.fd());
        } catch (const Error&) {
            failed(s.from);
            return;
        }
        if (!n) return;
        last_activity_ = Clock::now();
        received += *n;
        if (*n == 0) {
            s.reading = false;
            s.eof_due = true;
        }
        flush(s);
        return;
    }
    IoResult n;
    try {
        n = src.recv(relay_.scratch(), kReadChunk);
    } catch (const Error&) {
        failed(s.from);
        return;
    }
    if (!n) return;
    last_activity_ = Clock::now();
    received += *n;
    std::vector<Piece> pieces;
    if (*n == 0) {
        s.reading = false;
        pieces.push_back({Piece::Kind::eof, {}, Clock::now()});
    } else {
        pieces.push_back({Piece::Kind::data, std::string(relay_.scratch(), *n), Clock::now()});
    }
    for (TcpToxic* toxic : s.toxics)
        toxic->apply(pieces);
    for (Piece& p : pieces) {
        s.scheduled_bytes += p.bytes.size();
        s.scheduled.push_back(std::move(p));
    }
    deliver(s);
}

bool Connection::splice_in(Stream& s) {
    if (!s.pipe && !(s.pipe = relay_.take_pipe())) return false;
    Socket& src = sockets_[s.from];
    IoResult n;
    try {
        n = s.pipe->fill_from(src.fd());
    } catch (const Error& e) {
        if (e.code() == std::errc::invalid_argument && s.pipe->empty()) {
            s.splice_refused = true;
            give_back(s);
            return false;
        }
        failed(s.from);
        return true;
    }
    if (!n) {
        // No room in the pipe (or, as well, nothing to read): read again once
        // some of it went out; with the pipe empty it was nothing to read.
        if (s.pipe->empty())
            give_back(s);
        else
            s.pipe_full = true;
        return true;
    }
    last_activity_ = Clock::now();
    (s.from == kClient ? relay_.stats().received_up : relay_.stats().received_down) += *n;
    if (*n == 0) {
        s.reading = false;
        s.eof_due = true;
    }
    flush(s);
    return true;
}

bool Connection::splice_out(Stream& s) {
    const int dst = sockets_[s.to].fd();
    Counters& stats = relay_.stats();
    std::uint64_t& sent = s.to == kUpstream ? stats.bytes_up : stats.bytes_down;
    std::uint64_t& spliced = s.to == kUpstream ? stats.spliced_up : stats.spliced_down;
    while (s.pipe && !s.pipe->empty()) {
        IoResult n;
        try {
            n = s.pipe->drain_to(dst);
        } catch (const Error&) {
            failed(s.to);
            return false;
        }
        if (!n) return false;
        last_activity_ = Clock::now();
        sent += *n;
        spliced += *n;
        s.pipe_full = false;
    }
    give_back(s);
    return true;
}

void Connection::deliver(Stream& s) {
    const auto now = Clock::now();
    while (!s.scheduled.empty() && s.scheduled.front().at <= now) {
        Piece& p = s.scheduled.front();
        if (p.kind == Piece::Kind::data) {
            s.out.append(p.bytes);
            s.scheduled_bytes -= p.bytes.size();
        } else if (p.kind == Piece::Kind::eof) {
            s.eof_due = true;
        } else {
            s.close_due = true;
        }
        s.scheduled.pop_front();
    }
    if (!s.scheduled.empty() && s.timer == 0) {
        s.timer = timers_.after(s.scheduled.front().at - now, [this, &s] {
            s.timer = 0;
            deliver(s);
            if (!closed_) sync_all();
        });
    }
    flush(s);
}

void Connection::flush(Stream& s) {
    // The pipe's bytes were read before any now in `out` (see stop_splicing).
    if (s.pipe && !splice_out(s)) return;
    const int dst = sockets_[s.to].fd();
    std::uint64_t& sent = s.to == kUpstream ? relay_.stats().bytes_up : relay_.stats().bytes_down;
    while (!s.out.empty()) {
        IoResult n;
        try {
            n = s.out.write_to(dst);
        } catch (const Error&) {
            failed(s.to);
            return;
        }
        if (!n) break;
        if (*n > 0) last_activity_ = Clock::now();
        sent += *n;
    }
    if (!s.out.empty()) return;
    if (s.close_due) {
        close();
        return;
    }
    if (s.eof_due && !s.done) {
        s.done = true;
        s.out.release();
        // The half-close passes through: the receiver sees end of stream and may
        // still answer. ENOTCONN (it is gone already) shows up on the other stream.
        ::shutdown(dst, SHUT_WR);
        if (up_.done && down_.done) close();
    }
}

void Connection::sync(int side) {
    Socket& sock = sockets_[side];
    if (closed_ || !sock) return;
    std::uint32_t interest = 0;
    if (connecting_) {
        if (side == kUpstream) interest = events::writable;
    } else {
        Stream& in = reading_from(side);
        const std::size_t high = relay_.settings().high_water;
        if (!in.paused && in.backlog() >= high) in.paused = true;
        if (in.paused && in.backlog() <= high / 2) in.paused = false;
        if (may_read(in)) interest |= events::readable;
        if (writing_to(side).unwritten()) interest |= events::writable;
    }
    EventLoop& loop = relay_.loop();
    // Unwatched rather than watched for nothing: a hung-up socket would
    // otherwise be reported ready again and again (epoll reports EPOLLHUP and
    // EPOLLERR whatever the interest).
    if (interest == 0) {
        loop.unwatch(sock.fd());
    } else if (loop.watching(sock.fd())) {
        loop.modify(sock.fd(), interest);
    } else {
        loop.watch(sock.fd(), interest,
                   [this, side](std::uint32_t ready) { on_event(side, ready); });
    }
}

bool Connection::close_if_idle(Clock::time_point since) {
    if (closed_ || connecting_ || last_activity_ > since) return false;
    close();
    return true;
}

void Connection::close() {
    if (closed_) return;
    closed_ = true;
    timers_.cancel_all();
    unwatch_all();
    for (Socket& s : sockets_)
        s.close();
    give_back(up_);
    give_back(down_);
    --relay_.stats().active;
    relay_.retire(id_);
}

void Connection::reset(unsigned sides) {
    // SO_LINGER with a zero timeout makes close() send RST instead of FIN (socket(7)).
    const linger abort{1, 0};
    for (int side : {kClient, kUpstream}) {
        if ((sides & (1u << side)) == 0 || !sockets_[side]) continue;
        ::setsockopt(sockets_[side].fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    }
    close();
}

// ---- TcpRelay ---------------------------------------------------------------------------

void TcpRelay::refused(std::string why, const Address& peer) {
    last_refusal_ = fmt::format("{}; closed the connection from {}", why, peer.to_string());
    refusals_.count();
}

TcpRelay::TcpRelay(EventLoop& loop, RouteState& state, const Address& listen,
                   const FaultProxyOptions& settings, std::uint64_t seed)
    : RouteRelay(loop, state, listen, settings, seed, SOCK_STREAM, kReadChunk),
      // FaultProxy always sets it (effective_options); unset would mean no cap.
      max_connections_(settings.max_connections.value_or(std::numeric_limits<std::size_t>::max())),
      splice_(settings.splice && sigpipe_ignored()),
      over_capacity_(*this,
                     [max = max_connections_](std::uint64_t n) {
                         return fmt::format(
                             "too many connections (max {}): {} {} closed at once in the last "
                             "second",
                             max, n, n == 1 ? "connection" : "connections");
                     }),
      refusals_(*this,
                [this](std::uint64_t n) {
                    return n == 1 ? last_refusal_
                                  : fmt::format(
                                        "{} connections closed in the last second, the "
                                        "last: {}",
                                        n, last_refusal_);
                }),
      acceptor_(
          loop, listener_, [this](Accepted client) { on_accept(std::move(client)); },
          accept_options(*this)) {
    if (const auto idle = settings.idle_timeout) {
        // A connection is closed between idle and idle + period after its last byte.
        const Duration period =
            std::clamp<Duration>(*idle / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
        idle_sweeper_ = loop_.add_timer(
            period, [this] { close_idle(); }, period);
    }
}

TcpRelay::~TcpRelay() {
    publish_counters();
    acceptor_.stop();
    if (idle_sweeper_ != 0) loop_.cancel_timer(idle_sweeper_);
    connections_.clear();
    retired_.clear();
}

std::unique_ptr<SplicePipe> TcpRelay::take_pipe() {
    if (!splice_) return nullptr;
    std::unique_ptr<SplicePipe> pipe;
    if (!pipes_.empty()) {
        pipe = std::move(pipes_.back());
        pipes_.pop_back();
    } else if (pipes_taken_ < kMaxPipes) {
        try {
            pipe = std::make_unique<SplicePipe>();
        } catch (const Error&) {
            return nullptr;  // out of descriptors: this read goes through the buffer
        }
    } else {
        return nullptr;
    }
    ++pipes_taken_;
    return pipe;
}

void TcpRelay::give_pipe(std::unique_ptr<SplicePipe> pipe) {
    --pipes_taken_;
    // A pipe still holding bytes (its connection closed first) is not reused: it is closed.
    if (pipe->empty()) pipes_.push_back(std::move(pipe));
}

void TcpRelay::publish_counters() {
    const std::uint64_t refused = acceptor_.acceptor().refused();
    stats().shed += refused - acceptor_counted_;
    acceptor_counted_ = refused;
}

void TcpRelay::toxics_changed() {
    // A connection may close itself (a timeout toxic removed): walk a copy of the ids.
    std::vector<std::uint64_t> ids;
    ids.reserve(connections_.size());
    for (const auto& [id, conn] : connections_)
        ids.push_back(id);
    for (const std::uint64_t id : ids)
        if (const auto it = connections_.find(id); it != connections_.end())
            it->second->attach_toxics();
}

void TcpRelay::on_accept(Accepted client) {
    if (connections_.size() >= max_connections_) {
        // Closed at once rather than left in the backlog: the client learns now
        // that there is no room, as a server over its limit tells it.
        ++stats().shed;
        over_capacity_.count();
        return;  // `client` goes out of scope: its socket is closed
    }
    const std::uint64_t id = next_id_++;
    auto& conn = connections_[id];
    conn =
        std::make_unique<Connection>(*this, id, std::move(client.socket), std::move(client.peer));
    conn->start();
}

void TcpRelay::close_idle() {
    const auto since = Clock::now() - *settings().idle_timeout;
    std::vector<std::uint64_t> ids;
    for (const auto& [id, conn] : connections_)
        ids.push_back(id);
    for (const std::uint64_t id : ids)
        if (const auto it = connections_.find(id); it != connections_.end())
            if (it->second->close_if_idle(since)) ++stats().idle_closed;
}

void TcpRelay::retire(std::uint64_t id) {
    const auto it = connections_.find(id);
    if (it == connections_.end()) return;
    // The connection may be running one of its own handlers right now: keep it
    // alive until the loop is back in its own code.
    if (retired_.empty())
        loop_.post([this, alive = std::weak_ptr<int>(alive_)] {
            if (!alive.expired()) retired_.clear();
        });
    retired_.push_back(std::move(it->second));
    connections_.erase(it);
    acceptor_.connection_closed();  // a pause for want of descriptors ends: two are free
}

}  // namespace

std::unique_ptr<RouteRelay> start_tcp_relay(EventLoop& loop, RouteState& state,
                                            const Address& listen,
                                            const FaultProxyOptions& settings, std::uint64_t seed) {
    return std::make_unique<TcpRelay>(loop, state, listen, settings, seed);
}

}  // namespace ferry::testkit::detail
