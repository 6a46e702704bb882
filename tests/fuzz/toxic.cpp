// Fuzzes the fault proxy's toxic specification (ferry::testkit::parse_toxic) and then the
// model of the toxic it parsed, fed a stream (TCP) or datagrams (UDP) without sockets.
//
// The specification: what parses is a known type with only its own keys, each in range; it
// prints back (TYPE:STREAM:key=value,...) to the same toxic, and an empty change leaves it
// as it is. The TCP models never reorder or alter bytes, keep times non-decreasing and never
// release a byte before it arrived; what they pass is all of the stream (a prefix of it for
// limit_data, nothing for timeout). The UDP models emit only datagrams that were pushed (one
// bit flipped for corrupt), as many as were pushed minus those dropped plus those duplicated,
// and never run a timer of a toxic that is gone.
//
// Input: the specification up to the first newline; after it, the bytes that drive the
// model (FuzzedDataProvider: payloads from the front, numbers from the end).
#include <fmt/core.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.hpp"
#include "ferry/testkit/toxic.hpp"

namespace {

using namespace ferry::testkit;
using ferry::Clock;
using ferry::Duration;

bool same(const Toxic& a, const Toxic& b) {
    return a.name == b.name && a.type == b.type && a.direction == b.direction &&
           a.toxicity == b.toxicity && a.attributes == b.attributes && a.tcp == b.tcp &&
           a.udp == b.udp;
}

/// The toxic as `ferry proxy --toxic` takes it, every attribute and the toxicity spelled out
/// (shortest text that reads back as the same double).
std::string spec_of(const Toxic& t) {
    std::string text = t.type + ":" + std::string(direction_name(t.direction)) + ":";
    for (const auto& [key, value] : t.attributes)
        text += fmt::format("{}={},", key, value);
    return text + fmt::format("toxicity={}", t.toxicity);
}

void check_spec(const Toxic& t) {
    FUZZ_CHECK(is_toxic_type(t.type));
    FUZZ_CHECK(t.tcp || t.udp);
    FUZZ_CHECK(t.name == t.type + "_" + std::string(direction_name(t.direction)));
    FUZZ_CHECK(t.toxicity >= 0 && t.toxicity <= 1);
    const std::vector<std::string> keys = toxic_attributes(t.type);
    for (const auto& [key, value] : t.attributes)
        FUZZ_CHECK(std::find(keys.begin(), keys.end(), key) != keys.end());
    FUZZ_CHECK(same(parse_toxic(spec_of(t)), t));
    FUZZ_CHECK(same(apply_change(t, {}), t));
}

// ---- TCP ------------------------------------------------------------------------------

void drive_tcp(const Toxic& t, FuzzedDataProvider& in) {
    Rng rng(in.ConsumeIntegral<std::uint64_t>());
    const auto model = make_tcp_toxic(t, rng);
    if (const auto end = model->end()) FUZZ_CHECK(end->after >= Duration::zero());

    std::string sent;                                  // every byte handed to the model
    std::map<std::size_t, Clock::time_point> arrived;  // offset of each piece -> its time
    std::string passed;                                // every byte the model let through
    Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
    Clock::time_point last_out = Clock::time_point::min();
    bool last_batch = false, ended_in = false, ended_out = false, closed_out = false;

    const int batches = in.ConsumeIntegralInRange<int>(1, 16);
    for (int b = 0; b < batches && !last_batch; ++b) {
        std::vector<Piece> pieces;
        const int count = in.ConsumeIntegralInRange<int>(0, 4);
        for (int i = 0; i < count; ++i) {
            now += std::chrono::nanoseconds(
                in.ConsumeIntegralInRange<std::uint32_t>(0, 2'000'000'000));
            std::string bytes = in.ConsumeRandomLengthString(512);
            if (bytes.empty()) continue;  // a read never yields zero bytes of data
            arrived[sent.size()] = now;
            sent += bytes;
            pieces.push_back({Piece::Kind::data, std::move(bytes), now});
        }
        if (b == batches - 1 || in.remaining_bytes() == 0) {
            const int end = in.ConsumeIntegralInRange<int>(0, 2);
            if (end > 0)
                pieces.push_back({end == 1 ? Piece::Kind::eof : Piece::Kind::close, {}, now});
            ended_in = end > 0;
            last_batch = true;
        }
        model->apply(pieces);
        for (const Piece& p : pieces) {
            FUZZ_CHECK(p.at >= last_out);  // never reordered in time
            last_out = p.at;
            if (p.kind != Piece::Kind::data) {
                ended_out = true;
                closed_out = closed_out || p.kind == Piece::Kind::close;
                continue;
            }
            FUZZ_CHECK(!ended_out);  // nothing after the end of the stream
            FUZZ_CHECK(!p.bytes.empty());
            // Not released before its first byte arrived.
            const auto from = std::prev(arrived.upper_bound(passed.size()));
            FUZZ_CHECK(p.at >= from->second);
            // Neither altered nor reordered: the next bytes of the stream.
            FUZZ_CHECK(p.bytes.size() <= sent.size() - passed.size());
            FUZZ_CHECK(sent.compare(passed.size(), p.bytes.size(), p.bytes) == 0);
            passed += p.bytes;
        }
    }

    if (t.type == "timeout") {
        FUZZ_CHECK(passed.empty() && !ended_out);
    } else if (t.type == "limit_data") {
        const auto limit = static_cast<std::uint64_t>(t.get("bytes"));
        FUZZ_CHECK(passed == sent.substr(0, std::min<std::uint64_t>(limit, sent.size())));
        if (!sent.empty() && sent.size() >= limit) FUZZ_CHECK(closed_out);
    } else {
        FUZZ_CHECK(passed == sent);
        FUZZ_CHECK(ended_out == ended_in);
    }
}

// ---- UDP ------------------------------------------------------------------------------

/// Runs the models' timers on a virtual clock, in order of their due time.
class VirtualScheduler final : public Scheduler {
  public:
    Id after(Duration delay, std::function<void()> fn) override {
        FUZZ_CHECK(delay >= Duration::zero());
        const Id id = ++last_id_;
        const auto key = std::make_pair(now_ + delay, id);
        tasks_.emplace(key, std::move(fn));
        keys_.emplace(id, key);
        return id;
    }
    void cancel(Id id) override {
        const auto it = keys_.find(id);
        if (it == keys_.end()) return;  // already ran: cancelling is then a no-op
        tasks_.erase(it->second);
        keys_.erase(it);
    }
    /// Moves the clock on by `step`, running what falls due.
    void advance(Duration step) {
        now_ += step;
        run_until(now_);
    }
    void drain() { run_until(Duration::max()); }
    [[nodiscard]] std::size_t pending() const { return tasks_.size(); }

  private:
    void run_until(Duration until) {
        while (!tasks_.empty() && tasks_.begin()->first.first <= until) {
            auto node = tasks_.extract(tasks_.begin());
            keys_.erase(node.key().second);
            node.mapped()();
        }
    }

    Duration now_{};
    Id last_id_ = 0;
    std::map<std::pair<Duration, Id>, std::function<void()>> tasks_;
    std::map<Id, std::pair<Duration, Id>> keys_;
};

bool one_bit_apart(const std::string& a, const std::string& b) {
    if (a.size() != b.size()) return false;
    int bits = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        bits += __builtin_popcount(static_cast<unsigned char>(a[i] ^ b[i]));
    return bits == 1;
}

void drive_udp(const Toxic& t, FuzzedDataProvider& in) {
    Rng rng(in.ConsumeIntegral<std::uint64_t>());
    VirtualScheduler scheduler;
    UdpEffects effects;
    std::vector<std::string> pushed, emitted;
    const UdpToxic::Emit emit = [&emitted](std::string d) { emitted.push_back(std::move(d)); };
    auto model = make_udp_toxic(t, rng, scheduler, effects);

    const int count = in.ConsumeIntegralInRange<int>(0, 64);
    for (int i = 0; i < count; ++i) {
        std::string datagram = in.ConsumeRandomLengthString(64);
        pushed.push_back(datagram);
        model->push(std::move(datagram), emit);
        scheduler.advance(
            std::chrono::nanoseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 200'000'000)));
    }
    // A flow that goes away takes its toxics with it: their timers must go too (a timer
    // left behind would run on a freed toxic, which AddressSanitizer reports).
    const bool drop_first = in.ConsumeBool();
    if (drop_first) model.reset();
    scheduler.drain();
    FUZZ_CHECK(scheduler.pending() == 0);

    FUZZ_CHECK(effects.dropped <= pushed.size());
    if (!drop_first)
        FUZZ_CHECK(emitted.size() == pushed.size() - effects.dropped + effects.duplicated);
    if (t.type == "corrupt") {
        std::size_t flipped = 0;
        for (std::size_t i = 0; i < emitted.size(); ++i) {
            if (emitted[i] == pushed[i]) continue;
            FUZZ_CHECK(one_bit_apart(emitted[i], pushed[i]));
            ++flipped;
        }
        FUZZ_CHECK(flipped == effects.corrupted);
        return;
    }
    FUZZ_CHECK(effects.corrupted == 0);
    std::map<std::string, std::size_t> left;  // each pushed datagram may come out twice at most
    for (const std::string& d : pushed)
        left[d] += 2;
    for (const std::string& d : emitted) {
        FUZZ_CHECK(left[d] > 0);
        --left[d];
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t newline = input.find('\n');
    const std::string_view spec = input.substr(0, newline);
    const std::string_view rest =
        newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

    Toxic toxic;
    try {
        toxic = parse_toxic(spec);
    } catch (const ToxicError&) {
        return 0;
    }
    check_spec(toxic);

    FuzzedDataProvider in(reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size());
    const bool tcp = toxic.tcp && (!toxic.udp || in.ConsumeBool());
    if (tcp)
        drive_tcp(toxic, in);
    else
        drive_udp(toxic, in);
    return 0;
}
