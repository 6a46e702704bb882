// Batched datagrams on real sockets: recvmmsg keeps each datagram's size and
// sender and flags truncation; sendmmsg sends a batch, in place after a
// receive, and reports how far it got when the kernel stops half way.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cerrno>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "ferry/datagram_batch.hpp"
#include "ferry/error.hpp"
#include "ferry/socket.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using test::kGuard;
using DatagramBatchTest = test::FdLeakCheck;

Socket udp_on_loopback() {
    Socket s(AF_INET, SOCK_DGRAM);
    s.bind(Address::ip("127.0.0.1", 0));
    s.set_timeout(kGuard);
    return s;
}

/// A Unix datagram socket bound to an abstract name of this process: a send
/// to it is queued before sendto returns, so a receive right after sees it all.
Socket unix_datagram(const std::string& name) {
    Socket s(AF_UNIX, SOCK_DGRAM);
    s.bind(Address::unix_path("@ferry-batch-test-" + std::to_string(::getpid()) + "-" + name));
    s.set_timeout(kGuard);
    return s;
}

TEST_F(DatagramBatchTest, ReceivesEveryQueuedDatagramInOneCallWithItsSizeAndSender) {
    Socket receiver = unix_datagram("receiver");
    Socket a = unix_datagram("a");
    Socket b = unix_datagram("b");
    const Address to = receiver.local_address();
    a.sendto("one", to);
    b.sendto("", to);  // an empty datagram is a datagram
    a.sendto(std::string(1000, 'x'), to);
    b.sendto("four!", to);

    DatagramBatch batch(16, 2048);
    ASSERT_EQ(receiver.recvmmsg(batch), 4u);
    ASSERT_EQ(batch.size(), 4u);
    EXPECT_FALSE(batch.full());
    EXPECT_EQ(batch.datagram(0), "one");
    EXPECT_EQ(batch.datagram(1), "");
    EXPECT_EQ(batch.datagram(2), std::string(1000, 'x'));
    EXPECT_EQ(batch.datagram(3), "four!");
    EXPECT_EQ(batch.address(0).to_string(), a.local_address().to_string());
    EXPECT_EQ(batch.address(1).to_string(), b.local_address().to_string());
    EXPECT_EQ(batch.address(2).to_string(), a.local_address().to_string());
    EXPECT_EQ(batch.address(3).to_string(), b.local_address().to_string());
    for (std::size_t i = 0; i < batch.size(); ++i)
        EXPECT_FALSE(batch.truncated(i)) << i;
}

TEST_F(DatagramBatchTest, AFullBatchSaysMoreMayWaitAndTheRestComesNext) {
    Socket receiver = unix_datagram("receiver");
    Socket sender = unix_datagram("sender");
    for (int i = 0; i < 5; ++i)
        sender.sendto(std::to_string(i), receiver.local_address());
    DatagramBatch batch(3, 16);
    ASSERT_EQ(receiver.recvmmsg(batch), 3u);
    EXPECT_TRUE(batch.full());
    EXPECT_EQ(batch.datagram(2), "2");
    ASSERT_EQ(receiver.recvmmsg(batch), 2u);
    EXPECT_FALSE(batch.full());
    EXPECT_EQ(batch.datagram(0), "3");
    EXPECT_EQ(batch.datagram(1), "4");
}

TEST_F(DatagramBatchTest, UdpDatagramsFromTwoSendersKeepTheirSizesAndSources) {
    Socket receiver = udp_on_loopback();
    Socket a = udp_on_loopback();
    Socket b = udp_on_loopback();
    const Address to = receiver.local_address();
    const std::vector<std::pair<Socket*, std::string>> sent = {
        {&a, "alpha"}, {&b, std::string(1400, 'b')}, {&a, ""}, {&b, "delta"}};
    for (const auto& [from, text] : sent)
        from->sendto(text, to);

    // Loopback delivery may lag the send under load: receive until all have come, each
    // call taking at least one (it waits for the first, never for a full batch).
    DatagramBatch batch(8, 65536);
    std::vector<std::pair<std::string, std::string>> got;  // sender, bytes
    int calls = 0;
    while (got.size() < sent.size()) {
        const auto n = receiver.recvmmsg(batch);
        ASSERT_TRUE(n.has_value());
        ASSERT_GE(*n, 1u);
        ++calls;
        for (std::size_t i = 0; i < *n; ++i)
            got.emplace_back(batch.address(i).to_string(), std::string(batch.datagram(i)));
    }
    EXPECT_LE(calls, 4);
    ASSERT_EQ(got.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        EXPECT_EQ(got[i].first, sent[i].first->local_address().to_string()) << i;
        EXPECT_EQ(got[i].second, sent[i].second) << i;
    }
}

// A receive rewrites only the slots earlier calls used: after short datagrams, a
// lone one and a send through the batch, every slot takes a full-size datagram again.
TEST_F(DatagramBatchTest, SlotsUsedByEarlierCallsReceiveWholeDatagramsAgain) {
    Socket receiver = unix_datagram("receiver");
    Socket a = unix_datagram("a");
    Socket b = unix_datagram("b");
    const Address to = receiver.local_address();
    DatagramBatch batch(4, 64);

    for (const char* text : {"1", "22", "333"})
        a.sendto(text, to);
    ASSERT_EQ(receiver.recvmmsg(batch), 3u);
    EXPECT_EQ(batch.datagram(2), "333");
    b.sendto("x", to);
    ASSERT_EQ(receiver.recvmmsg(batch), 1u);
    EXPECT_EQ(batch.address(0).to_string(), b.local_address().to_string());
    batch.clear();
    batch.add("to a", 4, &to);  // slot 0 names its destination, slot 1 names none
    batch.add("to b", 4, nullptr);

    const std::string whole(64, 'w');
    for (Socket* from : {&b, &a, &b, &a})
        from->sendto(whole, to);
    ASSERT_EQ(receiver.recvmmsg(batch), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(batch.datagram(i), whole) << i;
        EXPECT_FALSE(batch.truncated(i)) << i;
        EXPECT_EQ(batch.address(i).to_string(), (i % 2 == 0 ? b : a).local_address().to_string())
            << i;
    }
}

TEST_F(DatagramBatchTest, ADatagramLongerThanItsSlotIsFlaggedTruncated) {
    Socket receiver = unix_datagram("receiver");
    Socket sender = unix_datagram("sender");
    sender.sendto("short", receiver.local_address());
    sender.sendto("twenty bytes exactly", receiver.local_address());
    DatagramBatch batch(4, 8);
    ASSERT_EQ(receiver.recvmmsg(batch), 2u);
    EXPECT_FALSE(batch.truncated(0));
    EXPECT_EQ(batch.datagram(0), "short");
    EXPECT_TRUE(batch.truncated(1));
    EXPECT_EQ(batch.datagram(1), "twenty b");  // what the slot held
}

TEST_F(DatagramBatchTest, NothingWaitingIsEmptyInNonBlockingMode) {
    Socket receiver = udp_on_loopback();
    receiver.set_blocking(false);
    DatagramBatch batch(4, 64);
    EXPECT_FALSE(receiver.recvmmsg(batch).has_value());
    EXPECT_TRUE(batch.empty());
}

TEST_F(DatagramBatchTest, AReceivedBatchEchoesInPlaceToEachSender) {
    Socket server = unix_datagram("server");
    Socket a = unix_datagram("a");
    Socket b = unix_datagram("b");
    a.sendto("from a", server.local_address());
    b.sendto("from b", server.local_address());
    a.sendto("again a", server.local_address());
    DatagramBatch batch(8, 64);
    ASSERT_EQ(server.recvmmsg(batch), 3u);
    batch.erase(2);  // a server may drop some before answering the rest
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(server.sendmmsg(batch), 2u);
    char buffer[64];
    EXPECT_EQ(std::string(buffer, *a.recv(buffer, sizeof buffer)), "from a");
    EXPECT_EQ(std::string(buffer, *b.recv(buffer, sizeof buffer)), "from b");
    a.set_blocking(false);
    EXPECT_FALSE(a.recv(buffer, sizeof buffer).has_value());  // the erased one was not sent
}

TEST_F(DatagramBatchTest, EraseMovesTheLaterDatagramsUpWithTheirSenders) {
    Socket server = unix_datagram("server");
    Socket a = unix_datagram("a");
    Socket b = unix_datagram("b");
    a.sendto("0", server.local_address());
    b.sendto("1", server.local_address());
    a.sendto("2", server.local_address());
    DatagramBatch batch(4, 16);
    ASSERT_EQ(server.recvmmsg(batch), 3u);
    batch.erase(0);
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(batch.datagram(0), "1");
    EXPECT_EQ(batch.address(0).to_string(), b.local_address().to_string());
    EXPECT_EQ(batch.datagram(1), "2");
    EXPECT_EQ(batch.address(1).to_string(), a.local_address().to_string());
}

TEST_F(DatagramBatchTest, AFailingDatagramEndsTheCallAndTheRestGoesOnTheNext) {
    Socket receiver = udp_on_loopback();
    Socket sender = udp_on_loopback();
    const Address to = receiver.local_address();
    const std::string too_large(70000, 'x');  // over UDP's 65507 bytes on IPv4: EMSGSIZE
    DatagramBatch batch(4, 0);
    batch.add("first", 5, &to);
    batch.add("second", 6, &to);
    batch.add(too_large.data(), too_large.size(), &to);
    batch.add("fourth", 6, &to);

    EXPECT_EQ(sender.sendmmsg(batch), 2u);  // partial: the kernel stopped before the third
    try {
        (void)sender.sendmmsg(batch, 2);
        FAIL() << "the oversized datagram was sent";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::error_code(EMSGSIZE, std::system_category()));
        EXPECT_NE(std::string(e.what()).find("sendmmsg to " + to.to_string()), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(sender.sendmmsg(batch, 3), 1u);
    char buffer[64];
    for (const char* expected : {"first", "second", "fourth"})
        EXPECT_EQ(std::string(buffer, *receiver.recv(buffer, sizeof buffer)), expected);
}

TEST_F(DatagramBatchTest, AFullReceiverStopsTheBatchAndTheRestWouldBlock) {
    // A Unix datagram receiver queues at most net.unix.max_dgram_qlen datagrams.
    std::size_t queue_limit = 0;
    std::ifstream("/proc/sys/net/unix/max_dgram_qlen") >> queue_limit;
    if (queue_limit == 0 || queue_limit >= 1000) GTEST_SKIP() << "queue limit " << queue_limit;
    Socket receiver = unix_datagram("receiver");
    Socket sender = unix_datagram("sender");
    sender.set_blocking(false);
    const Address to = receiver.local_address();
    DatagramBatch batch(1024, 0);
    for (std::size_t i = 0; i < batch.capacity(); ++i)
        batch.add("x", 1, &to);

    const IoResult sent = sender.sendmmsg(batch);
    ASSERT_TRUE(sent.has_value());
    EXPECT_GT(*sent, 0u);
    EXPECT_LT(*sent, batch.capacity());
    EXPECT_FALSE(sender.sendmmsg(batch, *sent).has_value());  // the next one would block

    DatagramBatch drain(1024, 16);
    EXPECT_EQ(receiver.recvmmsg(drain), *sent);
    const IoResult more = sender.sendmmsg(batch, *sent);
    ASSERT_TRUE(more.has_value());
    EXPECT_GT(*more, 0u);
}

TEST_F(DatagramBatchTest, SizesOutsideWhatOneCallTakesAreRefused) {
    EXPECT_THROW(DatagramBatch(0, 64), std::invalid_argument);
    EXPECT_THROW(DatagramBatch(1025, 64), std::invalid_argument);
    DatagramBatch batch(1, 0);
    batch.add("a", 1);
    EXPECT_TRUE(batch.full());
    EXPECT_THROW(batch.add("b", 1), std::length_error);
    batch.clear();
    EXPECT_TRUE(batch.empty());
}

}  // namespace
}  // namespace ferry
