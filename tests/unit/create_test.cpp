// create_server and create_connection: resolution, every address tried, the
// timeout kept on the returned socket, and the errors a user sees first.
#include "ferry/create.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "ferry/error.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/loopback.hpp"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using test::kGuard;
using test::port_of;

using CreateServerTest = test::FdLeakCheck;
using CreateConnectionTest = test::FdLeakCheck;

TEST_F(CreateServerTest, PortZeroIsReadBack) {
    const Socket server = create_server("127.0.0.1", "0");
    const Address where = server.local_address();
    EXPECT_EQ(where.host(), "127.0.0.1");
    EXPECT_NE(where.port(), 0);
    EXPECT_EQ(server.type(), SOCK_STREAM);
    EXPECT_NE(server.get_option<int>(SOL_SOCKET, SO_ACCEPTCONN), 0);
    EXPECT_NE(server.get_option<int>(SOL_SOCKET, SO_REUSEADDR), 0);  // the default
    EXPECT_EQ(server.timeout(), std::nullopt);
}

TEST_F(CreateServerTest, EmptyHostBindsEveryInterface) {
    const Socket v4 = create_server("", "0", {.family = AF_INET});
    EXPECT_EQ(v4.local_address().host(), "0.0.0.0");
    const Socket v6 = create_server("", "0", {.family = AF_INET6});
    EXPECT_EQ(v6.local_address().host(), "::");
    EXPECT_NE(v6.get_option<int>(IPPROTO_IPV6, IPV6_V6ONLY), 0);
}

TEST_F(CreateServerTest, Ipv6ServerSetsV6OnlyExplicitly) {
    const Socket server = create_server("::1", "0");
    EXPECT_EQ(server.local_address().family(), AF_INET6);
    EXPECT_NE(server.get_option<int>(IPPROTO_IPV6, IPV6_V6ONLY), 0);
}

TEST_F(CreateServerTest, UdpServerIsBoundButNotListening) {
    Socket server = create_server("127.0.0.1", "0", {.socktype = SOCK_DGRAM});
    EXPECT_EQ(server.type(), SOCK_DGRAM);
    EXPECT_NE(server.local_address().port(), 0);
    Socket client(AF_INET, SOCK_DGRAM);
    client.sendto("hello", server.local_address());
    server.set_timeout(kGuard);
    char buffer[8];
    EXPECT_EQ(server.recvfrom(buffer, sizeof buffer)->size, 5U);
}

void expect_address_in_use(const Address& taken, const ServerOptions& options) {
    try {
        const Socket second = create_server("127.0.0.1", port_of(taken), options);
        FAIL() << "a second listener bound " << taken.to_string();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::address_in_use);
        const std::string what = e.what();
        EXPECT_NE(what.find("Address already in use"), std::string::npos) << what;
        EXPECT_EQ(what, "bind to " + taken.to_string() + ": Address already in use");
    }
}

TEST_F(CreateServerTest, PortAlreadyInUseWithoutReuseAddress) {
    const Socket first = create_server("127.0.0.1", "0", {.reuse_address = false});
    expect_address_in_use(first.local_address(), {.reuse_address = false});
}

TEST_F(CreateServerTest, PortAlreadyInUseEvenWithReuseAddressOnBoth) {
    // SO_REUSEADDR lets a server rebind over TIME_WAIT connections, never next
    // to another listener (socket(7)).
    const Socket first = create_server("127.0.0.1", "0");
    expect_address_in_use(first.local_address(), {});
}

TEST_F(CreateServerTest, UdpPortAlreadyInUseWithTheDefaultOptions) {
    // On a UDP socket SO_REUSEADDR would let a second server share the port
    // silently (there is no TIME_WAIT to get past), so the default must not set it.
    const Socket first = create_server("127.0.0.1", "0", {.socktype = SOCK_DGRAM});
    expect_address_in_use(first.local_address(), {.socktype = SOCK_DGRAM});
}

TEST_F(CreateServerTest, ReusePortOnBothAllowsTwoListeners) {
    const Socket first = create_server("127.0.0.1", "0", {.reuse_port = true});
    const std::string port = port_of(first.local_address());
    Socket second;
    EXPECT_NO_THROW(second = create_server("127.0.0.1", port, {.reuse_port = true}));
    EXPECT_EQ(second.local_address(), first.local_address());
}

TEST_F(CreateServerTest, BadPortIsBadPort) {
    try {
        (void)create_server("127.0.0.1", "99999");
        FAIL() << "bound port 99999";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::bad_port);
    }
}

TEST_F(CreateConnectionTest, ConnectsToAServerOnPortZero) {
    Socket server = create_server("127.0.0.1", "0");
    Socket client = create_connection("127.0.0.1", port_of(server.local_address()));
    EXPECT_EQ(client.peer_address(), server.local_address());
    EXPECT_EQ(client.timeout(), std::nullopt);
    EXPECT_FALSE(test::has_nonblock(client.fd()));
    server.set_timeout(kGuard);
    EXPECT_EQ(server.accept()->peer, client.local_address());
}

TEST_F(CreateConnectionTest, ReturnedSocketKeepsTheTimeout) {
    Socket server = create_server("127.0.0.1", "0");
    ConnectOptions options;
    options.timeout = 700ms;
    Socket client = create_connection("127.0.0.1", port_of(server.local_address()), options);
    EXPECT_EQ(client.timeout(), Duration(700ms));
    EXPECT_TRUE(test::has_nonblock(client.fd()));
    // And the timeout applies to what follows: nobody sends, so recv times out.
    client.set_timeout(100ms);
    char byte;
    EXPECT_THROW((void)client.recv(&byte, 1), TimeoutError);
}

TEST_F(CreateConnectionTest, ServiceNameAndHostName) {
    Socket server = create_server("127.0.0.1", "0");
    Socket client = create_connection("localhost", port_of(server.local_address()),
                                      {.family = AF_INET, .timeout = kGuard});
    EXPECT_EQ(client.peer_address(), server.local_address());
}

TEST_F(CreateConnectionTest, Ipv6) {
    Socket server = create_server("::1", "0");
    Socket client = create_connection("::1", port_of(server.local_address()),
                                      {.family = AF_INET6, .timeout = kGuard});
    EXPECT_EQ(client.peer_address().to_string(), "[::1]:" + port_of(server.local_address()));
}

TEST_F(CreateConnectionTest, UdpConnectionFixesThePeer) {
    Socket server = create_server("127.0.0.1", "0", {.socktype = SOCK_DGRAM});
    Socket client = create_connection("127.0.0.1", port_of(server.local_address()),
                                      {.socktype = SOCK_DGRAM, .timeout = kGuard});
    EXPECT_EQ(client.type(), SOCK_DGRAM);
    EXPECT_EQ(client.peer_address(), server.local_address());
    client.send_all("datagram");
    server.set_timeout(kGuard);
    char buffer[16];
    const auto got = server.recvfrom(buffer, sizeof buffer);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->from, client.local_address());
}

TEST_F(CreateConnectionTest, ConnectionRefusedNamesTheAddress) {
    Socket holder(AF_INET, SOCK_STREAM);  // bound, not listening: the port refuses
    holder.bind(Address::ip("127.0.0.1", 0));
    const Address refusing = holder.local_address();
    for (const std::optional<Duration> timeout :
         {std::optional<Duration>(), std::optional<Duration>(kGuard)}) {
        try {
            (void)create_connection("127.0.0.1", port_of(refusing), {.timeout = timeout});
            FAIL() << "connected to a port nobody listens on";
        } catch (const TimeoutError& e) {
            FAIL() << "timed out instead of being refused: " << e.what();
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), std::errc::connection_refused);
            const std::string what = e.what();
            EXPECT_EQ(what.rfind("connect to 127.0.0.1:", 0), 0U) << what;
            EXPECT_NE(what.find("Connection refused"), std::string::npos) << what;
            EXPECT_EQ(what, "connect to " + refusing.to_string() + ": Connection refused");
        }
    }
}

TEST_F(CreateConnectionTest, ConnectTimeoutOnAFullBacklog) {
    // listen(0) queues one connection; once it is queued, the kernel drops
    // further SYNs, so a connect stays in SYN-SENT until its timeout.
    Socket listener(AF_INET, SOCK_STREAM);
    listener.bind(Address::ip("127.0.0.1", 0));
    listener.listen(0);
    const std::string port = port_of(listener.local_address());
    std::vector<Socket> fillers;
    bool full = false;
    for (int i = 0; i < 8 && !full; ++i) {
        try {
            fillers.push_back(create_connection("127.0.0.1", port, {.timeout = 200ms}));
        } catch (const TimeoutError&) {
            full = true;
        }
    }
    ASSERT_TRUE(full) << "the listener never stopped completing handshakes";
    const auto start = Clock::now();
    try {
        (void)create_connection("127.0.0.1", port, {.timeout = 200ms});
        FAIL() << "connected to a listener whose queue is full";
    } catch (const TimeoutError& e) {
        EXPECT_EQ(e.code(), std::errc::timed_out);
        EXPECT_EQ(std::string(e.what()).rfind("connect to 127.0.0.1:" + port + ": ", 0), 0U)
            << e.what();
    }
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 200ms);
    EXPECT_LT(elapsed, 200ms + 1500ms);
}

TEST_F(CreateConnectionTest, BadPortIsBadPort) {
    try {
        (void)create_connection("127.0.0.1", "nosuchservice");
        FAIL() << "connected to service nosuchservice";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::bad_port);
    }
}

}  // namespace
}  // namespace ferry
