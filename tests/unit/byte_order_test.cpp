// Byte-order helpers: network order at any alignment.
#include "ferry/byte_order.hpp"

#include <gtest/gtest.h>

#include <cstdint>

#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using ByteOrderTest = test::FdLeakCheck;

TEST_F(ByteOrderTest, StoresMostSignificantByteFirst) {
    unsigned char b[8] = {};
    store_be16(b, 0x0102);
    EXPECT_EQ(b[0], 0x01);
    EXPECT_EQ(b[1], 0x02);
    store_be32(b, 0x01020304);
    EXPECT_EQ(b[0], 0x01);
    EXPECT_EQ(b[3], 0x04);
    store_be64(b, 0x0102030405060708ULL);
    for (int i = 0; i < 8; ++i)
        EXPECT_EQ(b[i], i + 1);
}

TEST_F(ByteOrderTest, LoadsRoundTripAtOddAlignment) {
    unsigned char b[16] = {};
    store_be16(b + 1, 0xBEEF);
    EXPECT_EQ(load_be16(b + 1), 0xBEEF);
    store_be32(b + 3, 0xDEADBEEF);
    EXPECT_EQ(load_be32(b + 3), 0xDEADBEEFU);
    store_be64(b + 5, 0x0123456789ABCDEFULL);
    EXPECT_EQ(load_be64(b + 5), 0x0123456789ABCDEFULL);
    const unsigned char wire[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    EXPECT_EQ(load_be32(wire), UINT32_MAX);
}

}  // namespace
}  // namespace ferry
