// recv_message and fit_send_buffer: whole messages on SOCK_SEQPACKET, a
// longer one an error and never a shortened message, the send buffer raised
// for large messages and never lowered.
#include "ferry/server/message_io.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "ferry/error.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using RecvMessageTest = test::FdLeakCheck;
using FitSendBufferTest = test::FdLeakCheck;

std::pair<Socket, Socket> seqpacket_pair() {
    auto pair = Socket::pair(SOCK_SEQPACKET);
    pair.first.set_timeout(test::kGuard);
    pair.second.set_timeout(test::kGuard);
    return pair;
}

std::string received(int fd, std::size_t room) {
    std::vector<char> area(room);
    const IoResult n = recv_message(fd, area.data(), area.size());
    EXPECT_TRUE(n.has_value());
    return std::string(area.data(), n.value_or(0));
}

TEST_F(RecvMessageTest, MessagesSentBackToBackAreReadOneAtATime) {
    auto [a, b] = seqpacket_pair();
    a.send("one");
    a.send("two, longer");
    a.send("3");
    EXPECT_EQ(received(b.fd(), 100), "one");
    EXPECT_EQ(received(b.fd(), 100), "two, longer");
    EXPECT_EQ(received(b.fd(), 100), "3");
}

TEST_F(RecvMessageTest, AMessageThatFillsTheRoomExactlyIsWhole) {
    auto [a, b] = seqpacket_pair();
    const std::string message(1000, 'm');
    a.send(message);
    EXPECT_EQ(received(b.fd(), 1000), message);
}

TEST_F(RecvMessageTest, ALongerMessageIsAnErrorSayingHowLongNotAShortenedMessage) {
    auto [a, b] = seqpacket_pair();
    a.send(std::string(2000, 'x'));
    a.send("next");
    std::vector<char> area(1000);
    try {
        (void)recv_message(b.fd(), area.data(), area.size(), "recv from app.sock");
        FAIL() << "a 2000-byte message was taken into 1000 bytes of room";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), make_error_code(Errc::frame_too_large));
        EXPECT_NE(std::string(e.what()).find("recv from app.sock: message of 2000 bytes (room "
                                             "for 1000)"),
                  std::string::npos)
            << e.what();
    }
    // The long message was consumed: the next one is read whole.
    EXPECT_EQ(received(b.fd(), 1000), "next");
}

TEST_F(RecvMessageTest, EndOfStreamAfterTheLastMessageIsZero) {
    auto [a, b] = seqpacket_pair();
    a.send("last");
    a.shutdown(Shutdown::write);
    EXPECT_EQ(received(b.fd(), 100), "last");
    std::vector<char> area(100);
    EXPECT_EQ(recv_message(b.fd(), area.data(), area.size()), IoResult(0));
}

TEST_F(RecvMessageTest, NothingWaitingOnANonBlockingSocketIsEmpty) {
    auto [a, b] = Socket::pair(SOCK_SEQPACKET | SOCK_NONBLOCK);
    std::vector<char> area(100);
    EXPECT_FALSE(recv_message(b.fd(), area.data(), area.size()).has_value());
}

TEST_F(RecvMessageTest, EveryByteValueArrivesUnchanged) {
    auto [a, b] = seqpacket_pair();
    std::string message;
    for (int i = 0; i < 256; ++i)
        message.push_back(static_cast<char>(i));
    a.send(message);
    EXPECT_EQ(received(b.fd(), 256), message);
}

TEST_F(RecvMessageTest, AFailureNamesTheContext) {
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    Fd read_end(ends[0]);
    Fd write_end(ends[1]);
    char byte = 0;
    try {
        (void)recv_message(read_end.get(), &byte, 1, "recv from a pipe");
        FAIL() << "recvmsg on a pipe succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::not_a_socket);
        EXPECT_EQ(std::string(e.what()).rfind("recv from a pipe: ", 0), 0u) << e.what();
    }
}

int send_buffer(const Socket& s) {
    return s.get_option<int>(SOL_SOCKET, SO_SNDBUF);
}

TEST_F(FitSendBufferTest, ASmallMessageLeavesTheBufferAsItWas) {
    auto [a, b] = seqpacket_pair();
    const int before = send_buffer(a);
    fit_send_buffer(a.fd(), 100);
    EXPECT_EQ(send_buffer(a), before);
}

TEST_F(FitSendBufferTest, NeverLowersTheBuffer) {
    auto [a, b] = seqpacket_pair();
    a.set_option<int>(SOL_SOCKET, SO_SNDBUF, 200000);  // the kernel doubles it
    const int before = send_buffer(a);
    fit_send_buffer(a.fd(), 1000);
    EXPECT_EQ(send_buffer(a), before);
}

TEST_F(FitSendBufferTest, AMessageLargerThanTheDefaultBufferCanBeSentAfterwards) {
    auto [a, b] = seqpacket_pair();
    // Above the usual default (212992), below twice the usual cap (2 x wmem_max).
    const std::size_t size = 300000;
    std::size_t wmem_max = 0;
    std::ifstream("/proc/sys/net/core/wmem_max") >> wmem_max;
    if (wmem_max * 2 < size + 100) GTEST_SKIP() << "net.core.wmem_max is only " << wmem_max;
    a.set_option<int>(SOL_SOCKET, SO_SNDBUF, 100000);
    EXPECT_THROW(a.send(std::string(size, 'b')), Error);  // EMSGSIZE: too large for the buffer
    fit_send_buffer(a.fd(), size);
    EXPECT_GE(static_cast<std::size_t>(send_buffer(a)), size);
    const std::string big(size, 'B');
    a.send(big);
    EXPECT_EQ(received(b.fd(), size), big);
}

}  // namespace
}  // namespace ferry
