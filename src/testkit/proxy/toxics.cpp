// The fault proxy's toxics: the table of types and keys, the parser, and one small class per
// model. The TCP models only compute when each piece may be written (the engine in
// tcp_relay.cpp does the waiting); the UDP models act on one datagram at a time.
#include "ferry/testkit/toxic.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>

#include "ferry/duration.hpp"

namespace ferry::testkit {
namespace {

constexpr double kMaxMs = 3'600'000.0;  // an hour: longer is a mistake, and keeps Durations finite
constexpr double kMaxBytes = 1e15;      // exact in a double

enum class Need { required, optional, defaulted };

struct Key {
    const char* name;
    const char* unit;
    double min;
    double max;
    bool integer = false;
    bool min_exclusive = false;
    Need need = Need::required;
    double fallback = 0;
};

struct Type {
    const char* name;
    bool tcp;
    bool udp;
    std::vector<Key> keys;
};

Key ms(const char* name, Need need, double fallback = 0) {
    return {name, "ms", 0, kMaxMs, false, false, need, fallback};
}
Key probability(const char* name, Need need, double fallback = 0) {
    return {name, "", 0, 1, false, false, need, fallback};
}
Key bytes(const char* name, double min, Need need, double fallback = 0) {
    return {name, "bytes", min, kMaxBytes, true, false, need, fallback};
}

const std::vector<Type>& types() {
    static const std::vector<Type> table = {
        {"latency", true, true, {ms("latency", Need::required), ms("jitter", Need::defaulted)}},
        // rate 0 is no limit, as in Toxiproxy.
        {"bandwidth", true, true, {{"rate", "KB/s", 0, 1e9, false, false}}},
        {"slicer",
         true,
         false,
         {bytes("average_size", 1, Need::required),
          bytes("size_variation", 0, Need::defaulted),
          {"delay", "us", 0, kMaxMs * 1000, false, false, Need::defaulted, 0}}},
        {"limit_data", true, false, {bytes("bytes", 0, Need::required)}},
        {"reset_peer", true, false, {ms("timeout", Need::defaulted)}},
        {"timeout", true, false, {ms("timeout", Need::defaulted)}},
        {"slow_close", true, false, {ms("delay", Need::required)}},
        {"loss",
         false,
         true,
         {probability("probability", Need::optional), probability("p", Need::optional),
          probability("r", Need::optional), probability("good", Need::optional),
          probability("bad", Need::optional)}},
        {"duplicate", false, true, {probability("probability", Need::required)}},
        {"reorder",
         false,
         true,
         {probability("probability", Need::required),
          {"hold", "ms", 0, kMaxMs, false, true, Need::defaulted, 100}}},
        {"corrupt", false, true, {probability("probability", Need::required)}},
        {"noop", true, true, {}},
    };
    return table;
}

std::string names(bool tcp) {
    std::string out;
    for (const Type& t : types()) {
        if ((tcp ? t.tcp : t.udp) == false) continue;
        if (!out.empty()) out += ", ";
        out += t.name;
    }
    return out;
}

const Type& find_type(std::string_view name) {
    for (const Type& t : types())
        if (name == t.name) return t;
    throw ToxicError(
        fmt::format("unknown toxic '{}' (TCP: {}; UDP: {})", name, names(true), names(false)));
}

std::string number_text(double v) {
    return fmt::format("{}", v);
}

double parse_number(std::string_view key, std::string_view text) {
    double value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end || !std::isfinite(value))
        throw ToxicError(fmt::format("{}={}: not a number", key, text));
    return value;
}

void check_value(const Type& type, const Key& key, double value) {
    const bool low = key.min_exclusive ? value <= key.min : value < key.min;
    // NaN compares false with everything: it would pass both bounds unless named.
    if (std::isnan(value) || low || value > key.max) {
        const std::string range =
            key.min_exclusive
                ? fmt::format("above {} and at most {}", number_text(key.min), number_text(key.max))
                : fmt::format("between {} and {}", number_text(key.min), number_text(key.max));
        // "latency toxic: latency must be ...": the type and the key may have one name.
        throw ToxicError(fmt::format("{} toxic: {} must be {}{}{} (got {})", type.name, key.name,
                                     range, *key.unit ? " " : "", key.unit, number_text(value)));
    }
    if (key.integer && value != std::floor(value))
        throw ToxicError(fmt::format("{} toxic: {} must be a whole number of {} (got {})",
                                     type.name, key.name, key.unit, number_text(value)));
}

}  // namespace

Toxic make_toxic(std::string_view type_name, Direction direction,
                 const std::vector<std::pair<std::string, double>>& given, std::string name,
                 const ToxicRules& rules) {
    const Type& type = find_type(type_name);
    Toxic spec;
    spec.type = type.name;
    spec.direction = direction;
    spec.name =
        name.empty() ? fmt::format("{}_{}", type.name, direction_name(direction)) : std::move(name);
    spec.tcp = type.tcp;
    spec.udp = type.udp;
    for (const auto& [attribute, value] : given) {
        if (attribute == "toxicity") {
            if (std::isnan(value) || value < 0 || value > 1)
                throw ToxicError(
                    fmt::format("toxicity must be between 0 and 1 (got {})", number_text(value)));
            spec.toxicity = value;
            continue;
        }
        const auto key = std::find_if(type.keys.begin(), type.keys.end(),
                                      [&n = attribute](const Key& k) { return n == k.name; });
        if (key == type.keys.end()) {
            if (rules.ignore_unknown) continue;
            std::string keys;
            for (const Key& k : type.keys)
                keys += std::string(k.name) + ", ";
            throw ToxicError(fmt::format("unknown key '{}' for {} (its keys: {}toxicity)",
                                         attribute, type.name, keys));
        }
        if (spec.attributes.count(attribute) != 0)
            throw ToxicError(fmt::format("{} is given twice", attribute));
        check_value(type, *key, value);
        spec.attributes[attribute] = value;
    }
    for (const Key& k : type.keys) {
        if (spec.has(k.name)) continue;
        if (rules.missing_is_zero && k.need == Need::required) {
            check_value(type, k, 0);
            spec.attributes[k.name] = 0;
            continue;
        }
        if (k.need == Need::required)
            throw ToxicError(
                fmt::format("{} needs {}={}", type.name, k.name, *k.unit ? k.unit : "P"));
        if (k.need == Need::defaulted) spec.attributes[k.name] = k.fallback;
    }
    if (spec.type == "bandwidth" && spec.get("rate") > 0 && spec.get("rate") < 0.001)
        throw ToxicError("bandwidth toxic: rate must be 0 (no limit) or at least 0.001 KB/s");
    if (spec.type == "slicer" && spec.get("size_variation") >= spec.get("average_size"))
        throw ToxicError("slicer toxic: size_variation must be smaller than average_size");
    if (spec.type == "loss") {
        const bool simple = spec.has("probability");
        const bool burst = spec.has("p") || spec.has("r") || spec.has("good") || spec.has("bad");
        if (simple && burst)
            throw ToxicError(
                "loss takes either probability=P, or the Gilbert-Elliott p=,r=[,good=,bad=]");
        if (!simple && !burst)
            throw ToxicError("loss needs probability=P, or the Gilbert-Elliott p=,r=[,good=,bad=]");
        if (burst) {
            if (!spec.has("p") || !spec.has("r"))
                throw ToxicError("Gilbert-Elliott loss needs both p= and r=");
            spec.attributes.emplace("good", 0.0);
            spec.attributes.emplace("bad", 1.0);
        }
    }
    return spec;
}

namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (;;) {
        const std::size_t at = text.find(sep, start);
        parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
        if (at == std::string_view::npos) return parts;
        start = at + 1;
    }
}

// Every conversion of a toxic's number to a Duration saturates (ferry/duration.hpp): the
// ranges checked above keep the values small, and a Toxic changed after it was checked
// still never overflows a duration_cast (undefined behaviour, which silently disabled a
// bandwidth limit once).
Duration from_ms(double ms) {
    return saturating_duration<std::milli>(ms);
}
Duration from_seconds(double s) {
    return saturating_duration(s);
}

// ---- TCP models -------------------------------------------------------------------------

/// Adds latency +- a uniform jitter to every piece (the end of the stream
/// included: a FIN crosses the same link). Pieces keep their order.
class TcpLatency final : public TcpToxic {
  public:
    TcpLatency(const Toxic& s, Rng& rng)
        : latency_(s.get("latency")), jitter_(s.get("jitter")), rng_(rng) {}
    void apply(std::vector<Piece>& pieces) override {
        for (Piece& p : pieces) {
            double ms = latency_;
            if (jitter_ > 0) ms += std::uniform_real_distribution<double>(-jitter_, jitter_)(rng_);
            p.at = std::max(p.at + from_ms(std::max(ms, 0.0)), last_);
            last_ = p.at;
        }
    }

  private:
    double latency_;
    double jitter_;
    Rng& rng_;
    Clock::time_point last_{};
};

/// Paces the bytes at `rate` KB/s (1 KB = 1000 bytes, as Toxiproxy), in
/// slices of 20 ms worth, each released when the link has carried it.
class TcpBandwidth final : public TcpToxic {
  public:
    explicit TcpBandwidth(const Toxic& s)
        : bytes_per_s_(s.get("rate") * 1000.0),
          slice_(static_cast<std::size_t>(std::clamp(bytes_per_s_ * 0.02, 1.0, 65536.0))) {}
    void apply(std::vector<Piece>& pieces) override {
        if (bytes_per_s_ <= 0) return;  // rate 0: no limit
        std::vector<Piece> out;
        for (Piece& p : pieces) {
            if (p.kind != Piece::Kind::data) {
                p.at = std::max(p.at, busy_until_);
                out.push_back(std::move(p));
                continue;
            }
            for (std::size_t off = 0; off < p.bytes.size(); off += slice_) {
                const std::size_t n = std::min(slice_, p.bytes.size() - off);
                const auto start = std::max(p.at, busy_until_);
                busy_until_ = start + from_seconds(double(n) / bytes_per_s_);
                out.push_back({Piece::Kind::data, p.bytes.substr(off, n), busy_until_});
            }
        }
        pieces.swap(out);
    }

  private:
    double bytes_per_s_;
    std::size_t slice_;
    Clock::time_point busy_until_{};
};

/// Cuts the bytes into slices of average_size +- size_variation bytes,
/// `delay` microseconds apart.
class TcpSlicer final : public TcpToxic {
  public:
    TcpSlicer(const Toxic& s, Rng& rng)
        : average_(static_cast<std::size_t>(s.get("average_size"))),
          variation_(static_cast<std::size_t>(s.get("size_variation"))),
          delay_(saturating_duration<std::micro>(s.get("delay"))),
          rng_(rng) {}
    void apply(std::vector<Piece>& pieces) override {
        std::vector<Piece> out;
        for (Piece& p : pieces) {
            if (p.kind != Piece::Kind::data) {
                p.at = std::max(p.at, last_);
                out.push_back(std::move(p));
                continue;
            }
            auto at = std::max(p.at, next_);
            std::uniform_int_distribution<std::size_t> size(average_ - variation_,
                                                            average_ + variation_);
            for (std::size_t off = 0; off < p.bytes.size();) {
                const std::size_t n = std::min(size(rng_), p.bytes.size() - off);
                out.push_back({Piece::Kind::data, p.bytes.substr(off, n), at});
                last_ = at;
                at += delay_;
                off += n;
            }
            next_ = at;
        }
        pieces.swap(out);
    }

  private:
    std::size_t average_;
    std::size_t variation_;
    Duration delay_;
    Rng& rng_;
    Clock::time_point next_{};
    Clock::time_point last_{};
};

/// Passes exactly `bytes` bytes, then closes the connection (Toxiproxy's
/// limit_data: the close comes with the chunk that reaches the limit).
class TcpLimitData final : public TcpToxic {
  public:
    explicit TcpLimitData(const Toxic& s) : left_(static_cast<std::uint64_t>(s.get("bytes"))) {}
    void apply(std::vector<Piece>& pieces) override {
        std::vector<Piece> out;
        for (Piece& p : pieces) {
            if (closed_) break;
            if (p.kind != Piece::Kind::data) {
                out.push_back(std::move(p));
                continue;
            }
            if (p.bytes.size() < left_) {
                left_ -= p.bytes.size();
                out.push_back(std::move(p));
                continue;
            }
            p.bytes.resize(static_cast<std::size_t>(left_));
            left_ = 0;
            const auto at = p.at;
            if (!p.bytes.empty()) out.push_back(std::move(p));
            out.push_back({Piece::Kind::close, {}, at});
            closed_ = true;
        }
        pieces.swap(out);
    }

  private:
    std::uint64_t left_;
    bool closed_ = false;
};

/// Lets nothing through; closes the connection after `timeout` ms (never when 0).
class TcpTimeout final : public TcpToxic {
  public:
    explicit TcpTimeout(const Toxic& s) : timeout_(s.get("timeout")) {}
    void apply(std::vector<Piece>& pieces) override { pieces.clear(); }
    [[nodiscard]] std::optional<TcpEnd> end() const override {
        if (timeout_ <= 0) return std::nullopt;
        return TcpEnd{TcpEnd::Kind::close, from_ms(timeout_)};
    }
    [[nodiscard]] bool closes_when_removed() const override { return true; }

  private:
    double timeout_;
};

/// Resets the connection `timeout` ms after it started (0: at once).
class TcpResetPeer final : public TcpToxic {
  public:
    explicit TcpResetPeer(const Toxic& s) : timeout_(s.get("timeout")) {}
    void apply(std::vector<Piece>&) override {}
    [[nodiscard]] std::optional<TcpEnd> end() const override {
        return TcpEnd{TcpEnd::Kind::reset, from_ms(timeout_)};
    }

  private:
    double timeout_;
};

/// Holds back the end of the stream (and a close) by `delay` ms.
class TcpSlowClose final : public TcpToxic {
  public:
    explicit TcpSlowClose(const Toxic& s) : delay_(from_ms(s.get("delay"))) {}
    void apply(std::vector<Piece>& pieces) override {
        for (Piece& p : pieces) {
            if (p.kind != Piece::Kind::data) p.at = std::max(p.at + delay_, last_);
            last_ = std::max(last_, p.at);
        }
    }

  private:
    Duration delay_;
    Clock::time_point last_{};
};

// ---- UDP models -------------------------------------------------------------------------

bool chance(Rng& rng, double p) {
    return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

/// Independent loss with `probability`, or the Gilbert-Elliott burst model:
/// a good and a bad state, each with its own loss rate; after each datagram
/// the chain moves good -> bad with chance p and bad -> good with chance r.
/// It starts in the good state.
class UdpLoss final : public UdpToxic {
  public:
    UdpLoss(const Toxic& s, Rng& rng, UdpEffects& effects)
        : burst_(!s.has("probability")),
          probability_(burst_ ? 0 : s.get("probability")),
          p_(burst_ ? s.get("p") : 0),
          r_(burst_ ? s.get("r") : 0),
          good_(burst_ ? s.get("good") : 0),
          bad_(burst_ ? s.get("bad") : 0),
          rng_(rng),
          effects_(effects) {}
    void push(std::string datagram, const Emit& emit) override {
        bool lost = false;
        if (burst_) {
            lost = chance(rng_, in_bad_ ? bad_ : good_);
            in_bad_ = in_bad_ ? !chance(rng_, r_) : chance(rng_, p_);
        } else {
            lost = chance(rng_, probability_);
        }
        if (lost) {
            ++effects_.dropped;
            return;
        }
        emit(std::move(datagram));
    }

  private:
    bool burst_;
    double probability_, p_, r_, good_, bad_;
    bool in_bad_ = false;
    Rng& rng_;
    UdpEffects& effects_;
};

class UdpDuplicate final : public UdpToxic {
  public:
    UdpDuplicate(const Toxic& s, Rng& rng, UdpEffects& effects)
        : probability_(s.get("probability")), rng_(rng), effects_(effects) {}
    void push(std::string datagram, const Emit& emit) override {
        if (chance(rng_, probability_)) {
            ++effects_.duplicated;
            emit(datagram);
        }
        emit(std::move(datagram));
    }

  private:
    double probability_;
    Rng& rng_;
    UdpEffects& effects_;
};

/// Holds a datagram back (chance `probability`) until the next one has
/// passed, or for `hold` ms when none comes. One is held at a time.
class UdpReorder final : public UdpToxic {
  public:
    UdpReorder(const Toxic& s, Rng& rng, Scheduler& scheduler, UdpEffects& effects)
        : probability_(s.get("probability")),
          hold_(from_ms(s.get("hold"))),
          rng_(rng),
          scheduler_(scheduler),
          effects_(effects) {}
    ~UdpReorder() override {
        if (held_) scheduler_.cancel(timer_);
    }
    void push(std::string datagram, const Emit& emit) override {
        if (held_) {
            emit(std::move(datagram));
            scheduler_.cancel(timer_);
            ++effects_.reordered;
            release(emit);
            return;
        }
        if (!chance(rng_, probability_)) {
            emit(std::move(datagram));
            return;
        }
        held_ = std::move(datagram);
        timer_ = scheduler_.after(hold_, [this, emit] { release(emit); });
    }

  private:
    void release(const Emit& emit) {
        std::string datagram = std::move(*held_);
        held_.reset();
        emit(std::move(datagram));
    }

    double probability_;
    Duration hold_;
    Rng& rng_;
    Scheduler& scheduler_;
    UdpEffects& effects_;
    std::optional<std::string> held_;
    Scheduler::Id timer_ = 0;
};

/// Delays each datagram by latency +- a uniform jitter, independently: with
/// jitter, datagrams overtake each other, as on a real network.
class UdpLatency final : public UdpToxic {
  public:
    UdpLatency(const Toxic& s, Rng& rng, Scheduler& scheduler)
        : latency_(s.get("latency")), jitter_(s.get("jitter")), rng_(rng), scheduler_(scheduler) {}
    void push(std::string datagram, const Emit& emit) override {
        double ms = latency_;
        if (jitter_ > 0) ms += std::uniform_real_distribution<double>(-jitter_, jitter_)(rng_);
        if (ms <= 0) {
            emit(std::move(datagram));
            return;
        }
        scheduler_.after(from_ms(ms),
                         [emit, d = std::move(datagram)]() mutable { emit(std::move(d)); });
    }

  private:
    double latency_;
    double jitter_;
    Rng& rng_;
    Scheduler& scheduler_;
};

/// A link of `rate` KB/s with a queue in front: each datagram leaves when
/// the link has carried the ones before it and itself; one that would wait
/// in the queue more than a second is dropped (a router's tail drop).
class UdpBandwidth final : public UdpToxic {
  public:
    UdpBandwidth(const Toxic& s, Scheduler& scheduler, UdpEffects& effects)
        : bytes_per_s_(s.get("rate") * 1000.0), scheduler_(scheduler), effects_(effects) {}
    void push(std::string datagram, const Emit& emit) override {
        if (bytes_per_s_ <= 0) {  // rate 0: no limit
            emit(std::move(datagram));
            return;
        }
        const auto now = Clock::now();
        const auto start = std::max(now, busy_until_);
        if (start - now > std::chrono::seconds(1)) {
            ++effects_.dropped;
            return;
        }
        busy_until_ = start + from_seconds(double(datagram.size()) / bytes_per_s_);
        scheduler_.after(busy_until_ - now,
                         [emit, d = std::move(datagram)]() mutable { emit(std::move(d)); });
    }

  private:
    double bytes_per_s_;
    Scheduler& scheduler_;
    UdpEffects& effects_;
    Clock::time_point busy_until_{};
};

/// Flips one random bit of the payload (chance `probability`).
class UdpCorrupt final : public UdpToxic {
  public:
    UdpCorrupt(const Toxic& s, Rng& rng, UdpEffects& effects)
        : probability_(s.get("probability")), rng_(rng), effects_(effects) {}
    void push(std::string datagram, const Emit& emit) override {
        if (!datagram.empty() && chance(rng_, probability_)) {
            const std::size_t bit =
                std::uniform_int_distribution<std::size_t>(0, datagram.size() * 8 - 1)(rng_);
            datagram[bit / 8] = static_cast<char>(datagram[bit / 8] ^ (1 << (bit % 8)));
            ++effects_.corrupted;
        }
        emit(std::move(datagram));
    }

  private:
    double probability_;
    Rng& rng_;
    UdpEffects& effects_;
};

/// Passes everything on untouched (Toxiproxy's noop).
class TcpNoop final : public TcpToxic {
  public:
    void apply(std::vector<Piece>&) override {}
};

class UdpNoop final : public UdpToxic {
  public:
    void push(std::string datagram, const Emit& emit) override { emit(std::move(datagram)); }
};

}  // namespace

std::string_view protocol_name(Protocol p) {
    return p == Protocol::tcp ? "tcp" : "udp";
}

std::string_view direction_name(Direction d) {
    return d == Direction::up ? "upstream" : d == Direction::down ? "downstream" : "both";
}

Direction parse_direction(std::string_view text) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "up" || lower == "upstream") return Direction::up;
    if (lower == "down" || lower == "downstream") return Direction::down;
    if (lower == "both") return Direction::both;
    throw ToxicError(fmt::format(
        "direction must be up, down or both (or upstream, downstream), not '{}'", text));
}

bool is_toxic_type(std::string_view type) {
    return std::any_of(types().begin(), types().end(),
                       [type](const Type& t) { return type == t.name; });
}

std::vector<std::string> toxic_attributes(std::string_view type) {
    std::vector<std::string> out;
    for (const Type& t : types())
        if (type == t.name)
            for (const Key& k : t.keys)
                out.emplace_back(k.name);
    return out;
}

Toxic apply_change(const Toxic& toxic, const ToxicChange& change, const ToxicRules& rules) {
    std::map<std::string, double> merged = toxic.attributes;
    for (const auto& [key, value] : change.attributes)
        merged[key] = value;
    std::vector<std::pair<std::string, double>> given(merged.begin(), merged.end());
    given.emplace_back("toxicity", change.toxicity.value_or(toxic.toxicity));
    return make_toxic(toxic.type, toxic.direction, given, toxic.name, rules);
}

double Toxic::get(const std::string& key) const {
    const auto it = attributes.find(key);
    if (it == attributes.end()) throw ToxicError(type + " has no " + key);
    return it->second;
}

Toxic parse_toxic(std::string_view text) {
    const auto parts = split(text, ':');
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty())
        throw ToxicError("expected TYPE:DIRECTION[:key=value,...]");
    std::vector<std::pair<std::string, double>> given;
    if (parts.size() == 3 && !parts[2].empty()) {
        std::set<std::string_view> seen;
        for (const std::string_view item : split(parts[2], ',')) {
            const std::size_t eq = item.find('=');
            if (eq == std::string_view::npos || eq == 0)
                throw ToxicError(fmt::format("'{}' is not key=value", item));
            const std::string_view key = item.substr(0, eq);
            if (!seen.insert(key).second) throw ToxicError(fmt::format("{} is given twice", key));
            given.emplace_back(std::string(key), parse_number(key, item.substr(eq + 1)));
        }
    }
    find_type(parts[0]);  // an unknown type is the first thing to say
    return make_toxic(parts[0], parse_direction(parts[1]), given);
}

std::string toxic_help() {
    std::string out;
    for (const Type& t : types()) {
        std::string keys;
        for (const Key& k : t.keys) {
            keys += fmt::format(" {}={}", k.name, *k.unit ? k.unit : "0..1");
            if (k.need == Need::defaulted) keys += fmt::format(" ({})", number_text(k.fallback));
        }
        const char* protocols = t.tcp && t.udp ? "tcp,udp" : t.tcp ? "tcp" : "udp";
        out += fmt::format("  {:<11}{:<8}{}\n", t.name, protocols, keys);
    }
    return out;
}

namespace {

/// Checks `spec` again as make_toxic would: its fields are public, and a model
/// must never run on a value changed after the check.
void check_again(const Toxic& spec) {
    std::vector<std::pair<std::string, double>> given(spec.attributes.begin(),
                                                      spec.attributes.end());
    given.emplace_back("toxicity", spec.toxicity);
    make_toxic(spec.type, spec.direction, given, spec.name);
}

}  // namespace

std::unique_ptr<TcpToxic> make_tcp_toxic(const Toxic& spec, Rng& rng) {
    check_again(spec);
    const std::string& t = spec.type;
    if (t == "latency") return std::make_unique<TcpLatency>(spec, rng);
    if (t == "bandwidth") return std::make_unique<TcpBandwidth>(spec);
    if (t == "slicer") return std::make_unique<TcpSlicer>(spec, rng);
    if (t == "limit_data") return std::make_unique<TcpLimitData>(spec);
    if (t == "timeout") return std::make_unique<TcpTimeout>(spec);
    if (t == "reset_peer") return std::make_unique<TcpResetPeer>(spec);
    if (t == "slow_close") return std::make_unique<TcpSlowClose>(spec);
    if (t == "noop") return std::make_unique<TcpNoop>();
    throw ToxicError("toxic '" + t + "' is not for TCP routes");
}

std::unique_ptr<UdpToxic> make_udp_toxic(const Toxic& spec, Rng& rng, Scheduler& scheduler,
                                         UdpEffects& effects) {
    check_again(spec);
    const std::string& t = spec.type;
    if (t == "loss") return std::make_unique<UdpLoss>(spec, rng, effects);
    if (t == "duplicate") return std::make_unique<UdpDuplicate>(spec, rng, effects);
    if (t == "reorder") return std::make_unique<UdpReorder>(spec, rng, scheduler, effects);
    if (t == "latency") return std::make_unique<UdpLatency>(spec, rng, scheduler);
    if (t == "bandwidth") return std::make_unique<UdpBandwidth>(spec, scheduler, effects);
    if (t == "corrupt") return std::make_unique<UdpCorrupt>(spec, rng, effects);
    if (t == "noop") return std::make_unique<UdpNoop>();
    throw ToxicError("toxic '" + t + "' is not for UDP routes");
}

double gilbert_elliott_stationary_loss(double p, double r, double good, double bad) {
    if (p + r == 0) return good;  // never leaves the good state it starts in
    return (r * good + p * bad) / (p + r);
}

}  // namespace ferry::testkit
