// The io_uring model's provided buffers, on real loopback sockets: a ring
// that runs dry starves receives that start again once a buffer comes back,
// losing and reordering nothing; frames longer than a buffer are put
// together across receives. (Conformance, limits and drain of the model are
// the end-to-end echo tests'.)
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "ferry/create.hpp"
#include "ferry/server/stream_server.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/running_server.hpp"

namespace ferry {
namespace {

using UringModelTest = test::FdLeakCheck;

using test::Running;

Socket connect_to(const StreamServer& server) {
    Socket s(AF_INET, SOCK_STREAM);
    s.set_timeout(test::kGuard);
    s.connect(server.local_address());
    return s;
}

/// Bytes no two clients share, so that a reply mixed up between connections shows.
std::string pattern(std::size_t client, std::size_t size) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        bytes[i] = static_cast<char>('a' + (client * 7 + i / 13) % 26);
    return bytes;
}

/// Exactly `n` bytes from `s` (each read bounded by its kGuard timeout); fewer at end of stream.
std::string read_exactly(Socket& s, std::size_t n) {
    std::string got;
    std::vector<char> chunk(64 * 1024);
    while (got.size() < n) {
        const IoResult r = s.recv(chunk.data(), std::min(chunk.size(), n - got.size()));
        if (!r || *r == 0) break;
        got.append(chunk.data(), *r);
    }
    return got;
}

bool uring_unavailable(const std::string& failure) {
    return failure.find("io_uring") != std::string::npos;
}

TEST_F(UringModelTest, ARingRunDryStarvesReceivesThatStartAgainAndLoseNothing) {
    EchoHandler echo(Framing{}, 1 << 20);
    ServerLimits limits;
    limits.uring_buffers = 2;  // 32 KiB of buffers for 8 × 48 KiB waiting at once
    StreamServer server(Address::ip("127.0.0.1", 0), Model::uring, limits, echo);
    // Every client's bytes wait in its socket before the server runs: its
    // first receives find more than two buffers' worth, whatever the timing.
    constexpr std::size_t kClients = 8;
    constexpr std::size_t kBytes = 48 * 1024;
    std::vector<Socket> clients;
    for (std::size_t i = 0; i < kClients; ++i) {
        clients.push_back(connect_to(server));
        clients.back().send_all(pattern(i, kBytes));
    }
    std::string failure;
    std::vector<std::string> echoes;
    {
        Running running(server, failure);
        for (Socket& client : clients)
            echoes.push_back(read_exactly(client, kBytes));
        clients.clear();  // closed: the stop need not wait out the drain
    }
    if (uring_unavailable(failure)) GTEST_SKIP() << failure;
    ASSERT_EQ(failure, "");
    for (std::size_t i = 0; i < kClients; ++i)
        EXPECT_TRUE(echoes[i] == pattern(i, kBytes))
            << "client " << i << " got " << echoes[i].size() << " bytes, not its own";
    EXPECT_GT(server.stats().receives_starved.load(), 0u);
    EXPECT_EQ(server.stats().bytes_out.load(), kClients * kBytes);
}

TEST_F(UringModelTest, LinesLongerThanABufferArePutTogetherAcrossReceives) {
    EchoHandler echo(Framing::parse("line"), 1 << 20);
    ServerLimits limits;
    limits.uring_buffers = 4;
    StreamServer server(Address::ip("127.0.0.1", 0), Model::uring, limits, echo);
    std::string failure;
    std::string sent;
    std::string got;
    {
        Running running(server, failure);
        Socket client = connect_to(server);
        // Short lines around long ones (40 KiB spans three 16 KiB buffers),
        // the last one cut in two by the client's writes.
        std::size_t lines = 0;
        for (const std::size_t size : {10UL, 40UL * 1024, 3UL, 20UL * 1024, 1UL, 17UL * 1024}) {
            sent += pattern(lines++, size) + "\n";
        }
        const std::size_t cut = sent.size() - 5000;
        client.send_all(sent.substr(0, cut));
        got = read_exactly(client, sent.size() - (17 * 1024 + 1));  // all but the last line
        client.send_all(sent.substr(cut));
        got += read_exactly(client, sent.size() - got.size());
    }
    if (uring_unavailable(failure)) GTEST_SKIP() << failure;
    ASSERT_EQ(failure, "");
    EXPECT_TRUE(got == sent) << got.size() << " bytes of " << sent.size();
    EXPECT_EQ(server.stats().messages.load(), 6u);
}

TEST_F(UringModelTest, ARingThatIsNotAPowerOfTwoIsRefused) {
    EchoHandler echo(Framing{}, 1024);
    ServerLimits limits;
    limits.uring_buffers = 3;
    EXPECT_THROW(StreamServer(Address::ip("127.0.0.1", 0), Model::uring, limits, echo), Error);
}

}  // namespace
}  // namespace ferry
