// The overloads of accept, connect, send and recv that set a std::error_code
// instead of throwing: on real loopback sockets, each succeeds as the throwing
// one does and reports each failure (refused, would block, reset, timed out)
// as the errno value, never as an exception.
#include <gtest/gtest.h>
#include <poll.h>

#include <string>
#include <system_error>

#include "ferry/create.hpp"
#include "ferry/socket.hpp"
#include "ferry/time.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/loopback.hpp"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using test::kGuard;

using ErrorCodeTest = test::FdLeakCheck;

/// A listener on 127.0.0.1 port 0, with a timeout so that a bug cannot hang the test.
Socket loopback_listener() {
    Socket listener = create_server("127.0.0.1", "0");
    listener.set_timeout(kGuard);
    return listener;
}

/// An address where nothing listens: a port the kernel gave a socket now closed.
Address closed_port() {
    Socket placeholder(AF_INET, SOCK_STREAM);
    placeholder.bind(Address::ip("127.0.0.1", 0));
    return placeholder.local_address();
}

/// Whether `ec` is what "would block" must compare equal to, under both names.
void expect_would_block(const std::error_code& ec) {
    EXPECT_EQ(ec, std::errc::operation_would_block) << ec.message();
    EXPECT_EQ(ec, std::errc::resource_unavailable_try_again) << ec.message();
    EXPECT_EQ(&ec.category(), &std::system_category());
}

TEST_F(ErrorCodeTest, ConnectSucceedsAndClearsTheCode) {
    Socket listener = loopback_listener();
    Socket client(AF_INET, SOCK_STREAM);
    client.set_timeout(kGuard);
    std::error_code ec = std::make_error_code(std::errc::io_error);  // cleared on success
    EXPECT_TRUE(client.connect(listener.local_address(), ec));
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(client.peer_address(), listener.local_address());
}

TEST_F(ErrorCodeTest, ARefusedConnectIsACodeNotAnException) {
    const Address nobody = closed_port();
    for (const auto timeout : {std::optional<Duration>(), std::optional<Duration>(kGuard)}) {
        Socket client(AF_INET, SOCK_STREAM);
        client.set_timeout(timeout);
        std::error_code ec;
        EXPECT_FALSE(client.connect(nobody, ec));
        EXPECT_EQ(ec, std::errc::connection_refused) << ec.message();
        EXPECT_EQ(&ec.category(), &std::system_category());
    }
}

TEST_F(ErrorCodeTest, ANonBlockingConnectIsInProgressThenFinishes) {
    Socket listener = loopback_listener();
    Socket client(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    std::error_code ec;
    if (!client.connect(listener.local_address(), ec)) {
        ASSERT_EQ(ec, std::errc::operation_in_progress) << ec.message();
        ASSERT_TRUE(client.wait(POLLOUT, Clock::now() + kGuard));
        client.finish_connect(ec);
    }
    EXPECT_FALSE(ec) << ec.message();
}

TEST_F(ErrorCodeTest, AcceptTakesAPendingConnection) {
    Socket listener = loopback_listener();
    Socket client(AF_INET, SOCK_STREAM);
    client.connect(listener.local_address());
    std::error_code ec = std::make_error_code(std::errc::io_error);
    auto accepted = listener.accept(SOCK_NONBLOCK, ec);
    ASSERT_TRUE(accepted) << ec.message();
    EXPECT_FALSE(ec);
    EXPECT_EQ(accepted->peer, client.local_address());
    EXPECT_EQ(accepted->socket.timeout(), Duration::zero());  // SOCK_NONBLOCK kept
}

TEST_F(ErrorCodeTest, AcceptWithNothingPendingOnANonBlockingListenerWouldBlock) {
    Socket listener = loopback_listener();
    listener.set_blocking(false);
    std::error_code ec;
    EXPECT_FALSE(listener.accept(ec));
    expect_would_block(ec);
}

TEST_F(ErrorCodeTest, AcceptPastItsTimeoutIsTimedOut) {
    Socket listener = loopback_listener();
    listener.set_timeout(20ms);
    std::error_code ec;
    EXPECT_FALSE(listener.accept(ec));
    EXPECT_EQ(ec, std::errc::timed_out) << ec.message();
}

TEST_F(ErrorCodeTest, SendAndRecvMoveBytes) {
    auto [client, server] = test::connected_tcp();
    std::error_code ec = std::make_error_code(std::errc::io_error);
    EXPECT_EQ(client.send("ping", ec), 4u);
    EXPECT_FALSE(ec) << ec.message();
    char buffer[8];
    ec = std::make_error_code(std::errc::io_error);
    EXPECT_EQ(server.recv(buffer, 4, MSG_WAITALL, ec), 4u);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(std::string(buffer, 4), "ping");
}

TEST_F(ErrorCodeTest, RecvOfEndOfStreamIsZeroWithNoError) {
    auto [client, server] = test::connected_tcp();
    client.shutdown(Shutdown::write);
    char c;
    std::error_code ec;
    EXPECT_EQ(server.recv(&c, 1, ec), 0u);
    EXPECT_FALSE(ec) << ec.message();
}

TEST_F(ErrorCodeTest, RecvWithNothingToReadOnANonBlockingSocketWouldBlock) {
    auto [client, server] = test::connected_tcp();
    server.set_blocking(false);
    char c;
    std::error_code ec;
    EXPECT_EQ(server.recv(&c, 1, ec), 0u);
    expect_would_block(ec);
}

TEST_F(ErrorCodeTest, RecvPastItsTimeoutIsTimedOut) {
    auto [client, server] = test::connected_tcp();
    server.set_timeout(20ms);
    char c;
    std::error_code ec;
    EXPECT_EQ(server.recv(&c, 1, ec), 0u);
    EXPECT_EQ(ec, std::errc::timed_out) << ec.message();
}

TEST_F(ErrorCodeTest, SendToAResetPeerIsACodeNeverASignal) {
    auto [client, server] = test::connected_tcp();
    server.set_option(SOL_SOCKET, SO_LINGER, linger{1, 0});
    server.close();  // a reset
    pollfd p{client.fd(), POLLOUT, 0};
    ASSERT_EQ(poll_until({&p, 1}, Clock::now() + kGuard), 1);
    ASSERT_TRUE(p.revents & (POLLERR | POLLHUP)) << "the reset never arrived";
    std::error_code ec;
    EXPECT_EQ(client.send("after the reset", ec), 0u);
    EXPECT_TRUE(ec == std::errc::connection_reset || ec == std::errc::broken_pipe) << ec.message();
    // And again, now that the kernel has handed the pending error over: still a code.
    EXPECT_EQ(client.send("again", ec), 0u);
    EXPECT_EQ(ec, std::errc::broken_pipe) << ec.message();
}

}  // namespace
}  // namespace ferry
