// The embedded fault proxy in one process: a test's own upstream socket behind a
// FaultProxyThread, toxics added, changed and removed while the connection is open.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>

#include "ferry/create.hpp"
#include "ferry/duration.hpp"
#include "ferry/error.hpp"
#include "ferry/testkit/fault_proxy.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/loopback.hpp"

namespace ferry::testkit {
namespace {

using namespace std::chrono_literals;
using test::kGuard;

/// An upstream the test holds itself, a FaultProxyThread in front of it, and
/// one client connection through the proxy with its upstream end accepted.
class FaultProxyTest : public test::FdLeakCheck {
  protected:
    void SetUp() override {
        FdLeakCheck::SetUp();
        upstream_ = create_server("127.0.0.1", "0");
        upstream_.set_timeout(kGuard);
        proxy_ = std::make_unique<FaultProxyThread>(FaultProxyOptions{.seed = 1});
        const ProxyState state = proxy_->call([&](FaultProxy& f) {
            return f.create({.name = "db", .upstream = upstream_.local_address().to_string()});
        });
        listen_ = state.config.listen;
    }
    void TearDown() override {
        client_.close();
        server_side_.close();
        proxy_.reset();
        upstream_.close();
        FdLeakCheck::TearDown();
    }

    /// Connects a client through the proxy and accepts its upstream side.
    void connect() {
        const auto colon = listen_.rfind(':');
        client_ = create_connection(listen_.substr(0, colon), listen_.substr(colon + 1),
                                    {.timeout = kGuard});
        server_side_ = std::move(upstream_.accept()->socket);
        server_side_.set_timeout(kGuard);
    }

    /// One round trip client -> upstream -> client of `text`, timed.
    Duration round_trip(const std::string& text = "ping") {
        const auto start = Clock::now();
        client_.send_all(text);
        EXPECT_EQ(server_side_.recv_exact(text.size()), text);
        server_side_.send_all(text);
        EXPECT_EQ(client_.recv_exact(text.size()), text);
        return Clock::now() - start;
    }

    void add(const std::string& spec) {
        proxy_->call([&](FaultProxy& f) { return f.add_toxic("db", parse_toxic(spec)); });
    }

    Socket upstream_;
    std::unique_ptr<FaultProxyThread> proxy_;
    std::string listen_;
    Socket client_;
    Socket server_side_;
};

TEST_F(FaultProxyTest, LatencyAddedToALiveConnectionShowsOnItsNextRoundTripAndGoesWithIt) {
    connect();
    round_trip();
    add("latency:down:latency=300");
    EXPECT_GE(round_trip(), 300ms);
    proxy_->call([](FaultProxy& f) { f.remove_toxic("db", "latency_downstream"); });
    EXPECT_LT(round_trip(), 250ms);
}

TEST_F(FaultProxyTest, AnUpdatedToxicActsWithItsNewValues) {
    connect();
    add("latency:up:latency=100");
    EXPECT_GE(round_trip(), 100ms);
    const Toxic changed = proxy_->call([](FaultProxy& f) {
        return f.update_toxic("db", "latency_upstream", {std::nullopt, {{"latency", 350}}});
    });
    EXPECT_EQ(changed.get("latency"), 350);
    EXPECT_GE(round_trip(), 350ms);
}

TEST_F(FaultProxyTest, SlicerAddedToALiveConnectionSpreadsTheBytesOverItsDelays) {
    connect();
    add("slicer:down:average_size=1,delay=50000");  // one byte every 50 ms
    server_side_.send_all("abcd");
    char first = 0;
    ASSERT_EQ(client_.recv(&first, 1).value_or(0), 1u);
    const auto first_byte = Clock::now();
    EXPECT_EQ(first, 'a');
    EXPECT_EQ(client_.recv_exact(3), "bcd");
    // The last slice leaves three delays after the first, however late the first was read.
    EXPECT_GE(Clock::now() - first_byte, 140ms);
}

TEST_F(FaultProxyTest, ResetPeerAddedToALiveConnectionResetsIt) {
    connect();
    round_trip();
    add("reset_peer:both:timeout=0");
    char byte = 0;
    try {
        client_.recv(&byte, 1);
        FAIL() << "the connection was not reset";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::error_code(ECONNRESET, std::system_category())) << e.what();
    }
}

TEST_F(FaultProxyTest, RemovingATimeoutToxicClosesTheConnectionItStarved) {
    connect();
    add("timeout:down:timeout=0");
    server_side_.send_all("dropped");
    proxy_->call([](FaultProxy& f) { f.remove_toxic("db", "timeout_downstream"); });
    char byte = 0;
    EXPECT_EQ(client_.recv(&byte, 1).value_or(99), 0u);  // end of stream
}

TEST_F(FaultProxyTest, DisablingRefusesClientsAndEnablingBringsTheSamePortBack) {
    connect();
    round_trip();
    proxy_->call([](FaultProxy& f) { return f.update("db", {.enabled = false}); });
    char byte = 0;
    EXPECT_EQ(client_.recv(&byte, 1).value_or(99), 0u);  // its connection closed
    const auto colon = listen_.rfind(':');
    const std::string host = listen_.substr(0, colon), port = listen_.substr(colon + 1);
    try {
        create_connection(host, port, {.timeout = kGuard});
        FAIL() << "a disabled proxy accepted a connection";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::error_code(ECONNREFUSED, std::system_category())) << e.what();
    }
    const ProxyState back =
        proxy_->call([](FaultProxy& f) { return f.update("db", {.enabled = true}); });
    EXPECT_EQ(back.config.listen, listen_);
    server_side_.close();
    connect();
    round_trip();
}

TEST_F(FaultProxyTest, CountersCountBothWays) {
    connect();
    round_trip("12345");
    const Counters c = proxy_->call([](FaultProxy& f) { return f.get("db").counters; });
    EXPECT_EQ(c.connections, 1u);
    EXPECT_EQ(c.active, 1u);
    EXPECT_EQ(c.received_up, 5u);
    EXPECT_EQ(c.bytes_up, 5u);
    EXPECT_EQ(c.received_down, 5u);
    EXPECT_EQ(c.bytes_down, 5u);
}

TEST_F(FaultProxyTest, NamesAndTypesAreChecked) {
    add("latency:down:latency=1");
    EXPECT_THROW(add("latency:down:latency=2"), ProxyError);  // latency_downstream exists
    try {
        proxy_->call([](FaultProxy& f) { return f.get("nope"); });
        FAIL();
    } catch (const ProxyError& e) {
        EXPECT_EQ(e.kind(), ProxyError::Kind::not_found);
        EXPECT_STREQ(e.what(), "proxy not found");
    }
    EXPECT_THROW(add("loss:up:probability=0.5"), ToxicError);  // a UDP toxic on a TCP proxy
    try {
        proxy_->call(
            [&](FaultProxy& f) { return f.create({.name = "db", .upstream = "127.0.0.1:9"}); });
        FAIL();
    } catch (const ProxyError& e) {
        EXPECT_EQ(e.kind(), ProxyError::Kind::exists);
    }
}

TEST_F(FaultProxyTest, APortInUseIsAStartErrorAndCreatesNothing) {
    try {
        proxy_->call([&](FaultProxy& f) {
            return f.create({.name = "clash", .listen = listen_, .upstream = "127.0.0.1:9"});
        });
        FAIL() << "two proxies bound one port";
    } catch (const ProxyError& e) {
        EXPECT_EQ(e.kind(), ProxyError::Kind::start);
        EXPECT_NE(std::string(e.what()).find("Address already in use"), std::string::npos)
            << e.what();
    }
    EXPECT_FALSE(proxy_->call([](FaultProxy& f) { return f.contains("clash"); }));
}

TEST_F(FaultProxyTest, AToxicChangedAfterItsCheckIsRefused) {
    Toxic toxic = parse_toxic("latency:down:latency=5");
    toxic.attributes["latency"] = 1e300;  // the fields are public
    EXPECT_THROW(proxy_->call([&](FaultProxy& f) { return f.add_toxic("db", toxic); }), ToxicError);
    toxic.attributes["latency"] = std::nan("");
    EXPECT_THROW(proxy_->call([&](FaultProxy& f) { return f.add_toxic("db", toxic); }), ToxicError);
    EXPECT_TRUE(proxy_->call([](FaultProxy& f) { return f.get("db").toxics.empty(); }));
}

TEST(FaultProxyOptionsTest, HugeDurationsMeanPracticallyNeverAndTheCapsFollowTheDescriptorLimit) {
    FaultProxyOptions given;
    given.udp_idle = Duration::max();
    given.connect_timeout = Duration::max();
    given.idle_timeout = Duration::max();
    given.udp_max_flows = std::size_t{1} << 40;
    const FaultProxyOptions used = effective_options(given);
    EXPECT_EQ(used.udp_idle, kPracticallyNever);
    EXPECT_EQ(used.connect_timeout, kPracticallyNever);
    EXPECT_EQ(used.idle_timeout, kPracticallyNever);
    rlimit limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
    const auto share = (static_cast<std::size_t>(limit.rlim_cur) - 64) / 2;
    EXPECT_EQ(used.udp_max_flows, share);
    EXPECT_EQ(used.max_connections, std::min<std::size_t>(10000, share));
    given.max_connections = 0;
    EXPECT_THROW(effective_options(given), Error);
}

TEST(FaultProxyOptionsTest, ARelayWithTheLongestTimeoutsRelays) {
    // Each of these feeds a deadline (now + timeout): none may overflow.
    Socket upstream = create_server("127.0.0.1", "0");
    upstream.set_timeout(kGuard);
    FaultProxyOptions options;
    options.connect_timeout = Duration::max();
    options.idle_timeout = Duration::max();
    options.udp_idle = Duration::max();
    FaultProxyThread proxy(options);
    const ProxyState state = proxy.call([&](FaultProxy& f) {
        return f.create({.name = "slow", .upstream = upstream.local_address().to_string()});
    });
    const auto colon = state.config.listen.rfind(':');
    Socket client = create_connection(state.config.listen.substr(0, colon),
                                      state.config.listen.substr(colon + 1), {.timeout = kGuard});
    Socket server_side = std::move(upstream.accept()->socket);
    server_side.set_timeout(kGuard);
    client.send_all("ping");
    EXPECT_EQ(server_side.recv_exact(4), "ping");
}

TEST(FaultProxyUdp, DuplicateAddedAtRunTimeDoublesTheEchoes) {
    Socket upstream = create_server("127.0.0.1", "0", {.socktype = SOCK_DGRAM});
    upstream.set_timeout(kGuard);
    FaultProxyThread proxy(FaultProxyOptions{.seed = 2});
    const ProxyState state = proxy.call([&](FaultProxy& f) {
        return f.create({.name = "dns",
                         .upstream = upstream.local_address().to_string(),
                         .protocol = Protocol::udp});
    });
    const auto colon = state.config.listen.rfind(':');
    Socket client = create_connection(state.config.listen.substr(0, colon),
                                      state.config.listen.substr(colon + 1),
                                      {.socktype = SOCK_DGRAM, .timeout = kGuard});
    auto echo_one = [&] {
        char buf[64];
        const auto got = upstream.recvfrom(buf, sizeof buf);
        ASSERT_TRUE(got);
        upstream.sendto(std::string_view(buf, got->size), got->from);
    };
    client.send_all("one");
    echo_one();
    EXPECT_EQ(client.recv_exact(3), "one");
    proxy.call([](FaultProxy& f) {
        return f.add_toxic("dns", parse_toxic("duplicate:down:probability=1"));
    });
    client.send_all("two");
    echo_one();
    EXPECT_EQ(client.recv_exact(3), "two");
    EXPECT_EQ(client.recv_exact(3), "two");
    EXPECT_EQ(proxy.call([](FaultProxy& f) { return f.get("dns").counters.effects.duplicated; }),
              1u);
}

}  // namespace
// call_on_loop from the loop's own thread (a handler, posted work) runs at once
// rather than waiting for itself: the HTTP API's handlers run there in the fuzzer.
TEST(CallOnLoopTest, OnTheLoopsOwnThreadItRunsAtOnce) {
    EventLoop loop;
    FaultProxy proxy(loop, FaultProxyOptions{.seed = 1});
    int answer = 0;
    loop.post([&] {
        answer = call_on_loop(loop, [&] { return static_cast<int>(proxy.list().size()) + 42; });
    });
    loop.run_once(kGuard);
    EXPECT_EQ(answer, 42);
}

TEST(CallOnLoopTest, FromAnotherThreadItRunsOnTheLoopsThreadAndRethrows) {
    FaultProxyThread proxy(FaultProxyOptions{.seed = 1});
    const auto caller = std::this_thread::get_id();
    EXPECT_NE(proxy.call([](FaultProxy&) { return std::this_thread::get_id(); }), caller);
    EXPECT_THROW(proxy.call([](FaultProxy& f) { return f.get("none"); }), ProxyError);
}

}  // namespace ferry::testkit
