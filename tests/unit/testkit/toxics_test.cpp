// The fault proxy's toxics without sockets: checking and defaults, Toxiproxy's rules for
// missing and unknown attributes, updates that merge, and the models' seeded random choices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ferry/testkit/toxic.hpp"

namespace ferry::testkit {
namespace {

using Given = std::vector<std::pair<std::string, double>>;

/// A Scheduler that runs nothing by itself: the test fires what is due.
class ManualScheduler final : public Scheduler {
  public:
    Id after(Duration delay, std::function<void()> fn) override {
        pending_[++next_] = {delay, std::move(fn)};
        return next_;
    }
    void cancel(Id id) override { pending_.erase(id); }
    void fire_all() {
        auto due = std::move(pending_);
        pending_.clear();
        for (auto& [id, entry] : due)
            entry.second();
    }
    [[nodiscard]] std::size_t pending() const { return pending_.size(); }

  private:
    Id next_ = 0;
    std::map<Id, std::pair<Duration, std::function<void()>>> pending_;
};

std::vector<std::string> run_udp(UdpToxic& toxic, const std::vector<std::string>& in) {
    std::vector<std::string> out;
    const UdpToxic::Emit emit = [&out](std::string d) { out.push_back(std::move(d)); };
    for (const std::string& d : in)
        toxic.push(d, emit);
    return out;
}

TEST(Toxic, DefaultsFollowToxiproxy) {
    const Toxic t = make_toxic("latency", Direction::down, {{"latency", 100}});
    EXPECT_EQ(t.name, "latency_downstream");
    EXPECT_EQ(t.toxicity, 1.0);
    EXPECT_EQ(t.get("jitter"), 0);
    EXPECT_TRUE(t.tcp);
    EXPECT_TRUE(t.udp);
    EXPECT_EQ(make_toxic("noop", Direction::up, {}).name, "noop_upstream");
}

TEST(Toxic, RequiredAttributeMissingIsAnErrorUnlessToxiproxyRules) {
    EXPECT_THROW(make_toxic("latency", Direction::down, {}), ToxicError);
    const Toxic t = make_toxic("latency", Direction::down, {}, "", {true, false});
    EXPECT_EQ(t.get("latency"), 0);
}

TEST(Toxic, UnknownAttributeIsAnErrorUnlessToxiproxyRules) {
    EXPECT_THROW(make_toxic("latency", Direction::down, {{"latency", 1}, {"colour", 3}}),
                 ToxicError);
    const Toxic t =
        make_toxic("latency", Direction::down, {{"latency", 1}, {"colour", 3}}, "", {true, true});
    EXPECT_FALSE(t.has("colour"));
}

TEST(Toxic, ValuesOutOfRangeAreRejectedWithTheRange) {
    try {
        make_toxic("loss", Direction::up, {{"probability", 1.5}});
        FAIL() << "accepted a probability of 1.5";
    } catch (const ToxicError& e) {
        EXPECT_NE(std::string(e.what()).find("between 0 and 1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(make_toxic("bandwidth", Direction::down, {{"rate", 1e-20}}), ToxicError);
    EXPECT_NO_THROW(make_toxic("bandwidth", Direction::down, {{"rate", 0}}));  // no limit
}

/// The one-line message of the ToxicError `fn` throws, or "" if it throws none.
template <class F>
std::string toxic_error(F fn) {
    try {
        fn();
    } catch (const ToxicError& e) {
        return e.what();
    }
    return "";
}

TEST(Toxic, HugeAndTinyNumbersAreRefusedNamingTheAttributeAndItsRange) {
    const auto parse = [](const char* text) { return toxic_error([&] { parse_toxic(text); }); };
    EXPECT_EQ(parse("bandwidth:up:rate=1e-20"),
              "bandwidth toxic: rate must be 0 (no limit) or at least 0.001 KB/s");
    EXPECT_EQ(parse("bandwidth:up:rate=1e300"),
              "bandwidth toxic: rate must be between 0 and 1000000000 KB/s (got 1e+300)");
    EXPECT_EQ(parse("latency:down:latency=1e300"),
              "latency toxic: latency must be between 0 and 3600000 ms (got 1e+300)");
    EXPECT_EQ(parse("latency:down:latency=10,jitter=1e300"),
              "latency toxic: jitter must be between 0 and 3600000 ms (got 1e+300)");
    EXPECT_EQ(parse("latency:down:latency=-1e-300"),
              "latency toxic: latency must be between 0 and 3600000 ms (got -1e-300)");
    EXPECT_EQ(parse("slicer:up:average_size=10,delay=1e300"),
              "slicer toxic: delay must be between 0 and 3600000000 us (got 1e+300)");
    EXPECT_EQ(parse("slicer:up:average_size=1e300"),
              "slicer toxic: average_size must be between 1 and 1000000000000000 bytes (got 1e+300)");
    EXPECT_EQ(parse("limit_data:up:bytes=1e16"),
              "limit_data toxic: bytes must be between 0 and 1000000000000000 bytes (got 1e+16)");
    EXPECT_EQ(parse("timeout:up:timeout=1e300"),
              "timeout toxic: timeout must be between 0 and 3600000 ms (got 1e+300)");
    EXPECT_EQ(parse("reorder:up:probability=0.5,hold=0"),
              "reorder toxic: hold must be above 0 and at most 3600000 ms (got 0)");
    EXPECT_EQ(parse("latency:down:latency=1e400"), "latency=1e400: not a number");
    EXPECT_EQ(parse("latency:down:latency=inf"), "latency=inf: not a number");
    EXPECT_EQ(parse("latency:down:latency=nan"), "latency=nan: not a number");
    EXPECT_EQ(parse("loss:up:probability=1e-300"), "");  // tiny, and in range
}

TEST(Toxic, NotANumberIsRefusedFromAProgramToo) {
    const double nan = std::nan("");
    EXPECT_NE(toxic_error([&] { make_toxic("latency", Direction::down, {{"latency", nan}}); }), "");
    EXPECT_EQ(toxic_error([&] {
                  make_toxic("latency", Direction::down, {{"latency", 1}, {"toxicity", nan}});
              }),
              "toxicity must be between 0 and 1 (got nan)");
    EXPECT_EQ(toxic_error([&] {
                  make_toxic("duplicate", Direction::up, {{"probability", nan}});
              }),
              "duplicate toxic: probability must be between 0 and 1 (got nan)");
}

TEST(Toxic, AValueChangedAfterTheCheckIsRefusedByTheModels) {
    Toxic spec = make_toxic("latency", Direction::down, {{"latency", 5}});
    Rng rng(1);
    ManualScheduler scheduler;
    UdpEffects effects;
    for (const double bad : {1e300, -1.0, std::nan("")}) {
        spec.attributes["latency"] = bad;
        EXPECT_THROW(make_tcp_toxic(spec, rng), ToxicError) << bad;
        EXPECT_THROW(make_udp_toxic(spec, rng, scheduler, effects), ToxicError) << bad;
    }
}

TEST(Toxic, DirectionsTakeToxiproxysNamesInAnyCase) {
    EXPECT_EQ(parse_direction("Upstream"), Direction::up);
    EXPECT_EQ(parse_direction("DOWNSTREAM"), Direction::down);
    EXPECT_EQ(parse_direction("both"), Direction::both);
    EXPECT_THROW(parse_direction("sideways"), ToxicError);
    EXPECT_EQ(parse_toxic("latency:upstream:latency=5").direction, Direction::up);
}

TEST(Toxic, AnUpdateMergesAndIsCheckedAgain) {
    const Toxic t = make_toxic("latency", Direction::down,
                               {{"latency", 100}, {"jitter", 10}, {"toxicity", 0.5}});
    const Toxic u = apply_change(t, {std::nullopt, {{"latency", 1000}}});
    EXPECT_EQ(u.get("latency"), 1000);
    EXPECT_EQ(u.get("jitter"), 10);
    EXPECT_EQ(u.toxicity, 0.5);
    EXPECT_EQ(u.name, t.name);
    EXPECT_THROW(apply_change(t, {2.0, {}}), ToxicError);
}

TEST(UdpModels, LossWithTheSameSeedDropsTheSameDatagrams) {
    const Toxic spec = make_toxic("loss", Direction::up, {{"probability", 0.3}});
    std::vector<std::string> in;
    for (int i = 0; i < 10'000; ++i)
        in.push_back(std::to_string(i));
    ManualScheduler scheduler;
    UdpEffects e1, e2;
    Rng r1(42), r2(42);
    const auto a = run_udp(*make_udp_toxic(spec, r1, scheduler, e1), in);
    const auto b = run_udp(*make_udp_toxic(spec, r2, scheduler, e2), in);
    EXPECT_EQ(a, b);
    EXPECT_EQ(e1.dropped, in.size() - a.size());
    // 10,000 draws of p = 0.3: the standard deviation of the count is 46.
    EXPECT_NEAR(double(e1.dropped), 3000.0, 4 * 46.0);
}

TEST(UdpModels, GilbertElliottLossMatchesItsStationaryRate) {
    const Toxic spec = make_toxic("loss", Direction::up, {{"p", 0.05}, {"r", 0.5}, {"bad", 0.8}});
    std::vector<std::string> in(100'000, "x");
    ManualScheduler scheduler;
    UdpEffects effects;
    Rng rng(7);
    run_udp(*make_udp_toxic(spec, rng, scheduler, effects), in);
    const double expected = gilbert_elliott_stationary_loss(0.05, 0.5, 0, 0.8);
    EXPECT_NEAR(double(effects.dropped) / double(in.size()), expected, 0.01);
}

TEST(UdpModels, DuplicateWithProbabilityOneSendsEachTwice) {
    const Toxic spec = make_toxic("duplicate", Direction::down, {{"probability", 1}});
    ManualScheduler scheduler;
    UdpEffects effects;
    Rng rng(1);
    const auto out = run_udp(*make_udp_toxic(spec, rng, scheduler, effects), {"a", "b"});
    EXPECT_EQ(out, (std::vector<std::string>{"a", "a", "b", "b"}));
    EXPECT_EQ(effects.duplicated, 2u);
}

TEST(UdpModels, ReorderLetsTheNextDatagramOvertakeOrReleasesAfterTheHold) {
    const Toxic spec = make_toxic("reorder", Direction::down, {{"probability", 1}, {"hold", 50}});
    ManualScheduler scheduler;
    UdpEffects effects;
    Rng rng(1);
    auto toxic = make_udp_toxic(spec, rng, scheduler, effects);
    std::vector<std::string> out;
    const UdpToxic::Emit emit = [&out](std::string d) { out.push_back(std::move(d)); };
    toxic->push("first", emit);
    EXPECT_TRUE(out.empty());
    toxic->push("second", emit);
    EXPECT_EQ(out, (std::vector<std::string>{"second", "first"}));
    EXPECT_EQ(effects.reordered, 1u);
    toxic->push("third", emit);  // held, and nothing follows: the hold timer releases it
    scheduler.fire_all();
    EXPECT_EQ(out.back(), "third");
}

TEST(UdpModels, CorruptFlipsExactlyOneBit) {
    const Toxic spec = make_toxic("corrupt", Direction::down, {{"probability", 1}});
    ManualScheduler scheduler;
    UdpEffects effects;
    Rng rng(3);
    const std::string original(64, '\0');
    const auto out = run_udp(*make_udp_toxic(spec, rng, scheduler, effects), {original});
    ASSERT_EQ(out.size(), 1u);
    int bits = 0;
    for (const char c : out[0])
        bits += __builtin_popcount(static_cast<unsigned char>(c));
    EXPECT_EQ(bits, 1);
}

TEST(TcpModels, SlicerCutsWithinItsBoundsAndKeepsEveryByteInOrder) {
    const Toxic spec = make_toxic("slicer", Direction::down,
                                  {{"average_size", 10}, {"size_variation", 4}, {"delay", 100}});
    std::string data;
    for (int i = 0; i < 1000; ++i)
        data += static_cast<char>('a' + i % 26);
    auto slice = [&](std::uint64_t seed) {
        Rng rng(seed);
        auto toxic = make_tcp_toxic(spec, rng);
        std::vector<Piece> pieces{{Piece::Kind::data, data, Clock::time_point{}}};
        toxic->apply(pieces);
        return pieces;
    };
    const auto pieces = slice(9);
    std::string joined;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        const std::size_t n = pieces[i].bytes.size();
        if (i + 1 < pieces.size()) {
            EXPECT_GE(n, 6u);
            EXPECT_LE(n, 14u);
        }
        if (i > 0) {
            EXPECT_GE(pieces[i].at, pieces[i - 1].at);
        }
        joined += pieces[i].bytes;
    }
    EXPECT_EQ(joined, data);
    const auto again = slice(9);
    ASSERT_EQ(again.size(), pieces.size());
    for (std::size_t i = 0; i < pieces.size(); ++i)
        EXPECT_EQ(again[i].bytes, pieces[i].bytes);
}

TEST(TcpModels, LatencyWithJitterNeverReordersPieces) {
    const Toxic spec = make_toxic("latency", Direction::down, {{"latency", 50}, {"jitter", 50}});
    Rng rng(5);
    auto toxic = make_tcp_toxic(spec, rng);
    const auto start = Clock::now();
    Clock::time_point last{};
    for (int i = 0; i < 200; ++i) {
        std::vector<Piece> pieces{{Piece::Kind::data, "x", start + std::chrono::milliseconds(i)}};
        toxic->apply(pieces);
        ASSERT_EQ(pieces.size(), 1u);
        EXPECT_GE(pieces[0].at, last);
        EXPECT_GE(pieces[0].at, start + std::chrono::milliseconds(i));
        last = pieces[0].at;
    }
}

TEST(TcpModels, TheSlowestBandwidthAndTheLongestDelaysScheduleWithoutOverflow) {
    Rng rng(1);
    const auto start = Clock::now();
    // 0.001 KB/s is one byte a second: slices of one byte, a second apart.
    auto slowest = make_tcp_toxic(make_toxic("bandwidth", Direction::up, {{"rate", 0.001}}), rng);
    std::vector<Piece> pieces{{Piece::Kind::data, "abc", start}};
    slowest->apply(pieces);
    ASSERT_EQ(pieces.size(), 3u);
    for (std::size_t i = 0; i < pieces.size(); ++i)
        EXPECT_EQ(pieces[i].at - start, std::chrono::seconds(i + 1));
    // The longest latency and slicer delay: an hour, exactly.
    auto hour = make_tcp_toxic(make_toxic("latency", Direction::up, {{"latency", 3'600'000}}), rng);
    std::vector<Piece> late{{Piece::Kind::data, "x", start}};
    hour->apply(late);
    EXPECT_EQ(late[0].at - start, std::chrono::hours(1));
    auto slicer = make_tcp_toxic(
        make_toxic("slicer", Direction::up, {{"average_size", 1}, {"delay", 3.6e9}}), rng);
    std::vector<Piece> sliced{{Piece::Kind::data, "xy", start}};
    slicer->apply(sliced);
    ASSERT_EQ(sliced.size(), 2u);
    EXPECT_EQ(sliced[1].at - sliced[0].at, std::chrono::hours(1));
}

TEST(TcpModels, LimitDataPassesExactlyItsBytesThenCloses) {
    const Toxic spec = make_toxic("limit_data", Direction::down, {{"bytes", 5}});
    Rng rng(1);
    auto toxic = make_tcp_toxic(spec, rng);
    std::vector<Piece> pieces{{Piece::Kind::data, "abc", {}}, {Piece::Kind::data, "defg", {}}};
    toxic->apply(pieces);
    ASSERT_EQ(pieces.size(), 3u);
    EXPECT_EQ(pieces[0].bytes + pieces[1].bytes, "abcde");
    EXPECT_EQ(pieces[2].kind, Piece::Kind::close);
}

TEST(TcpModels, TimeoutClosesWhenRemovedAndOthersDoNot) {
    Rng rng(1);
    EXPECT_TRUE(
        make_tcp_toxic(make_toxic("timeout", Direction::down, {}), rng)->closes_when_removed());
    EXPECT_FALSE(make_tcp_toxic(make_toxic("latency", Direction::down, {{"latency", 1}}), rng)
                     ->closes_when_removed());
}

}  // namespace
}  // namespace ferry::testkit
