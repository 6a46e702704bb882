// ferry/testkit/toxic.hpp: the fault proxy's faults ("toxics", named and parametrised as
// Toxiproxy names them): what a toxic is, checking one, and the models that apply one. The
// models are public so that a test can drive them without sockets (seeded, see Rng).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/socket.hpp"

namespace ferry::testkit {

/// What a proxy relays: TCP connections or UDP datagrams.
enum class Protocol { tcp, udp };
/// up: client -> upstream server (Toxiproxy's "upstream" stream); down: server -> client
/// ("downstream"); both: one toxic on each direction, chosen together (ferry's own).
enum class Direction { up, down, both };

/// "tcp" or "udp".
std::string_view protocol_name(Protocol p);
/// Toxiproxy's names: "upstream", "downstream"; and "both".
std::string_view direction_name(Direction d);
/// Accepts up, down, both, upstream, downstream (any case); throws ToxicError.
Direction parse_direction(std::string_view text);

/// Every random choice of a proxy comes from one of these, seeded from the proxy's seed.
using Rng = std::mt19937_64;

/// One fault, checked: its type exists, every attribute belongs to it, every
/// value is in range, defaults filled in. Build one with make_toxic or parse_toxic.
struct Toxic {
    /// Unique within its proxy; make_toxic's default is Toxiproxy's `<type>_<stream>`.
    std::string name;
    /// Its type: `latency`, `bandwidth`, `loss`, ... (toxic_help() lists them).
    std::string type;
    /// The direction it acts on.
    Direction direction = Direction::down;
    /// The fraction of connections (TCP) or of datagrams (UDP) it applies to.
    double toxicity = 1.0;
    /// Its attributes by name, defaults filled in (`latency`, `jitter`, ...).
    std::map<std::string, double> attributes;
    bool tcp = false;  ///< the type exists for TCP routes
    bool udp = false;  ///< ... and for UDP routes

    /// The attribute `key`; throws ToxicError when the type has none of that name.
    [[nodiscard]] double get(const std::string& key) const;
    /// Whether the attribute `key` is set.
    [[nodiscard]] bool has(const std::string& key) const { return attributes.count(key) != 0; }
    /// Whether the type exists for routes of protocol `p`.
    [[nodiscard]] bool applies_to(Protocol p) const { return p == Protocol::tcp ? tcp : udp; }
};

/// A toxic that cannot be: what is wrong with it, in one line.
class ToxicError : public std::invalid_argument {
  public:
    using std::invalid_argument::invalid_argument;
};

/// How make_toxic treats what the caller left out or added.
struct ToxicRules {
    /// A required attribute not given is 0 (Toxiproxy's rule: Go's zero
    /// value), then checked like any other; otherwise it is an error. Those
    /// with a default (jitter 0, a reorder's hold 100) keep it either way.
    bool missing_is_zero = false;
    /// An attribute the type does not have is ignored (Toxiproxy's rule);
    /// otherwise it is an error that lists the type's attributes.
    bool ignore_unknown = false;
};

/// Checks a toxic and fills in its defaults: `given` holds the attributes
/// and may hold "toxicity" (0..1). An empty `name` becomes `<type>_<stream>`
/// (`latency_downstream`). Every value must be in its attribute's range
/// (times up to an hour, sizes up to 10^15 bytes, probabilities 0..1, a
/// bandwidth 0 or 0.001..10^9 KB/s; NaN never): ToxicError otherwise, one
/// line naming the attribute and the range (`latency latency must be between
/// 0 and 3600000 ms (got 1e+300)`).
Toxic make_toxic(std::string_view type, Direction direction,
                 const std::vector<std::pair<std::string, double>>& given, std::string name = {},
                 const ToxicRules& rules = {});

/// Parses `TYPE:DIRECTION[:key=value,key=value...]`, e.g.
/// `latency:down:latency=100,jitter=10` or `loss:upstream:probability=0.3,toxicity=0.5`.
/// Throws ToxicError.
Toxic parse_toxic(std::string_view text);

/// What an update changes: the toxicity and some attributes; the rest keeps
/// its value (Toxiproxy's merge). The result is checked again as a whole.
struct ToxicChange {
    /// A new toxicity (0..1).
    std::optional<double> toxicity{};
    /// Attributes to change, by name.
    std::vector<std::pair<std::string, double>> attributes{};
};
/// `toxic` with `change` merged in, checked again as a whole; throws ToxicError.
Toxic apply_change(const Toxic& toxic, const ToxicChange& change, const ToxicRules& rules = {});

/// True when `type` names a toxic (for TCP, UDP or both).
bool is_toxic_type(std::string_view type);
/// The attribute names of `type`, in table order (empty for an unknown type).
std::vector<std::string> toxic_attributes(std::string_view type);
/// One line per toxic type with its keys, for --help.
std::string toxic_help();

// ---- TCP: toxics rewrite a stream of timed pieces -------------------------------------

/// A piece of one direction of a TCP connection on its way through the toxics.
/// `at` is when it may be written to the receiver; every toxic keeps the
/// times of the pieces it passes on non-decreasing, so bytes never reorder.
struct Piece {
    /// Data, the half-close, or the end of the connection.
    enum class Kind {
        data,   ///< bytes to write
        eof,    ///< the sender shut down its side: pass the half-close on
        close,  ///< close the whole connection once everything before is written
    };
    /// Bytes, or the end of the stream.
    Kind kind = Kind::data;
    /// The bytes (Kind::data only).
    std::string bytes;
    /// When it may be written.
    Clock::time_point at;
};

/// What a toxic does to a whole connection some time after it was relayed.
struct TcpEnd {
    /// How the connection ends.
    enum class Kind {
        close,  ///< close both sides (timeout)
        reset,  ///< send RST to the receiver of the toxic's direction (reset_peer)
    };
    /// Close or reset.
    Kind kind = Kind::close;
    /// How long after the connection was relayed.
    Duration after{};
};

/// One TCP toxic on one direction of one connection (it keeps that
/// direction's state: the bandwidth clock, the bytes left before a limit).
class TcpToxic {
  public:
    virtual ~TcpToxic() = default;
    /// Rewrites the pieces just read, in place: delays, splits, truncates or
    /// drops them, appends a close. Never reorders.
    virtual void apply(std::vector<Piece>& pieces) = 0;
    /// The connection-wide action it schedules when it is attached to a connection.
    [[nodiscard]] virtual std::optional<TcpEnd> end() const { return std::nullopt; }
    /// Taking it off a live connection closes that connection: the timeout
    /// toxic dropped data, so what follows could not make sense (as Toxiproxy).
    [[nodiscard]] virtual bool closes_when_removed() const { return false; }
};

/// Builds the model of a TCP toxic; `rng` must outlive it. Throws ToxicError
/// for a type that is not for TCP, or a spec that make_toxic would refuse
/// (its fields are public: it is checked again). Every time the model
/// computes saturates (ferry::saturating_duration): it never overflows.
std::unique_ptr<TcpToxic> make_tcp_toxic(const Toxic& spec, Rng& rng);

// ---- UDP: toxics pass datagrams on, now, later, twice or never -----------------------

/// Runs a function later on the proxy's event loop; cancel() before it ran
/// means it never runs. Owned per client flow, so a flow that goes away
/// takes its pending datagrams with it.
class Scheduler {
  public:
    /// Names a scheduled function for cancel().
    using Id = std::uint64_t;
    virtual ~Scheduler() = default;
    /// Runs `fn` after `delay`; returns its id.
    virtual Id after(Duration delay, std::function<void()> fn) = 0;
    /// Cancels `id` if it has not run yet.
    virtual void cancel(Id id) = 0;
};

/// What the UDP toxics did, summed over a route.
struct UdpEffects {
    /// Datagrams dropped.
    std::uint64_t dropped = 0;
    /// Datagrams sent twice.
    std::uint64_t duplicated = 0;
    /// Datagrams held back and sent after later ones.
    std::uint64_t reordered = 0;
    /// Datagrams whose bytes were changed.
    std::uint64_t corrupted = 0;
};

/// One UDP toxic on one direction of one client flow.
class UdpToxic {
  public:
    /// Passes a datagram on to the receiver.
    using Emit = std::function<void(std::string datagram)>;
    virtual ~UdpToxic() = default;
    /// Takes one datagram and passes zero or more on through `emit`, now or
    /// later. `emit` stays valid for as long as the toxic lives.
    virtual void push(std::string datagram, const Emit& emit) = 0;
};

/// Builds the model of a UDP toxic; `rng`, `scheduler` and `effects` must
/// outlive it. Throws ToxicError as make_tcp_toxic does.
std::unique_ptr<UdpToxic> make_udp_toxic(const Toxic& spec, Rng& rng, Scheduler& scheduler,
                                         UdpEffects& effects);

/// The long-run loss rate of a Gilbert-Elliott model: the chance of the bad
/// state, p / (p + r), weighs the two states' loss rates.
double gilbert_elliott_stationary_loss(double p, double r, double good, double bad);

}  // namespace ferry::testkit
