// Buffer: framing room in front, one-call reads, no memory while idle.
#include "ferry/buffer.hpp"

#include <string>

#include "ferry/byte_order.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry::test {
namespace {

class BufferTest : public FdLeakCheck {};

TEST_F(BufferTest, AnIdleBufferHoldsNoMemory) {
    Buffer b;
    EXPECT_EQ(b.capacity(), 0u);
    b.append("hello");
    b.consume(5);
    b.release();
    EXPECT_EQ(b.capacity(), 0u);
}

// data() before the first byte (and after release()) must not add the prepend
// room to the null pointer of an empty vector (UBSan: "applying non-zero offset 8
// to null pointer"): it points at a zero byte instead, which can even be read.
TEST_F(BufferTest, AnEmptyBufferWithoutStoragePointsAtAZeroByte) {
    Buffer b;
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(*b.data(), '\0');
    EXPECT_EQ(b.view(), "");
    b.append("x");
    b.consume(1);
    b.release();
    EXPECT_EQ(b.capacity(), 0u);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(*b.data(), '\0');
    EXPECT_EQ(b.view(), "");
}

TEST_F(BufferTest, AppendConsumeKeepsOrder) {
    Buffer b;
    b.append("abc");
    b.append("def");
    b.consume(2);
    EXPECT_EQ(b.view(), "cdef");
    b.consume(100);
    EXPECT_TRUE(b.empty());
}

TEST_F(BufferTest, PrependPutsALengthPrefixInFrontWithoutMovingTheMessage) {
    Buffer b;
    b.append("payload");
    const char* before = b.data();
    char header[4];
    store_be32(header, 7);
    b.prepend(header, 4);
    EXPECT_EQ(b.data() + 4, before);
    EXPECT_EQ(load_be32(b.data()), 7u);
    EXPECT_EQ(b.view().substr(4), "payload");
}

TEST_F(BufferTest, PrependLargerThanTheRoomStillWorks) {
    Buffer b;
    b.append("tail");
    const std::string head(100, 'h');
    b.prepend(head.data(), head.size());
    EXPECT_EQ(b.view(), head + "tail");
}

TEST_F(BufferTest, OneReadDrainsMoreThanTheBufferHadRoomFor) {
    auto [a, z] = Socket::pair();
    const std::string data(100 * 1024, 'q');
    z.set_blocking(false);
    std::size_t sent = 0;
    while (sent < data.size()) {
        const auto n = z.send(data.data() + sent, data.size() - sent);
        if (!n) break;
        sent += *n;
    }
    a.set_blocking(false);
    Buffer b;
    const auto n = b.read_from(a.fd());
    ASSERT_TRUE(n);
    // The buffer starts empty: everything beyond its room went through the stack spill.
    EXPECT_GT(*n, 0u);
    EXPECT_EQ(b.size(), *n);
    EXPECT_EQ(b.view(), std::string(*n, 'q'));
}

TEST_F(BufferTest, ReadWouldBlockIsAValue) {
    auto [a, z] = Socket::pair();
    a.set_blocking(false);
    Buffer b;
    EXPECT_FALSE(b.read_from(a.fd()));
}

TEST_F(BufferTest, ReadAtEndOfStreamReturnsZero) {
    auto [a, z] = Socket::pair();
    z.close();
    Buffer b;
    EXPECT_EQ(b.read_from(a.fd()), std::optional<std::size_t>(0));
}

TEST_F(BufferTest, WriteConsumesWhatWasSent) {
    auto [a, z] = Socket::pair();
    Buffer b;
    b.append("0123456789");
    EXPECT_EQ(b.write_to(a.fd()), std::optional<std::size_t>(10));
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(z.recv_exact(10), "0123456789");
}

}  // namespace
}  // namespace ferry::test
