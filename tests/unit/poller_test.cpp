// Poller: the same readiness answers from select, poll and epoll.
#include "ferry/poller.hpp"

#include <unistd.h>

#include "ferry/error.hpp"
#include "ferry/time.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/loopback.hpp"

namespace ferry::test {
namespace {

class PollerTest : public FdLeakCheck, public ::testing::WithParamInterface<Backend> {
  protected:
    std::uint32_t ready_bits(Poller& p, int fd, Duration timeout = std::chrono::milliseconds(0)) {
        for (const ReadyEvent& e : p.wait(timeout))
            if (e.fd == fd) return e.events;
        return 0;
    }
};

TEST_P(PollerTest, ReportsReadableOnlyOnceDataArrives) {
    auto [a, b] = Socket::pair();
    auto poller = Poller::create(GetParam());
    poller->add(a.fd(), events::readable);
    EXPECT_EQ(ready_bits(*poller, a.fd()), 0u);
    b.send_all("x");
    EXPECT_TRUE(ready_bits(*poller, a.fd(), kGuard) & events::readable);
}

TEST_P(PollerTest, LevelTriggeredReportsUnreadDataAgain) {
    auto [a, b] = Socket::pair();
    auto poller = Poller::create(GetParam());
    poller->add(a.fd(), events::readable);
    b.send_all("xy");
    EXPECT_TRUE(ready_bits(*poller, a.fd(), kGuard) & events::readable);
    char c;
    a.recv(&c, 1);
    EXPECT_TRUE(ready_bits(*poller, a.fd(), kGuard) & events::readable);
}

TEST_P(PollerTest, ModifyToWritableReportsAnEmptySendBuffer) {
    auto [a, b] = Socket::pair();
    auto poller = Poller::create(GetParam());
    poller->add(a.fd(), events::readable);
    EXPECT_EQ(ready_bits(*poller, a.fd()), 0u);
    poller->modify(a.fd(), events::readable | events::writable);
    EXPECT_TRUE(ready_bits(*poller, a.fd(), kGuard) & events::writable);
}

TEST_P(PollerTest, RemovedDescriptorIsNoLongerReported) {
    auto [a, b] = Socket::pair();
    auto poller = Poller::create(GetParam());
    poller->add(a.fd(), events::readable);
    b.send_all("x");
    poller->remove(a.fd());
    EXPECT_EQ(ready_bits(*poller, a.fd()), 0u);
}

TEST_P(PollerTest, PeerCloseMakesTheSocketReadable) {
    auto [a, b] = Socket::pair();
    auto poller = Poller::create(GetParam());
    poller->add(a.fd(), events::readable);
    b.close();
    // poll and epoll also say "hangup"; select only says readable. Either way a read follows.
    EXPECT_TRUE(ready_bits(*poller, a.fd(), kGuard) & (events::readable | events::hangup));
}

TEST_P(PollerTest, TimeoutReturnsNothingAfterWaiting) {
    auto [a, b] = Socket::pair();
    auto poller = Poller::create(GetParam());
    poller->add(a.fd(), events::readable);
    const auto start = Clock::now();
    EXPECT_TRUE(poller->wait(std::chrono::milliseconds(50)).empty());
    EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(50));
}

TEST_P(PollerTest, AddingTheSameDescriptorTwiceIsAnError) {
    auto [a, b] = Socket::pair();
    auto poller = Poller::create(GetParam());
    poller->add(a.fd(), events::readable);
    EXPECT_THROW(poller->add(a.fd(), events::readable), Error);
}

/// Waits (at most kGuard) until `fd` shows one of `events` to poll(2) itself.
bool kernel_shows(int fd, short events) {
    pollfd p{fd, events, 0};
    return poll_until({&p, 1}, Clock::now() + kGuard) > 0;
}

TEST_P(PollerTest, UrgentDataIsNeverReportedNorAnError) {
    auto [client, server] = connected_tcp();
    auto poller = Poller::create(GetParam());
    poller->add(server.fd(), events::readable);
    ASSERT_EQ(client.send(std::string_view("!"), MSG_OOB), 1u);
    ASSERT_TRUE(kernel_shows(server.fd(), POLLPRI)) << "the urgent byte never arrived";
    // A lone urgent byte: nothing to read in the stream, and no error; a
    // consumer that were told anything here would be woken forever.
    EXPECT_EQ(ready_bits(*poller, server.fd()), 0u);
    client.send_all("data");
    ASSERT_TRUE(kernel_shows(server.fd(), POLLIN));
    const std::uint32_t bits = ready_bits(*poller, server.fd());
    EXPECT_TRUE(bits & events::readable);
    EXPECT_FALSE(bits & events::error);
}

TEST_P(PollerTest, APendingErrorWakesTheConsumerAndTheNextCallReturnsIt) {
    auto [client, server] = connected_tcp();
    auto poller = Poller::create(GetParam());
    poller->add(client.fd(), events::readable);
    server.set_option(SOL_SOCKET, SO_LINGER, linger{1, 0});
    server.close();  // a reset, not an orderly close
    ASSERT_TRUE(kernel_shows(client.fd(), POLLERR)) << "the reset never arrived";
    const std::uint32_t bits = ready_bits(*poller, client.fd());
    if (GetParam() == Backend::select) {
        // select(2) has no error set: it says readable, and never error.
        EXPECT_EQ(bits, events::readable);
    } else {
        EXPECT_TRUE(bits & events::error) << bits;
    }
    char c;
    try {
        client.recv(&c, 1);
        ADD_FAILURE() << "recv after a reset succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_reset) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(EveryBackend, PollerTest,
                         ::testing::Values(Backend::select, Backend::poll, Backend::epoll),
                         [](const auto& param_info) {
                             return std::string(backend_name(param_info.param));
                         });

class SelectLimitTest : public FdLeakCheck {};

TEST_F(SelectLimitTest, DescriptorBeyondFdSetSizeIsRefusedNotCorrupted) {
    auto [a, b] = Socket::pair();
    Fd high(::fcntl(a.fd(), F_DUPFD_CLOEXEC, FD_SETSIZE + 10));
    ASSERT_TRUE(high) << "could not raise a descriptor above FD_SETSIZE";
    auto poller = Poller::create(Backend::select);
    try {
        poller->add(high.get(), events::readable);
        FAIL() << "select accepted descriptor " << high.get();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("FD_SETSIZE"), std::string::npos) << e.what();
    }
}

TEST(BackendNames, RoundTrip) {
    for (Backend b : {Backend::select, Backend::poll, Backend::epoll})
        EXPECT_EQ(parse_backend(backend_name(b)), b);
    EXPECT_FALSE(parse_backend("kqueue"));
}

}  // namespace
}  // namespace ferry::test
