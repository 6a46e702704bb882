// Acceptor and LoopAcceptor on real loopback listeners, with the descriptor table really
// full (a lowered soft RLIMIT_NOFILE, filled with dup): every waiting client is told (end of
// stream), accepting pauses instead of spinning, resumes on a close or after the pause, and
// the refusals are reported once, with their count.
#include "ferry/acceptor.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "ferry/event_loop.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using AcceptorTest = test::FdLeakCheck;
using LoopAcceptorTest = test::FdLeakCheck;

/// The soft RLIMIT_NOFILE lowered to `soft` for the life of the object.
class DescriptorLimit {
  public:
    explicit DescriptorLimit(rlim_t soft) {
        if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) throw_errno("getrlimit");
        rlimit lowered = saved_;
        lowered.rlim_cur = soft;
        if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) throw_errno("setrlimit");
    }
    ~DescriptorLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
    DescriptorLimit(const DescriptorLimit&) = delete;
    DescriptorLimit& operator=(const DescriptorLimit&) = delete;

  private:
    rlimit saved_{};
};

/// Takes every descriptor left under the limit (dup of stdin's number, or of
/// whatever is open), and gives them back on destruction. While it lives the
/// test calls nothing but the code under test: with the table full even the
/// sanitizers cannot open what they need.
class TableFiller {
  public:
    TableFiller() {
        held_.reserve(kMax);
        const int source = ::dup(2);
        if (source < 0) return;
        held_.emplace_back(source);
        while (held_.size() < kMax) {
            const int fd = ::dup(source);
            if (fd < 0) break;
            held_.emplace_back(fd);
        }
    }
    [[nodiscard]] std::size_t held() const { return held_.size(); }

  private:
    static constexpr std::size_t kMax = 4096;
    std::vector<Fd> held_;
};

/// The two lowest free descriptor numbers.
std::pair<int, int> next_two_descriptors() {
    Fd a(::dup(2));
    Fd b(::dup(2));
    return {a.get(), b.get()};
}

/// Descriptors left free above the next connection in the reserve tests: the
/// test goes on with the lowered limit, and the sanitizers' own checks may
/// need a pipe (two descriptors) at any time.
constexpr int kFreeAboveIt = 2;

/// Sets up a reserve test: an acceptor made next takes the lowest free number
/// for its spare and its first connection the next one, returned; with the
/// soft limit lowered to that number + kFreeAboveIt + 1, the reserve set here
/// leaves that connection 4 numbers short of its room.
int reserve_just_below_the_next_connection(AcceptorOptions& options) {
    options.reserve = 4 + kFreeAboveIt;
    return next_two_descriptors().second;
}

Socket listening() {
    Socket listener = create_server("127.0.0.1", "0");
    listener.set_blocking(false);
    return listener;
}

Socket connected_client(const Socket& listener) {
    Socket client(AF_INET, SOCK_STREAM);
    client.set_timeout(test::kGuard);
    client.connect(listener.local_address());  // completes in the backlog, accepted or not
    return client;
}

/// True once the server side closed the connection unserved: end of stream
/// (or a reset), within the guard time.
bool told_closed(Socket& client) {
    char byte = 0;
    try {
        return client.recv(&byte, 1) == IoResult(0);
    } catch (const TimeoutError&) {
        return false;
    } catch (const Error&) {
        return true;  // reset
    }
}

TEST_F(AcceptorTest, AcceptsAConnectionWithItsPeerAndNothingWhenNoneWaits) {
    Socket listener = listening();
    Acceptor acceptor(listener);
    EXPECT_FALSE(acceptor.accept());
    Socket client = connected_client(listener);
    std::optional<Accepted> got = acceptor.accept();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->peer.to_string(), client.local_address().to_string());
    EXPECT_TRUE(test::has_nonblock(got->socket.fd()));
    EXPECT_TRUE(test::has_cloexec(got->socket.fd()));
    EXPECT_FALSE(acceptor.paused());
    EXPECT_EQ(acceptor.refused(), 0u);
}

TEST_F(AcceptorTest, OutOfDescriptorsEveryWaitingClientIsToldAndAcceptingPauses) {
    Socket listener = listening();
    std::vector<Socket> clients;
    for (int i = 0; i < 3; ++i)
        clients.push_back(connected_client(listener));
    std::vector<std::string> warnings;
    AcceptorOptions options;
    options.reserve = 0;  // the table itself runs out, not the reserve
    options.on_warning = [&warnings](std::string_view line) { warnings.emplace_back(line); };
    Acceptor acceptor(listener, options);

    std::optional<Accepted> got;
    std::size_t held = 0;
    {
        DescriptorLimit limit(static_cast<rlim_t>(next_two_descriptors().second) + 8);
        TableFiller full;
        held = full.held();
        got = acceptor.accept();
    }
    ASSERT_GT(held, 0u);
    EXPECT_FALSE(got);
    EXPECT_TRUE(acceptor.paused());
    EXPECT_EQ(acceptor.refused(), 3u);
    for (Socket& c : clients)
        EXPECT_TRUE(told_closed(c)) << "a client left waiting in a backlog that does not move";
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0],
              "out of descriptors: 3 connections refused in the last second (Too many open files)");

    // Paused: nothing is taken, not even a connection that is waiting.
    Socket late = connected_client(listener);
    EXPECT_FALSE(acceptor.accept());
    acceptor.connection_closed();  // a descriptor came free
    EXPECT_FALSE(acceptor.paused());
    EXPECT_TRUE(acceptor.accept());
}

TEST_F(AcceptorTest, APauseEndsByItselfAfterItsTime) {
    Socket listener = listening();
    Socket client = connected_client(listener);
    AcceptorOptions options;
    options.reserve = 0;
    options.pause = 100ms;
    Acceptor acceptor(listener, options);
    const auto before = Clock::now();
    {
        DescriptorLimit limit(static_cast<rlim_t>(next_two_descriptors().second) + 8);
        TableFiller full;
        acceptor.accept();
    }
    ASSERT_TRUE(acceptor.paused());
    const std::optional<Clock::time_point> resume = acceptor.next_deadline();
    ASSERT_TRUE(resume);
    EXPECT_GE(*resume, before + 100ms);
    EXPECT_LE(*resume, Clock::now() + 100ms);
    acceptor.tick(*resume - 1ms);
    EXPECT_TRUE(acceptor.paused());
    acceptor.tick(*resume);
    EXPECT_FALSE(acceptor.paused());
    EXPECT_FALSE(acceptor.next_deadline());
}

TEST_F(AcceptorTest, AConnectionIntoTheReserveIsClosedWithEveryOneWaiting) {
    Socket listener = listening();
    std::vector<Socket> clients;
    for (int i = 0; i < 2; ++i)
        clients.push_back(connected_client(listener));
    std::vector<std::string> warnings;
    AcceptorOptions options;
    options.on_warning = [&warnings](std::string_view line) { warnings.emplace_back(line); };
    const int second = reserve_just_below_the_next_connection(options);
    std::optional<DescriptorLimit> limit;
    limit.emplace(static_cast<rlim_t>(second) + kFreeAboveIt + 1);
    Acceptor acceptor(listener, options);
    EXPECT_EQ(acceptor.highest_descriptor(), second - 4);
    EXPECT_FALSE(acceptor.accept());
    limit.reset();

    EXPECT_TRUE(acceptor.paused());
    EXPECT_EQ(acceptor.refused(), 2u);
    for (Socket& c : clients)
        EXPECT_TRUE(told_closed(c));
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("2 connections refused"), std::string::npos) << warnings[0];
    EXPECT_NE(warnings[0].find("keeping the last 6 descriptors"), std::string::npos) << warnings[0];
}

TEST_F(AcceptorTest, RefusalsAreReportedAtMostOncePerPeriodWithTheirCount) {
    Socket listener = listening();
    std::vector<std::string> warnings;
    AcceptorOptions options;
    options.reserve = 0;
    options.on_warning = [&warnings](std::string_view line) { warnings.emplace_back(line); };
    Acceptor acceptor(listener, options);
    for (int round = 0; round < 3; ++round) {
        Socket a = connected_client(listener);
        Socket b = connected_client(listener);
        {
            DescriptorLimit limit(static_cast<rlim_t>(next_two_descriptors().second) + 8);
            TableFiller full;
            acceptor.accept();
        }
        acceptor.connection_closed();
    }
    EXPECT_EQ(acceptor.refused(), 6u);
    // The first at once; the four after it wait for their second.
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find(": 2 connections refused"), std::string::npos) << warnings[0];
    const std::optional<Clock::time_point> due = acceptor.next_deadline();
    ASSERT_TRUE(due);
    acceptor.tick(*due - 1ms);
    EXPECT_EQ(warnings.size(), 1u);
    acceptor.tick(*due);
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_NE(warnings[1].find(": 4 connections refused"), std::string::npos) << warnings[1];
    EXPECT_FALSE(acceptor.next_deadline());
}

TEST_F(AcceptorTest, ACountStillWaitingIsReportedWhenTheAcceptorGoes) {
    Socket listener = listening();
    std::vector<std::string> warnings;
    {
        AcceptorOptions options;
        options.on_warning = [&warnings](std::string_view line) { warnings.emplace_back(line); };
        Acceptor acceptor(listener, options);
        for (int round = 0; round < 2; ++round) {
            Socket client = connected_client(listener);
            EXPECT_FALSE(acceptor.adopt(-EMFILE));
            acceptor.connection_closed();
        }
        EXPECT_EQ(warnings.size(), 1u);  // the second waits for its second
    }
    ASSERT_EQ(warnings.size(), 2u);
    EXPECT_NE(warnings[1].find(": 1 connection refused"), std::string::npos) << warnings[1];
}

TEST_F(AcceptorTest, AnIoUringResultIsHandledLikeAnAcceptResult) {
    Socket listener = listening();
    Socket client = connected_client(listener);
    Acceptor acceptor(listener);
    EXPECT_FALSE(acceptor.adopt(-ECONNABORTED));  // that connection only
    EXPECT_FALSE(acceptor.paused());
    EXPECT_FALSE(acceptor.adopt(-EMFILE));  // sheds what waits, then pauses
    EXPECT_TRUE(acceptor.paused());
    EXPECT_EQ(acceptor.refused(), 1u);
    EXPECT_TRUE(told_closed(client));
    acceptor.connection_closed();
    Socket next = connected_client(listener);
    Fd fd(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(fd);
    EXPECT_TRUE(acceptor.adopt(fd.release()));
    EXPECT_THROW(acceptor.adopt(-EBADF), Error);
}

TEST_F(AcceptorTest, AFailureOfTheListenerItselfIsThrownNamingIt) {
    Socket not_listening(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    not_listening.bind(Address::ip("127.0.0.1", 0));
    Acceptor acceptor(not_listening);
    try {
        acceptor.accept();
        FAIL() << "accept on a socket that does not listen succeeded";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::error_code(EINVAL, std::system_category()));
        EXPECT_NE(std::string(e.what()).find("accept on 127.0.0.1:"), std::string::npos)
            << e.what();
    }
}

TEST_F(LoopAcceptorTest, StopsWatchingWhilePausedAndWatchesAgainWhenAConnectionCloses) {
    EventLoop loop;
    loop.run_once(0ms);  // its first round opens nothing later
    Socket listener = listening();
    Socket first = connected_client(listener);
    std::vector<Accepted> accepted;
    AcceptorOptions options;
    options.pause = 10s;  // longer than the test: only the close can end it
    const int second = reserve_just_below_the_next_connection(options);
    std::optional<DescriptorLimit> limit;
    limit.emplace(static_cast<rlim_t>(second) + kFreeAboveIt + 1);
    LoopAcceptor acceptor(
        loop, listener, [&accepted](Accepted a) { accepted.push_back(std::move(a)); }, options);
    EXPECT_TRUE(loop.watching(listener.fd()));

    const auto deadline = Clock::now() + test::kGuard;
    while (!acceptor.acceptor().paused() && Clock::now() < deadline)
        loop.run_once(100ms);
    ASSERT_TRUE(acceptor.acceptor().paused());
    EXPECT_FALSE(loop.watching(listener.fd())) << "a paused acceptor would spin the loop";
    EXPECT_TRUE(accepted.empty());
    EXPECT_TRUE(told_closed(first));

    limit.reset();
    acceptor.connection_closed();
    EXPECT_TRUE(loop.watching(listener.fd()));
    Socket second_client = connected_client(listener);
    while (accepted.empty() && Clock::now() < deadline)
        loop.run_once(100ms);
    EXPECT_EQ(accepted.size(), 1u);
}

TEST_F(LoopAcceptorTest, APauseEndsOnItsOwnTimer) {
    EventLoop loop;
    loop.run_once(0ms);
    Socket listener = listening();
    Socket first = connected_client(listener);
    std::vector<Accepted> accepted;
    AcceptorOptions options;
    options.pause = 50ms;
    const int second = reserve_just_below_the_next_connection(options);
    std::optional<DescriptorLimit> limit;
    limit.emplace(static_cast<rlim_t>(second) + kFreeAboveIt + 1);
    LoopAcceptor acceptor(
        loop, listener, [&accepted](Accepted a) { accepted.push_back(std::move(a)); }, options);
    const auto deadline = Clock::now() + test::kGuard;
    while (!acceptor.acceptor().paused() && Clock::now() < deadline)
        loop.run_once(100ms);
    ASSERT_TRUE(acceptor.acceptor().paused());
    limit.reset();
    // No close is reported: the timer alone brings the listener back (the
    // limit is read again when the pause ends).
    while (!loop.watching(listener.fd()) && Clock::now() < deadline)
        loop.run_once(100ms);
    EXPECT_TRUE(loop.watching(listener.fd()));
    Socket second_client = connected_client(listener);
    while (accepted.empty() && Clock::now() < deadline)
        loop.run_once(100ms);
    EXPECT_EQ(accepted.size(), 1u);
}

TEST_F(LoopAcceptorTest, DestroyingItStopsWatching) {
    EventLoop loop;
    Socket listener = listening();
    {
        LoopAcceptor acceptor(loop, listener, [](Accepted) {});
        EXPECT_TRUE(loop.watching(listener.fd()));
    }
    EXPECT_FALSE(loop.watching(listener.fd()));
}

}  // namespace
}  // namespace ferry
