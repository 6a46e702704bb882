// ICMP echo pieces: the RFC 1071 checksum, the request's layout, and a real round trip to
// 127.0.0.1 over whichever ICMP socket this process may open.
#include <gtest/gtest.h>
#include <poll.h>

#include <string>

#include "ferry/error.hpp"
#include "ferry/icmp.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry::icmp {
namespace {

class IcmpTest : public test::FdLeakCheck {};

TEST_F(IcmpTest, ChecksumOfRfc1071sExample) {
    // RFC 1071, 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (ones' complement), so 220d.
    const unsigned char words[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(checksum(words, sizeof words), 0x220d);
}

TEST_F(IcmpTest, ChecksumPadsAnOddLastByte) {
    const unsigned char odd[] = {0x01, 0x02, 0x03};
    const unsigned char padded[] = {0x01, 0x02, 0x03, 0x00};
    EXPECT_EQ(checksum(odd, sizeof odd), checksum(padded, sizeof padded));
}

TEST_F(IcmpTest, AnIpv4RequestCarriesItsHeaderAndAChecksumThatSumsToZero) {
    const std::string packet = echo_request(AF_INET, 0x1234, 7, "abc");
    ASSERT_EQ(packet.size(), 11u);
    EXPECT_EQ(static_cast<unsigned char>(packet[0]), 8);  // echo request
    EXPECT_EQ(packet[1], 0);
    EXPECT_EQ(static_cast<unsigned char>(packet[4]), 0x12);
    EXPECT_EQ(static_cast<unsigned char>(packet[5]), 0x34);
    EXPECT_EQ(packet[7], 7);
    EXPECT_EQ(packet.substr(8), "abc");
    EXPECT_EQ(checksum(packet.data(), packet.size()), 0);
}

TEST_F(IcmpTest, AnIcmpv6RequestLeavesTheChecksumToTheKernel) {
    const std::string packet = echo_request(AF_INET6, 1, 1, "");
    EXPECT_EQ(static_cast<unsigned char>(packet[0]), 128);
    EXPECT_EQ(packet[2], 0);
    EXPECT_EQ(packet[3], 0);
}

TEST_F(IcmpTest, EchoToLoopbackComesBackWithItsSequenceAndPayload) {
    Mode mode = Mode::datagram;
    Socket sock;
    try {
        sock = open_socket(AF_INET, std::nullopt, mode);
    } catch (const Error& e) {
        GTEST_SKIP() << e.what();
    }
    const Address to = Address::ip("127.0.0.1", 0);
    sock.sendto(echo_request(AF_INET, 0x4242, 9, "ferry unit"), to);
    for (;;) {
        pollfd p{sock.fd(), POLLIN, 0};
        ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no reply within 5 s";
        const auto got = receive_reply(sock, AF_INET, mode);
        if (!got || got->kind != Received::Kind::reply) continue;  // a raw socket sees requests too
        if (mode == Mode::raw && got->reply.id != 0x4242) continue;  // someone else's
        EXPECT_EQ(got->reply.sequence, 9);
        EXPECT_EQ(got->reply.payload, "ferry unit");
        EXPECT_EQ(got->reply.icmp_size, 18u);
        EXPECT_EQ(got->reply.from.host(), "127.0.0.1");
        ASSERT_TRUE(got->reply.ttl.has_value());
        EXPECT_GT(*got->reply.ttl, 0);
        break;
    }
}

}  // namespace
}  // namespace ferry::icmp
