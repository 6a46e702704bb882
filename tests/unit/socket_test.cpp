// Socket: ownership, modes and options, addresses, accept and connect, and
// round trips over every family and type (IPv4, IPv6, Unix stream, seqpacket
// and datagram, UDP). I/O edge cases live in socket_io_test.cpp.
#include "ferry/socket.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/loopback.hpp"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using test::kGuard;

using SocketTest = test::FdLeakCheck;
using SocketOptionTest = test::FdLeakCheck;
using AcceptTest = test::FdLeakCheck;
using ConnectTest = test::FdLeakCheck;
using RoundTripTest = test::FdLeakCheck;
using ShutdownTest = test::FdLeakCheck;

static_assert(!std::is_copy_constructible_v<Socket>);
static_assert(std::is_nothrow_move_constructible_v<Socket>);

// A TCP address on 127.0.0.1 that refuses connections: a socket bound to port 0
// but not listening holds the port, so nobody else can listen on it, and the
// kernel answers a SYN to it with a RST.
struct RefusingPort {
    Socket holder{AF_INET, SOCK_STREAM};
    Address address;
    RefusingPort() {
        holder.bind(Address::ip("127.0.0.1", 0));
        address = holder.local_address();
    }
};

TEST_F(SocketTest, DefaultIsEmpty) {
    const Socket s;
    EXPECT_FALSE(s);
    EXPECT_EQ(s.fd(), -1);
    EXPECT_EQ(s.timeout(), std::nullopt);
}

TEST_F(SocketTest, EveryCreatedSocketIsCloseOnExec) {
    std::vector<Socket> sockets;
    sockets.emplace_back(AF_INET, SOCK_STREAM);
    sockets.emplace_back(AF_INET6, SOCK_DGRAM);
    sockets.emplace_back(AF_UNIX, SOCK_SEQPACKET);
    sockets.emplace_back(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    auto [a, b] = Socket::pair();
    Socket listener = create_server("127.0.0.1", "0");
    Socket client = create_connection("127.0.0.1", test::port_of(listener.local_address()));
    Accepted accepted = *listener.accept();
    Accepted accepted_nonblocking = [&] {
        Socket second = create_connection("127.0.0.1", test::port_of(listener.local_address()));
        return *listener.accept(SOCK_NONBLOCK);
    }();
    sockets.push_back(std::move(a));
    sockets.push_back(std::move(b));
    sockets.push_back(std::move(listener));
    sockets.push_back(std::move(client));
    sockets.push_back(std::move(accepted.socket));
    sockets.push_back(std::move(accepted_nonblocking.socket));
    for (const Socket& s : sockets)
        EXPECT_TRUE(test::has_cloexec(s.fd())) << s.fd();
}

TEST_F(SocketTest, FamilyAndTypeComeFromTheKernel) {
    const Socket tcp6(AF_INET6, SOCK_STREAM);
    EXPECT_EQ(tcp6.family(), AF_INET6);
    EXPECT_EQ(tcp6.type(), SOCK_STREAM);
    const Socket udp(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK);
    EXPECT_EQ(udp.family(), AF_INET);
    EXPECT_EQ(udp.type(), SOCK_DGRAM);
    auto [a, b] = Socket::pair(SOCK_SEQPACKET);
    EXPECT_EQ(a.family(), AF_UNIX);
    EXPECT_EQ(b.type(), SOCK_SEQPACKET);
}

TEST_F(SocketTest, BadFamilyThrowsNamingTheCall) {
    try {
        Socket s(12345, SOCK_STREAM);
        FAIL() << "created a socket of family 12345";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::address_family_not_supported);
        EXPECT_EQ(std::string(e.what()).rfind("socket(family 12345, STREAM): ", 0), 0U) << e.what();
    }
}

TEST_F(SocketTest, MoveLeavesSourceEmpty) {
    Socket a(AF_INET, SOCK_STREAM);
    const int fd = a.fd();
    Socket b(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the state after a move is the point
    EXPECT_EQ(a.fd(), -1);
    EXPECT_EQ(b.fd(), fd);
    Socket c;
    c = std::move(b);
    EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(c.fd(), fd);
    EXPECT_TRUE(test::has_cloexec(fd));
}

TEST_F(SocketTest, MoveAssignmentClosesTheOldDescriptor) {
    Socket a(AF_INET, SOCK_STREAM);
    Socket b(AF_INET, SOCK_DGRAM);
    const int old = a.fd();
    a = std::move(b);
    EXPECT_LT(::fcntl(old, F_GETFD), 0);
    EXPECT_EQ(a.type(), SOCK_DGRAM);
}

TEST_F(SocketTest, ReleaseHandsOverTheDescriptor) {
    Socket s(AF_INET, SOCK_STREAM);
    const int fd = s.fd();
    Fd owner = s.release();
    EXPECT_FALSE(s);
    EXPECT_EQ(owner.get(), fd);
    EXPECT_GE(::fcntl(fd, F_GETFD), 0);
}

TEST_F(SocketTest, CloseIsIdempotent) {
    Socket s(AF_INET, SOCK_STREAM);
    const int fd = s.fd();
    s.close();
    EXPECT_FALSE(s);
    EXPECT_LT(::fcntl(fd, F_GETFD), 0);
    s.close();
    EXPECT_FALSE(s);
}

TEST_F(SocketTest, NonblockAtBirthMeansZeroTimeout) {
    const Socket s(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    EXPECT_EQ(s.timeout(), Duration::zero());
    EXPECT_TRUE(test::has_nonblock(s.fd()));
    auto [a, b] = Socket::pair(SOCK_STREAM | SOCK_NONBLOCK);
    EXPECT_EQ(a.timeout(), Duration::zero());
    EXPECT_EQ(b.timeout(), Duration::zero());
    EXPECT_TRUE(test::has_nonblock(b.fd()));
}

TEST_F(SocketTest, AdoptedDescriptorKeepsItsMode) {
    const Socket blocking(Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)));
    EXPECT_EQ(blocking.timeout(), std::nullopt);
    const Socket nonblocking(Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)));
    EXPECT_EQ(nonblocking.timeout(), Duration::zero());
}

TEST_F(SocketTest, AdoptingAnInvalidDescriptorThrows) {
    EXPECT_THROW(Socket{Fd()}, Error);
}

TEST_F(SocketTest, TimeoutModesSetONonblock) {
    Socket s(AF_INET, SOCK_STREAM);
    EXPECT_FALSE(test::has_nonblock(s.fd()));
    s.set_timeout(1s);
    EXPECT_EQ(s.timeout(), Duration(1s));
    EXPECT_TRUE(test::has_nonblock(s.fd()));  // a timeout is implemented with poll()
    s.set_timeout(std::nullopt);
    EXPECT_EQ(s.timeout(), std::nullopt);
    EXPECT_FALSE(test::has_nonblock(s.fd()));
    s.set_blocking(false);
    EXPECT_EQ(s.timeout(), Duration::zero());
    EXPECT_TRUE(test::has_nonblock(s.fd()));
    s.set_timeout(250ms);
    EXPECT_TRUE(test::has_nonblock(s.fd()));
    s.set_blocking(true);
    EXPECT_EQ(s.timeout(), std::nullopt);
    EXPECT_FALSE(test::has_nonblock(s.fd()));
}

TEST_F(SocketTest, NegativeTimeoutIsRejected) {
    Socket s(AF_INET, SOCK_STREAM);
    EXPECT_THROW(s.set_timeout(-1ms), Error);
    EXPECT_EQ(s.timeout(), std::nullopt);
}

TEST_F(SocketTest, WaitReportsReadinessAndTimesOut) {
    auto [a, b] = Socket::pair();
    EXPECT_FALSE(a.wait(POLLIN, Clock::now() - 1s));  // a past deadline polls once
    const auto start = Clock::now();
    EXPECT_FALSE(a.wait(POLLIN, Clock::now() + 50ms));
    EXPECT_GE(Clock::now() - start, 50ms);
    EXPECT_TRUE(a.wait(POLLOUT, Clock::now() + kGuard));
    b.send_all("x");
    EXPECT_TRUE(a.wait(POLLIN, Clock::now() + kGuard));
    EXPECT_TRUE(a.wait(POLLIN, Clock::now() - 1s));
}

TEST_F(SocketTest, DeadlineFromNowFollowsTheTimeout) {
    Socket s(AF_INET, SOCK_STREAM);
    EXPECT_EQ(s.deadline_from_now(), std::nullopt);
    s.set_blocking(false);
    EXPECT_EQ(s.deadline_from_now(), std::nullopt);
    s.set_timeout(10s);
    const auto before = Clock::now();
    const Deadline d = s.deadline_from_now();
    ASSERT_TRUE(d.has_value());
    EXPECT_GE(*d, before + 10s);
    EXPECT_LE(*d, Clock::now() + 10s);
}

TEST_F(SocketOptionTest, ReuseAddressRoundTrips) {
    Socket s(AF_INET, SOCK_STREAM);
    EXPECT_EQ(s.get_option<int>(SOL_SOCKET, SO_REUSEADDR), 0);
    s.set_reuse_address(true);
    EXPECT_NE(s.get_option<int>(SOL_SOCKET, SO_REUSEADDR), 0);
    s.set_reuse_address(false);
    EXPECT_EQ(s.get_option<int>(SOL_SOCKET, SO_REUSEADDR), 0);
}

TEST_F(SocketOptionTest, NamedOptions) {
    Socket tcp(AF_INET6, SOCK_STREAM);
    tcp.set_reuse_port(true);
    EXPECT_NE(tcp.get_option<int>(SOL_SOCKET, SO_REUSEPORT), 0);
    tcp.set_no_delay(true);
    EXPECT_NE(tcp.get_option<int>(IPPROTO_TCP, TCP_NODELAY), 0);
    tcp.set_v6_only(true);
    EXPECT_NE(tcp.get_option<int>(IPPROTO_IPV6, IPV6_V6ONLY), 0);
    tcp.set_v6_only(false);
    EXPECT_EQ(tcp.get_option<int>(IPPROTO_IPV6, IPV6_V6ONLY), 0);
    Socket udp(AF_INET, SOCK_DGRAM);
    udp.set_broadcast(true);
    EXPECT_NE(udp.get_option<int>(SOL_SOCKET, SO_BROADCAST), 0);
}

TEST_F(SocketOptionTest, BufferSizeIsDoubledByTheKernel) {
    Socket s(AF_INET, SOCK_STREAM);
    s.set_option<int>(SOL_SOCKET, SO_RCVBUF, 16384);
    // socket(7): the kernel doubles the value to allow for bookkeeping.
    EXPECT_EQ(s.get_option<int>(SOL_SOCKET, SO_RCVBUF), 32768);
}

TEST_F(SocketOptionTest, UnknownOptionThrowsNamingTheCall) {
    Socket s(AF_INET, SOCK_STREAM);
    try {
        (void)s.get_option<int>(SOL_SOCKET, 99999);
        FAIL() << "read option 99999";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("getsockopt(", 0), 0U) << e.what();
    }
    EXPECT_THROW(s.set_option<int>(SOL_SOCKET, 99999, 1), Error);
}

TEST_F(AcceptTest, AcceptReturnsThePeerAddress) {
    Socket listener = create_server("127.0.0.1", "0");
    const Address where = listener.local_address();
    EXPECT_EQ(where.host(), "127.0.0.1");
    ASSERT_NE(where.port(), 0);
    Socket client(AF_INET, SOCK_STREAM);
    EXPECT_TRUE(client.connect(where));
    listener.set_timeout(kGuard);
    const Accepted accepted = *listener.accept();
    EXPECT_EQ(accepted.peer, client.local_address());
    EXPECT_EQ(accepted.socket.peer_address(), client.local_address());
    EXPECT_EQ(accepted.socket.local_address(), where);
    EXPECT_EQ(client.peer_address(), where);
    EXPECT_EQ(accepted.socket.timeout(), std::nullopt);
    EXPECT_FALSE(test::has_nonblock(accepted.socket.fd()));
}

TEST_F(AcceptTest, AcceptWithNonblockFlagGivesANonblockingSocket) {
    Socket listener = create_server("127.0.0.1", "0");
    const Socket client = create_connection("127.0.0.1", test::port_of(listener.local_address()));
    listener.set_timeout(kGuard);
    Accepted accepted = *listener.accept(SOCK_NONBLOCK);
    EXPECT_EQ(accepted.socket.timeout(), Duration::zero());
    EXPECT_TRUE(test::has_nonblock(accepted.socket.fd()));
    char byte;
    EXPECT_EQ(accepted.socket.recv(&byte, 1), std::nullopt);
}

TEST_F(AcceptTest, NonblockingAcceptWithNoPendingConnectionReturnsNullopt) {
    Socket listener = create_server("127.0.0.1", "0");
    listener.set_blocking(false);
    EXPECT_EQ(listener.accept(), std::nullopt);
    // And once a client arrives, the same call returns it.
    const Socket client = create_connection("127.0.0.1", test::port_of(listener.local_address()));
    ASSERT_TRUE(listener.wait(POLLIN, Clock::now() + kGuard));
    const auto accepted = listener.accept();
    ASSERT_TRUE(accepted.has_value());
    EXPECT_EQ(accepted->peer, client.local_address());
}

TEST_F(AcceptTest, AcceptTimeoutThrowsTimeoutError) {
    Socket listener = create_server("127.0.0.1", "0");
    listener.set_timeout(100ms);
    const auto start = Clock::now();
    try {
        (void)listener.accept();
        FAIL() << "accepted a connection nobody made";
    } catch (const TimeoutError& e) {
        EXPECT_EQ(e.code(), std::errc::timed_out);
        EXPECT_NE(std::string(e.what()).find("accept on"), std::string::npos) << e.what();
    }
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 100ms);
    EXPECT_LT(elapsed, 100ms + 1500ms);
}

TEST_F(AcceptTest, AcceptOnANonListeningSocketThrows) {
    Socket s(AF_INET, SOCK_STREAM);
    EXPECT_THROW((void)s.accept(), Error);
}

TEST_F(ConnectTest, ConnectRefusedNamesTheAddress) {
    const RefusingPort refusing;
    Socket client(AF_INET, SOCK_STREAM);
    try {
        client.connect(refusing.address);
        FAIL() << "connected to a port nobody listens on";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_refused);
        const std::string what = e.what();
        EXPECT_EQ(what.rfind("connect to 127.0.0.1:", 0), 0U) << what;
        EXPECT_EQ(what, "connect to " + refusing.address.to_string() + ": Connection refused");
    }
}

TEST_F(ConnectTest, ConnectRefusedWithATimeoutIsTheSameError) {
    const RefusingPort refusing;
    Socket client(AF_INET, SOCK_STREAM);
    client.set_timeout(kGuard);
    try {
        client.connect(refusing.address);
        FAIL() << "connected to a port nobody listens on";
    } catch (const TimeoutError& e) {
        FAIL() << "timed out instead of being refused: " << e.what();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "connect to " + refusing.address.to_string() + ": Connection refused");
    }
}

TEST_F(ConnectTest, NonblockingConnectThenFinishConnect) {
    Socket listener = create_server("127.0.0.1", "0");
    const Address where = listener.local_address();
    Socket client(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    const bool done = client.connect(where);  // false while the handshake is in progress
    if (!done) {
        ASSERT_TRUE(client.wait(POLLOUT, Clock::now() + kGuard));
    }
    EXPECT_NO_THROW(client.finish_connect(where));
    EXPECT_EQ(client.peer_address(), where);
    EXPECT_EQ(client.timeout(), Duration::zero());  // the mode is left as it was
    EXPECT_TRUE(test::has_nonblock(client.fd()));
    listener.set_timeout(kGuard);
    Accepted accepted = *listener.accept();
    accepted.socket.send_all("ok");
    ASSERT_TRUE(client.wait(POLLIN, Clock::now() + kGuard));
    char reply[2];
    EXPECT_EQ(client.recv(reply, sizeof reply), 2U);
}

TEST_F(ConnectTest, NonblockingConnectRefusedIsReportedByFinishConnect) {
    const RefusingPort refusing;
    Socket client(AF_INET, SOCK_STREAM);
    client.set_blocking(false);
    try {
        if (!client.connect(refusing.address)) {
            ASSERT_TRUE(client.wait(POLLOUT, Clock::now() + kGuard));
            client.finish_connect(refusing.address);
        }
        FAIL() << "connected to a port nobody listens on";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "connect to " + refusing.address.to_string() + ": Connection refused");
    }
}

// A listener with backlog 0 whose queue is full (Linux queues backlog + 1
// connections, and drops further SYNs while the queue is full): a connect to it
// stays in SYN-SENT, retransmitting after a second, so a shorter timeout fires.
TEST_F(ConnectTest, ConnectTimeoutOnAFullBacklogThrowsTimeoutError) {
    Socket listener(AF_INET, SOCK_STREAM);
    listener.bind(Address::ip("127.0.0.1", 0));
    listener.listen(0);
    const Address where = listener.local_address();
    std::vector<Socket> fillers;
    for (int i = 0; i < 8; ++i) {
        Socket filler(AF_INET, SOCK_STREAM);
        filler.set_timeout(200ms);
        try {
            filler.connect(where);
            fillers.push_back(std::move(filler));
        } catch (const TimeoutError&) {
            break;  // the queue is full
        }
    }
    ASSERT_LT(fillers.size(), 8U) << "the listener never stopped completing handshakes";
    Socket client(AF_INET, SOCK_STREAM);
    client.set_timeout(200ms);
    const auto start = Clock::now();
    try {
        client.connect(where);
        FAIL() << "connected to a listener whose queue is full";
    } catch (const TimeoutError& e) {
        EXPECT_EQ(std::string(e.what()), "connect to " + where.to_string() + ": " +
                                             std::make_error_code(std::errc::timed_out).message());
    }
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 200ms);
    EXPECT_LT(elapsed, 200ms + 1500ms);
    EXPECT_EQ(client.timeout(), Duration(200ms));
}

TEST_F(ConnectTest, ErrorsOnAnUnconnectedSocketNameTheCall) {
    Socket s(AF_INET, SOCK_STREAM);
    try {
        char byte;
        (void)s.recv(&byte, 1);
        FAIL() << "recv on an unconnected socket";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::not_connected);
        EXPECT_EQ(std::string(e.what()).rfind("recv ", 0), 0U) << e.what();
    }
    EXPECT_THROW((void)s.peer_address(), Error);
}

TEST_F(RoundTripTest, Ipv4Loopback) {
    auto [client, server] = test::connected_tcp("127.0.0.1");
    client.send_all("Hi there, server");
    EXPECT_EQ(server.recv_exact(16), "Hi there, server");
    server.send_all("Farewell, client");
    EXPECT_EQ(client.recv_exact(16), "Farewell, client");
}

TEST_F(RoundTripTest, Ipv6Loopback) {
    Socket listener = create_server("::1", "0");
    const Address where = listener.local_address();
    EXPECT_EQ(where.family(), AF_INET6);
    EXPECT_EQ(where.to_string(), "[::1]:" + test::port_of(where));
    EXPECT_NE(listener.get_option<int>(IPPROTO_IPV6, IPV6_V6ONLY), 0);
    ConnectOptions options;
    options.timeout = kGuard;
    Socket client = create_connection("::1", test::port_of(where), options);
    listener.set_timeout(kGuard);
    Accepted accepted = *listener.accept();
    EXPECT_EQ(accepted.peer.family(), AF_INET6);
    EXPECT_EQ(accepted.peer.host(), "::1");
    EXPECT_EQ(accepted.peer, client.local_address());
    accepted.socket.set_timeout(kGuard);
    client.send_all("over IPv6");
    EXPECT_EQ(accepted.socket.recv_exact(9), "over IPv6");
    accepted.socket.send_all("back");
    EXPECT_EQ(client.recv_exact(4), "back");
}

TEST_F(RoundTripTest, UnixStreamInATempDir) {
    const test::TempDir dir;
    const Address path = Address::unix_path(dir.file("stream.sock"));
    Socket listener(AF_UNIX, SOCK_STREAM);
    listener.bind(path);
    listener.listen();
    EXPECT_EQ(listener.local_address().to_string(), dir.file("stream.sock"));
    EXPECT_EQ(listener.local_address(), path);
    Socket client(AF_UNIX, SOCK_STREAM);
    client.set_timeout(kGuard);
    EXPECT_TRUE(client.connect(path));
    listener.set_timeout(kGuard);
    Accepted accepted = *listener.accept();
    EXPECT_EQ(accepted.peer.to_string(), "(unnamed)");
    accepted.socket.set_timeout(kGuard);
    client.send_all("unix stream");
    EXPECT_EQ(accepted.socket.recv_exact(11), "unix stream");
    accepted.socket.send_all("reply");
    EXPECT_EQ(client.recv_exact(5), "reply");
}

TEST_F(RoundTripTest, UnixSeqpacketKeepsMessageBoundaries) {
    const test::TempDir dir;
    const Address path = Address::unix_path(dir.file("seqpacket.sock"));
    Socket listener(AF_UNIX, SOCK_SEQPACKET);
    listener.bind(path);
    listener.listen();
    Socket client(AF_UNIX, SOCK_SEQPACKET);
    client.set_timeout(kGuard);
    client.connect(path);
    listener.set_timeout(kGuard);
    Accepted accepted = *listener.accept();
    accepted.socket.set_timeout(kGuard);
    client.send_all("first");
    client.send_all("second message");
    char buffer[64];
    EXPECT_EQ(accepted.socket.recv(buffer, sizeof buffer), 5U);
    EXPECT_EQ(std::string(buffer, 5), "first");
    EXPECT_EQ(accepted.socket.recv(buffer, sizeof buffer), 14U);
    EXPECT_EQ(std::string(buffer, 14), "second message");
    accepted.socket.send_all("ack");
    EXPECT_EQ(client.recv(buffer, sizeof buffer), 3U);
}

TEST_F(RoundTripTest, UnixDatagramWithTheSenderAddress) {
    const test::TempDir dir;
    const Address server_path = Address::unix_path(dir.file("server.sock"));
    const Address client_path = Address::unix_path(dir.file("client.sock"));
    Socket server(AF_UNIX, SOCK_DGRAM);
    server.bind(server_path);
    server.set_timeout(kGuard);
    Socket client(AF_UNIX, SOCK_DGRAM);
    client.bind(client_path);
    client.set_timeout(kGuard);
    EXPECT_EQ(client.sendto("ping", server_path), 4U);
    char buffer[64];
    const auto got = server.recvfrom(buffer, sizeof buffer);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(std::string(buffer, got->size), "ping");
    EXPECT_EQ(got->from, client_path);
    EXPECT_EQ(got->from.to_string(), dir.file("client.sock"));
    EXPECT_EQ(server.sendto("pong", got->from), 4U);
    const auto reply = client.recvfrom(buffer, sizeof buffer);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(std::string(buffer, reply->size), "pong");
    EXPECT_EQ(reply->from, server_path);
}

TEST_F(RoundTripTest, UnixAbstractNamespace) {
    const std::string name = test::abstract_name("abstract");
    const Address address = Address::unix_path(name);
    Socket listener(AF_UNIX, SOCK_STREAM);
    listener.bind(address);
    listener.listen();
    EXPECT_EQ(listener.local_address().to_string(), name);
    EXPECT_EQ(listener.local_address(), address);
    Socket client(AF_UNIX, SOCK_STREAM);
    client.set_timeout(kGuard);
    client.connect(address);
    EXPECT_EQ(client.peer_address().to_string(), name);
    listener.set_timeout(kGuard);
    Accepted accepted = *listener.accept();
    accepted.socket.set_timeout(kGuard);
    client.send_all("abstract");
    EXPECT_EQ(accepted.socket.recv_exact(8), "abstract");
}

TEST_F(RoundTripTest, SocketpairStream) {
    auto [a, b] = Socket::pair();
    a.set_timeout(kGuard);
    b.set_timeout(kGuard);
    a.send_all("pair");
    EXPECT_EQ(b.recv_exact(4), "pair");
}

void udp_round_trip(const char* host) {
    Socket server = create_server(host, "0", {.socktype = SOCK_DGRAM});
    const Address where = server.local_address();
    ASSERT_NE(where.port(), 0);
    server.set_timeout(kGuard);
    Socket client(where.family(), SOCK_DGRAM);
    client.set_timeout(kGuard);
    EXPECT_EQ(client.sendto("The time is now", where), 15U);
    // The first sendto binds the client to the wildcard address and a free port;
    // the server sees the loopback address the datagram came from.
    const Address client_address = client.local_address();
    EXPECT_NE(client_address.port(), 0);
    const Address expected_from = Address::ip(host, client_address.port());

    char buffer[65536];
    const auto got = server.recvfrom(buffer, sizeof buffer);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(std::string(buffer, got->size), "The time is now");
    EXPECT_EQ(got->from, expected_from) << got->from.to_string();
    const std::string reply = "Your data was " + std::to_string(got->size) + " bytes long";
    EXPECT_EQ(server.sendto(reply, got->from), reply.size());
    const auto back = client.recvfrom(buffer, sizeof buffer);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(std::string(buffer, back->size), "Your data was 15 bytes long");
    EXPECT_EQ(back->from, where);
}

TEST_F(RoundTripTest, UdpSendtoRecvfromGivesTheSenderIpv4) {
    udp_round_trip("127.0.0.1");
}

TEST_F(RoundTripTest, UdpSendtoRecvfromGivesTheSenderIpv6) {
    udp_round_trip("::1");
}

TEST_F(RoundTripTest, UdpDatagramsKeepTheirBoundaries) {
    Socket server = create_server("127.0.0.1", "0", {.socktype = SOCK_DGRAM});
    server.set_timeout(kGuard);
    Socket client(AF_INET, SOCK_DGRAM);
    client.sendto("one", server.local_address());
    client.sendto("", server.local_address());
    client.sendto("three", server.local_address());
    char buffer[16];
    EXPECT_EQ(server.recvfrom(buffer, sizeof buffer)->size, 3U);
    EXPECT_EQ(server.recvfrom(buffer, sizeof buffer)->size, 0U);  // an empty datagram, not EOF
    EXPECT_EQ(server.recvfrom(buffer, 2)->size, 2U);  // truncated, the rest is discarded
    EXPECT_EQ(std::string(buffer, 2), "th");
}

TEST_F(RoundTripTest, ConnectedUdpSocketOnlyReceivesFromItsPeer) {
    Socket server = create_server("127.0.0.1", "0", {.socktype = SOCK_DGRAM});
    Socket stranger(AF_INET, SOCK_DGRAM);
    Socket client(AF_INET, SOCK_DGRAM);
    client.set_timeout(kGuard);
    client.connect(server.local_address());
    EXPECT_EQ(client.peer_address(), server.local_address());
    // The kernel drops the stranger's datagram on arrival; only the peer's comes through.
    stranger.sendto("not for you", client.local_address());
    server.sendto("reply", client.local_address());
    char buffer[32];
    const auto got = client.recvfrom(buffer, sizeof buffer);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(std::string(buffer, got->size), "reply");
    EXPECT_EQ(got->from, server.local_address());
    client.set_blocking(false);
    EXPECT_EQ(client.recv(buffer, sizeof buffer), std::nullopt);
}

TEST_F(ShutdownTest, ShutdownWriteGivesPeerEofWhileItCanStillSendBack) {
    auto [client, server] = test::connected_tcp();
    client.send_all("request");
    client.shutdown(Shutdown::write);
    // The server reads to end of stream, then answers on the same connection.
    std::string request;
    char buffer[64];
    for (;;) {
        const std::size_t n = *server.recv(buffer, sizeof buffer);
        if (n == 0) break;
        request.append(buffer, n);
    }
    EXPECT_EQ(request, "request");
    server.send_all("response after EOF");
    server.shutdown(Shutdown::write);
    EXPECT_EQ(client.recv_exact(18), "response after EOF");
    EXPECT_EQ(client.recv(buffer, sizeof buffer), 0U);
    // Writing after shutdown(write) is an error, not a signal.
    try {
        client.send_all("late");
        FAIL() << "sent after shutdown(write)";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::broken_pipe) << e.what();
    }
}

TEST_F(ShutdownTest, ShutdownBothOnSocketpair) {
    auto [a, b] = Socket::pair();
    a.set_timeout(kGuard);
    b.set_timeout(kGuard);
    a.shutdown(Shutdown::both);
    char byte;
    EXPECT_EQ(b.recv(&byte, 1), 0U);
    EXPECT_EQ(a.recv(&byte, 1), 0U);
}

TEST_F(ShutdownTest, ShutdownOfAnUnconnectedSocketThrows) {
    Socket s(AF_INET, SOCK_STREAM);
    try {
        s.shutdown(Shutdown::read);
        FAIL() << "shut down an unconnected socket";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::not_connected);
        EXPECT_EQ(std::string(e.what()).rfind("shutdown ", 0), 0U) << e.what();
    }
}

}  // namespace
}  // namespace ferry
