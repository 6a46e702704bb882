// Socket I/O under the three modes: whole-message helpers over peers that
// trickle, stop or reset, deadlines for multi-call operations, would-block as a
// value, and errors (never SIGPIPE) from dead peers.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "ferry/socket.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/loopback.hpp"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using test::kGuard;

using RecvExactTest = test::FdLeakCheck;
using TimeoutTest = test::FdLeakCheck;
using NonBlockingTest = test::FdLeakCheck;
using SendAllTest = test::FdLeakCheck;
using DeadPeerTest = test::FdLeakCheck;
using InterruptTest = test::FdLeakCheck;

// The slack a deadline may overrun by on a loaded two-core machine.
constexpr auto kSlack = 1500ms;

// A peer that sends one byte every `interval` from its own thread, until the
// object goes away. The interval is the behaviour under test (a slow peer), not
// a way to wait for something: stopping wakes the thread at once.
class Trickler {
  public:
    Trickler(Socket& socket, std::chrono::milliseconds interval)
        : thread_([this, &socket, interval] { run(socket, interval); }) {}
    ~Trickler() {
        {
            const std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }
    Trickler(const Trickler&) = delete;
    Trickler& operator=(const Trickler&) = delete;

    [[nodiscard]] int sent() const { return sent_.load(); }

  private:
    void run(Socket& socket, std::chrono::milliseconds interval) {
        std::unique_lock lock(mutex_);
        while (!stop_) {
            try {
                socket.send_all("x");
            } catch (const Error&) {
                return;  // the reader went away
            }
            ++sent_;
            wake_.wait_for(lock, interval, [this] { return stop_; });
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::atomic<int> sent_{0};
    std::thread thread_;
};

// Bytes waiting in `socket`'s receive queue (SIOCINQ).
int queued(const Socket& socket) {
    int n = 0;
    return ::ioctl(socket.fd(), FIONREAD, &n) == 0 ? n : -1;
}

TEST_F(RecvExactTest, AssemblesAMessageSentAsOneBytePackets) {
    // A seqpacket recv never returns more than one packet, so a peer sending
    // sixteen 1-byte packets forces recv_exact through sixteen recv calls.
    auto [reader, writer] = Socket::pair(SOCK_SEQPACKET);
    reader.set_timeout(kGuard);
    const std::string message = "Hi there, server";
    for (const char c : message)
        writer.send_all(&c, 1);
    EXPECT_EQ(reader.recv_exact(message.size()), message);
}

TEST_F(RecvExactTest, AssemblesAMessageFromATcpPeerSendingOneByteAtATime) {
    auto [client, server] = test::connected_tcp();
    client.set_no_delay(true);
    const std::string message = "Hi there, server";
    std::thread peer([&client = client, &server = server, &message] {
        for (const char c : message) {
            client.send_all(&c, 1);
            // Let the reader take this byte before the next is sent, so that
            // the segments are not merged (bounded: the reader may be done).
            const auto until = Clock::now() + kGuard;
            while (queued(server) > 0 && Clock::now() < until)
                std::this_thread::yield();
        }
    });
    std::string got;
    EXPECT_NO_THROW(got = server.recv_exact(message.size()));
    peer.join();
    EXPECT_EQ(got, message);
}

TEST_F(RecvExactTest, EofMidMessageThrowsShortReadError) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all("Hi th");
    writer.close();
    try {
        (void)reader.recv_exact(16);
        FAIL() << "recv_exact returned after 5 of 16 bytes";
    } catch (const ShortReadError& e) {
        EXPECT_EQ(e.expected(), 16U);
        EXPECT_EQ(e.received(), 5U);
        EXPECT_EQ(e.code(), Errc::eof);
        EXPECT_NE(std::string(e.what()).find(
                      "was expecting 16 bytes but only received 5 bytes before the socket closed"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(RecvExactTest, EofMidMessageOverTcpNamesThePeer) {
    auto [client, server] = test::connected_tcp();
    const Address client_address = client.local_address();
    client.send_all("Hi th");
    client.close();
    try {
        (void)server.recv_exact(16);
        FAIL() << "recv_exact returned after 5 of 16 bytes";
    } catch (const ShortReadError& e) {
        EXPECT_EQ(e.expected(), 16U);
        EXPECT_EQ(e.received(), 5U);
        EXPECT_EQ(
            std::string(e.what()),
            "recv from " + client_address.to_string() +
                ": was expecting 16 bytes but only received 5 bytes before the socket closed");
    }
}

TEST_F(RecvExactTest, EofBeforeAnyByteIsAShortReadOfZero) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.close();
    try {
        (void)reader.recv_exact(4);
        FAIL() << "recv_exact returned at end of stream";
    } catch (const ShortReadError& e) {
        EXPECT_EQ(e.expected(), 4U);
        EXPECT_EQ(e.received(), 0U);
    }
}

TEST_F(RecvExactTest, ZeroBytesReturnsAtOnce) {
    auto [reader, writer] = Socket::pair();
    EXPECT_EQ(reader.recv_exact(0), "");
}

TEST_F(RecvExactTest, PlainRecvReturnsZeroAtEof) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all("ab");
    writer.close();
    char buffer[8];
    EXPECT_EQ(reader.recv(buffer, sizeof buffer), 2U);
    EXPECT_EQ(reader.recv(buffer, sizeof buffer), 0U);
    EXPECT_EQ(reader.recv(buffer, sizeof buffer), 0U);
}

TEST_F(RecvExactTest, LeavesTheRestOfTheStreamForTheNextCall) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all("0123456789");
    EXPECT_EQ(reader.recv_exact(4), "0123");
    EXPECT_EQ(reader.recv_exact(6), "456789");
}

TEST_F(TimeoutTest, RecvExactTimeoutIsOneDeadlineForAPeerThatTrickles) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(300ms);
    const Trickler trickler(writer, 100ms);  // one byte per 100 ms: 16 bytes would take 1.6 s
    const auto start = Clock::now();
    try {
        (void)reader.recv_exact(16);
        FAIL() << "recv_exact finished although the peer never sent 16 bytes in time";
    } catch (const TimeoutError& e) {
        EXPECT_EQ(e.code(), std::errc::timed_out);
    }
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LT(elapsed, 300ms + kSlack);
    EXPECT_EQ(reader.timeout(), Duration(300ms));  // the mode survives the timeout
}

TEST_F(TimeoutTest, RecvOnAnIdleSocketTimesOut) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(200ms);
    char byte;
    const auto start = Clock::now();
    try {
        (void)reader.recv(&byte, 1);
        FAIL() << "recv returned on an idle socket";
    } catch (const TimeoutError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("recv from", 0), 0U) << e.what();
    }
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 200ms);
    EXPECT_LT(elapsed, 200ms + kSlack);
}

TEST_F(TimeoutTest, TimeoutErrorIsAnError) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(10ms);
    char byte;
    EXPECT_THROW((void)reader.recv(&byte, 1), Error);
}

TEST_F(TimeoutTest, DataArrivingBeforeTheTimeoutIsReturned) {
    auto [client, server] = test::connected_tcp();
    server.set_timeout(kGuard);
    std::thread peer([&client = client] { client.send_all("late but in time"); });
    EXPECT_EQ(server.recv_exact(16), "late but in time");
    peer.join();
}

TEST_F(TimeoutTest, RecvBeforeAPastDeadlineWithNoDataTimesOut) {
    auto [reader, writer] = Socket::pair();
    char buffer[4];
    EXPECT_THROW((void)reader.recv_before(buffer, sizeof buffer, Clock::now() - 1ms), TimeoutError);
    writer.send_all("data");
    // Data already there is returned whatever the deadline.
    EXPECT_EQ(reader.recv_before(buffer, sizeof buffer, Clock::now() - 1ms), 4U);
}

TEST_F(TimeoutTest, RecvBeforeWaitsEvenInNonBlockingMode) {
    auto [reader, writer] = Socket::pair(SOCK_STREAM | SOCK_NONBLOCK);
    char buffer[4];
    const auto start = Clock::now();
    EXPECT_THROW((void)reader.recv_before(buffer, sizeof buffer, Clock::now() + 100ms),
                 TimeoutError);
    EXPECT_GE(Clock::now() - start, 100ms);
}

TEST_F(TimeoutTest, UserSetReceiveTimeoutOnABlockingSocketIsATimeoutError) {
    auto [reader, writer] = Socket::pair();
    const timeval limit{0, 100'000};
    reader.set_option(SOL_SOCKET, SO_RCVTIMEO, limit);
    char byte;
    EXPECT_THROW((void)reader.recv(&byte, 1), TimeoutError);
}

TEST_F(TimeoutTest, SendAllTimeoutIsOneDeadlineWhenThePeerNeverReads) {
    auto [writer, reader] = Socket::pair();
    writer.set_timeout(300ms);
    const std::string big(16 << 20, 'x');  // far more than the socket buffers hold
    const auto start = Clock::now();
    EXPECT_THROW(writer.send_all(big), TimeoutError);
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LT(elapsed, 300ms + kSlack);
}

TEST_F(NonBlockingTest, RecvWouldBlockReturnsEmptyNotAnException) {
    auto [reader, writer] = Socket::pair(SOCK_STREAM | SOCK_NONBLOCK);
    char buffer[8];
    const IoResult r = reader.recv(buffer, sizeof buffer);
    EXPECT_FALSE(r.has_value());
    writer.send_all("hi");
    EXPECT_EQ(reader.recv(buffer, sizeof buffer), 2U);
    EXPECT_EQ(reader.recv(buffer, sizeof buffer), std::nullopt);
}

TEST_F(NonBlockingTest, RecvWouldBlockAfterSetBlockingFalse) {
    auto [client, server] = test::connected_tcp();
    server.set_blocking(false);
    char buffer[8];
    EXPECT_EQ(server.recv(buffer, sizeof buffer), std::nullopt);
}

TEST_F(NonBlockingTest, RecvfromWouldBlockReturnsNullopt) {
    Socket udp = create_server("127.0.0.1", "0", {.socktype = SOCK_DGRAM});
    udp.set_blocking(false);
    char buffer[8];
    EXPECT_EQ(udp.recvfrom(buffer, sizeof buffer), std::nullopt);
}

TEST_F(NonBlockingTest, SendWouldBlockReturnsEmptyWhenTheBufferIsFull) {
    auto [writer, reader] = Socket::pair(SOCK_STREAM | SOCK_NONBLOCK);
    const std::string chunk(64 * 1024, 'x');
    std::size_t total = 0;
    bool blocked = false;
    for (int i = 0; i < 10'000 && !blocked; ++i) {
        const IoResult n = writer.send(chunk);
        if (n) {
            EXPECT_GT(*n, 0U);
            total += *n;
        } else {
            blocked = true;
        }
    }
    EXPECT_TRUE(blocked) << "never filled the buffer after " << total << " bytes";
    EXPECT_GT(total, 0U);
}

TEST_F(SendAllTest, NonBlockingSendAllWaitsForRoomRatherThanGivingUp) {
    auto [writer, reader] = Socket::pair(SOCK_STREAM | SOCK_NONBLOCK);
    reader.set_timeout(kGuard);
    std::string message(4 << 20, '\0');
    for (std::size_t i = 0; i < message.size(); ++i)
        message[i] = static_cast<char>(i * 31 % 251);
    std::string got;
    std::thread peer(
        [&reader = reader, &got, &message] { got = reader.recv_exact(message.size()); });
    writer.send_all(message);
    peer.join();
    EXPECT_TRUE(got == message);
    EXPECT_EQ(writer.timeout(), Duration::zero());
}

TEST_F(SendAllTest, LargeMessageOverTcpArrivesIntact) {
    auto [client, server] = test::connected_tcp();
    std::string message(8 << 20, '\0');
    for (std::size_t i = 0; i < message.size(); ++i)
        message[i] = static_cast<char>(i * 7 % 253);
    std::string got;
    std::thread peer(
        [&server = server, &got, &message] { got = server.recv_exact(message.size()); });
    client.send_all(message);
    peer.join();
    EXPECT_EQ(got.size(), message.size());
    EXPECT_TRUE(got == message);
}

TEST_F(DeadPeerTest, WritingToAResetPeerThrowsInsteadOfSigpipe) {
    // The test must not ignore SIGPIPE itself: the library's MSG_NOSIGNAL is what
    // keeps this process alive.
    struct sigaction current {};
    ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
    ASSERT_EQ(current.sa_handler, SIG_DFL);

    auto [client, server] = test::connected_tcp();
    server.set_option(SOL_SOCKET, SO_LINGER, linger{1, 0});
    server.close();  // linger {1, 0}: close sends RST instead of FIN
    ASSERT_TRUE(client.wait(POLLIN, Clock::now() + kGuard)) << "the RST never arrived";
    const std::string data(1 << 20, 'x');
    for (int attempt = 0; attempt < 2; ++attempt) {
        try {
            client.send_all(data);
            FAIL() << "send_all to a reset peer succeeded";
        } catch (const TimeoutError& e) {
            FAIL() << "timed out instead of failing: " << e.what();
        } catch (const Error& e) {
            // The first call reports the reset, later ones the broken pipe.
            EXPECT_TRUE(e.code() == std::errc::connection_reset ||
                        e.code() == std::errc::broken_pipe)
                << e.what();
            // Once reset the socket has no peer address: the text names the local one.
            EXPECT_EQ(std::string(e.what()).rfind("send ", 0), 0U) << e.what();
        }
    }
    try {
        (void)client.send("x");
        FAIL() << "send to a reset peer succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::broken_pipe) << e.what();
        EXPECT_NE(std::string(e.what()).find("Broken pipe"), std::string::npos) << e.what();
    }
}

TEST_F(DeadPeerTest, ReadingFromAResetPeerThrowsConnectionReset) {
    auto [client, server] = test::connected_tcp();
    server.set_option(SOL_SOCKET, SO_LINGER, linger{1, 0});
    server.close();
    char buffer[8];
    try {
        (void)client.recv(buffer, sizeof buffer);
        FAIL() << "recv from a reset peer succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_reset) << e.what();
        EXPECT_NE(std::string(e.what()).find("Connection reset by peer"), std::string::npos)
            << e.what();
    }
}

TEST_F(DeadPeerTest, WritingToAClosedSocketpairPeerIsBrokenPipeNotSigpipe) {
    auto [writer, reader] = Socket::pair();
    reader.close();
    try {
        writer.send_all("anyone there?");
        FAIL() << "send_all to a closed peer succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::broken_pipe) << e.what();
    }
    try {
        (void)writer.send("x");
        FAIL() << "send to a closed peer succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::broken_pipe) << e.what();
    }
}

TEST_F(DeadPeerTest, ConnectedUdpSocketGetsConnectionRefusedAsAnError) {
    // A UDP port with nobody on it: bind port 0, read it back, close it. The
    // kernel answers a datagram to it with ICMP port unreachable, which a
    // connected UDP socket reports on its next call.
    Address closed;
    {
        Socket probe(AF_INET, SOCK_DGRAM);
        probe.bind(Address::ip("127.0.0.1", 0));
        closed = probe.local_address();
    }
    Socket client(AF_INET, SOCK_DGRAM);
    client.set_timeout(kGuard);
    client.connect(closed);
    EXPECT_EQ(client.send("This is another message"), 23U);
    char buffer[64];
    try {
        (void)client.recv(buffer, sizeof buffer);
        FAIL() << "recv on a refused UDP socket returned data";
    } catch (const TimeoutError& e) {
        FAIL() << "the ICMP error never arrived: " << e.what();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::connection_refused);
        EXPECT_EQ(std::string(e.what()),
                  "recv from " + closed.to_string() + ": Connection refused");
    }
    // The error is reported once and is not fatal: the socket still works.
    client.set_blocking(false);
    EXPECT_EQ(client.recv(buffer, sizeof buffer), std::nullopt);
}

TEST_F(DeadPeerTest, SendtoErrorNamesTheDestination) {
    Socket udp(AF_INET, SOCK_DGRAM);
    const Address v6 = Address::ip("::1", 9);
    try {
        (void)udp.sendto("x", v6);
        FAIL() << "sent an IPv6 address through an IPv4 socket";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("sendto [::1]:9: ", 0), 0U) << e.what();
    }
}

// Counts SIGUSR1 deliveries; installed without SA_RESTART, so that a blocked
// recv(2) or poll(2) really returns EINTR. An atomic, not a volatile
// sig_atomic_t: the peer thread reads it too (ThreadSanitizer saw the race),
// and a lock-free atomic is safe in a signal handler.
std::atomic<int> g_signals{0};  // NOLINT: a signal handler can only reach a global
static_assert(std::atomic<int>::is_always_lock_free);
void count_signal(int) {
    ++g_signals;
}

// Whether thread `tid` of this process is asleep in the kernel (state S).
bool is_sleeping(pid_t tid) {
    std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'S';
}

// Interrupts `reader` (blocked in recv_exact in the calling thread) with a
// signal once it sleeps, then, once it sleeps again, lets the peer send.
void interrupted_recv_exact(Socket& reader, Socket& writer) {
    struct sigaction action {};
    struct sigaction previous {};
    action.sa_handler = count_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    ASSERT_EQ(::sigaction(SIGUSR1, &action, &previous), 0);
    g_signals = 0;
    const pid_t tid = ::gettid();
    const pthread_t self = ::pthread_self();
    std::thread peer([&] {
        const auto until = Clock::now() + kGuard;
        while (!is_sleeping(tid) && Clock::now() < until)
            std::this_thread::yield();
        ::pthread_kill(self, SIGUSR1);
        while (g_signals == 0 && Clock::now() < until)
            std::this_thread::yield();
        while (!is_sleeping(tid) && Clock::now() < until)
            std::this_thread::yield();
        writer.send_all("after the signal");
    });
    std::string got;
    EXPECT_NO_THROW(got = reader.recv_exact(16));
    peer.join();
    ::sigaction(SIGUSR1, &previous, nullptr);
    EXPECT_EQ(got, "after the signal");
    EXPECT_EQ(g_signals, 1);
}

TEST_F(InterruptTest, BlockingRecvExactIsRetriedAfterEintr) {
    auto [reader, writer] = Socket::pair();
    interrupted_recv_exact(reader, writer);
}

TEST_F(InterruptTest, RecvExactWithATimeoutIsRetriedAfterEintr) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    interrupted_recv_exact(reader, writer);
}

}  // namespace
}  // namespace ferry
