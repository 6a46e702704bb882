// The fault proxy's zero-copy path in one process: it splices only where the
// process ignores SIGPIPE, and FaultProxyOptions::splice turns it off.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "ferry/create.hpp"
#include "ferry/testkit/fault_proxy.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/loopback.hpp"

namespace ferry::testkit {
namespace {

using test::kGuard;

/// SIGPIPE set to `handler` for the test, then put back.
class SigpipeAs {
  public:
    explicit SigpipeAs(void (*handler)(int)) : before_(std::signal(SIGPIPE, handler)) {}
    ~SigpipeAs() { std::signal(SIGPIPE, before_); }
    SigpipeAs(const SigpipeAs&) = delete;
    SigpipeAs& operator=(const SigpipeAs&) = delete;

  private:
    void (*before_)(int);
};

/// 1 MiB each way through a proxy with `options`; its counters afterwards.
Counters relay_a_mebibyte(FaultProxyOptions options) {
    Socket upstream = create_server("127.0.0.1", "0");
    upstream.set_timeout(kGuard);
    FaultProxyThread proxy(std::move(options));
    const std::string listen = proxy.call([&](FaultProxy& f) {
        return f.create({.name = "p", .upstream = upstream.local_address().to_string()})
            .config.listen;
    });
    const auto colon = listen.rfind(':');
    Socket client =
        create_connection(listen.substr(0, colon), listen.substr(colon + 1), {.timeout = kGuard});
    Socket server = std::move(upstream.accept()->socket);
    server.set_timeout(kGuard);
    std::string data(1 << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<char>(i % 253);
    // One direction after the other: the proxy holds at most what the sockets do not.
    client.send_all(data);
    EXPECT_EQ(server.recv_exact(data.size()), data);
    server.send_all(data);
    EXPECT_EQ(client.recv_exact(data.size()), data);
    return proxy.call([](FaultProxy& f) { return f.get("p").counters; });
}

class ProxySpliceTest : public test::FdLeakCheck {};

TEST_F(ProxySpliceTest, SplicesEveryByteWhereSigpipeIsIgnored) {
    const SigpipeAs ignored(SIG_IGN);
    const Counters c = relay_a_mebibyte({.seed = 1});
    EXPECT_EQ(c.bytes_up, 1u << 20);
    EXPECT_EQ(c.bytes_down, 1u << 20);
    EXPECT_EQ(c.spliced_up, 1u << 20);
    EXPECT_EQ(c.spliced_down, 1u << 20);
}

TEST_F(ProxySpliceTest, CopiesWhereSigpipeWouldKill) {
    const SigpipeAs deadly(SIG_DFL);
    const Counters c = relay_a_mebibyte({.seed = 1});
    EXPECT_EQ(c.bytes_up, 1u << 20);
    EXPECT_EQ(c.bytes_down, 1u << 20);
    EXPECT_EQ(c.spliced_up + c.spliced_down, 0u);
}

TEST_F(ProxySpliceTest, CopiesWhenSpliceIsOff) {
    const SigpipeAs ignored(SIG_IGN);
    const Counters c = relay_a_mebibyte({.seed = 1, .splice = false});
    EXPECT_EQ(c.bytes_up + c.bytes_down, 2u << 20);
    EXPECT_EQ(c.spliced_up + c.spliced_down, 0u);
}

}  // namespace
}  // namespace ferry::testkit
