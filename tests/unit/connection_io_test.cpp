// ConnectionIo and Outbox: a byte stream read as it comes and written in as
// few sends as possible; messages read one at a time, each reply one message.
#include "ferry/server/connection_io.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ferry/error.hpp"
#include "ferry/server/message_io.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using OutboxTest = test::FdLeakCheck;
using ConnectionIoTest = test::FdLeakCheck;

std::pair<Socket, Socket> pair_of(int type) {
    auto pair = Socket::pair(type);
    pair.first.set_timeout(test::kGuard);
    pair.second.set_timeout(test::kGuard);
    return pair;
}

std::string next_message(Socket& s, std::size_t room = 1 << 17) {
    std::vector<char> area(room);
    const IoResult n = recv_message(s.fd(), area.data(), area.size());
    EXPECT_TRUE(n.has_value());
    return std::string(area.data(), n.value_or(0));
}

TEST_F(OutboxTest, EachSealedMessageGoesOutInASendOfItsOwn) {
    auto [server, client] = pair_of(SOCK_SEQPACKET);
    Outbox out;
    out.bytes().append("ab");
    out.end_message();
    out.bytes().append("cde");
    out.end_message();
    EXPECT_EQ(out.next(), "ab");
    EXPECT_EQ(out.write_to(server.fd()), IoResult(5));  // both, one send each
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(next_message(client), "ab");
    EXPECT_EQ(next_message(client), "cde");
}

TEST_F(OutboxTest, MessagesTheSocketHasNoRoomForWaitTheirTurnWhole) {
    auto [server, client] = Socket::pair(SOCK_SEQPACKET | SOCK_NONBLOCK);
    Outbox out;
    const std::string message(50000, 'w');
    for (int i = 0; i < 20; ++i) {  // 1 MB: more than the send buffer holds
        out.bytes().append(message);
        out.end_message();
    }
    std::size_t received = 0;
    std::vector<char> area(60000);
    while (!out.empty()) {
        (void)out.write_to(server.fd());
        while (const IoResult n = recv_message(client.fd(), area.data(), area.size())) {
            ASSERT_EQ(*n, message.size());  // never merged, never split
            ++received;
        }
    }
    while (const IoResult n = recv_message(client.fd(), area.data(), area.size())) {
        ASSERT_EQ(*n, message.size());
        ++received;
    }
    EXPECT_EQ(received, 20u);
}

TEST_F(OutboxTest, BytesNeverSealedGoOutAsOneStream) {
    auto [server, client] = pair_of(SOCK_STREAM);
    Outbox out;
    out.bytes().append("ab");
    out.bytes().append("cde");
    EXPECT_EQ(out.next(), "abcde");
    EXPECT_EQ(out.write_to(server.fd()), IoResult(5));
    EXPECT_EQ(client.recv_exact(5), "abcde");
}

TEST_F(OutboxTest, SealingNothingMakesNoMessage) {
    Outbox out;
    out.end_message();
    out.bytes().append("x");
    out.end_message();
    out.end_message();
    EXPECT_EQ(out.next(), "x");
    out.sent(1);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(out.next(), "");
}

TEST_F(OutboxTest, PartOfAMessageSentIsAnErrorNotTwoMessages) {
    Outbox out;
    out.bytes().append("whole");
    out.end_message();
    try {
        out.sent(2);
        FAIL() << "a message went out in parts";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::message_size);
    }
}

TEST_F(OutboxTest, AMessageLargerThanTheSendBufferIsAnError) {
    auto [server, client] = pair_of(SOCK_SEQPACKET);
    server.set_option<int>(SOL_SOCKET, SO_SNDBUF, 4096);  // the kernel doubles it
    Outbox out;
    out.bytes().append(std::string(100000, 'z'));
    out.end_message();
    EXPECT_THROW(out.write_to(server.fd()), Error);
}

TEST_F(OutboxTest, ReleaseGivesTheMemoryBackOnceEmpty) {
    Outbox out;
    out.bytes().append("reply");
    out.end_message();
    out.release();  // not empty: kept
    EXPECT_EQ(out.next(), "reply");
    out.sent(5);
    out.release();
    EXPECT_EQ(out.bytes().capacity(), 0u);
}

TEST_F(ConnectionIoTest, MessagesAreReadOneAtATimeAndEachReplyIsOneMessage) {
    auto [server, client] = pair_of(SOCK_SEQPACKET);
    const EchoHandler echo(Framing{}, 1 << 20);
    ConnectionIo io(65536);
    io.prepare(server.fd());
    const std::vector<std::string> sent = {"a", std::string(100, 'b'), std::string(4096, 'c'),
                                           std::string(65536, 'd')};
    for (const std::string& m : sent)
        client.send(m);
    Buffer in;
    Outbox out;
    for (const std::string& m : sent) {
        EXPECT_EQ(io.read(server.fd(), in), IoResult(m.size()));
        EXPECT_EQ(in.view(), m);  // one message, never two merged
        EXPECT_EQ(io.handle(echo, in, out), 1u);
        EXPECT_TRUE(in.empty());
    }
    while (!out.empty())
        ASSERT_TRUE(out.write_to(server.fd()).has_value());
    for (const std::string& m : sent)
        EXPECT_EQ(next_message(client), m);
}

TEST_F(ConnectionIoTest, AMessageOverTheMaximumIsFrameTooLarge) {
    auto [server, client] = pair_of(SOCK_SEQPACKET);
    ConnectionIo io(1000);
    client.send(std::string(1001, 'x'));
    Buffer in;
    try {
        (void)io.read(server.fd(), in);
        FAIL() << "a 1001-byte message was read with a maximum of 1000";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), make_error_code(Errc::frame_too_large));
        EXPECT_NE(std::string(e.what()).find("message of 1001 bytes (room for 1000)"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_TRUE(in.empty());
}

TEST_F(ConnectionIoTest, AMessageThatIsNotWholeUnderTheFramingIsABadFrame) {
    const EchoHandler lines(Framing::parse("line"), 1000);
    ConnectionIo io(1000);
    Buffer in;
    Outbox out;
    in.append("two\nlines\n");
    EXPECT_EQ(io.handle(lines, in, out), 2u);
    EXPECT_EQ(out.next(), "two\nlines\n");  // one reply message for one message
    in.append("no newline");
    try {
        (void)io.handle(lines, in, out);
        FAIL() << "a message that ends inside a line was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), make_error_code(Errc::bad_frame));
    }
}

TEST_F(ConnectionIoTest, AStreamIsReadAsItComesAndHandedOnAsBytes) {
    auto [server, client] = pair_of(SOCK_STREAM);
    const EchoHandler echo(Framing{}, 1 << 20);
    ConnectionIo io;
    EXPECT_FALSE(io.messages());
    client.send_all("one");
    client.send_all("two");
    Buffer in;
    Outbox out;
    // A stream read may take both sends at once: that is what a stream is.
    std::string got;
    while (got.size() < 6) {
        const IoResult n = io.read(server.fd(), in);
        ASSERT_TRUE(n && *n > 0);
        got += std::string(in.view());
        io.handle(echo, in, out);
    }
    EXPECT_EQ(got, "onetwo");
    EXPECT_EQ(out.next(), "onetwo");
}

TEST_F(ConnectionIoTest, OnlyAShortStreamReadMeansTheSocketIsDrained) {
    EXPECT_TRUE(ConnectionIo().drained_by(10));
    EXPECT_FALSE(ConnectionIo().drained_by(Buffer::kReadSpill));
    EXPECT_FALSE(ConnectionIo(100).drained_by(10));
}

TEST_F(ConnectionIoTest, AReceiveCompletedElsewhereIsCheckedAgainstTheMaximum) {
    ConnectionIo io(10);
    Buffer in;
    const std::string eleven(11, 'e');
    EXPECT_THROW(io.received(eleven.data(), 11, in), Error);
    EXPECT_TRUE(in.empty());
    io.received(eleven.data(), 10, in);
    EXPECT_EQ(in.size(), 10u);
}

TEST_F(ConnectionIoTest, NoMessagesOfZeroBytes) {
    EXPECT_THROW(ConnectionIo(0), Error);
}

}  // namespace
}  // namespace ferry
