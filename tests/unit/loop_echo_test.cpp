// The event-loop models' echo paths over real TCP loopback: the raw echo,
// which sends straight from the loop's one read buffer and keeps only what the
// socket did not take, and the framed echo, whose partial frames wait in the
// connection's own buffer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <string>
#include <string_view>
#include <thread>

#include "ferry/error.hpp"
#include "ferry/server/stream_server.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/running_server.hpp"

namespace ferry {
namespace {

class LoopEchoTest : public test::FdLeakCheck, public ::testing::WithParamInterface<Model> {};

using test::Running;

/// `size` bytes that differ from their neighbours, so a byte lost, doubled or
/// moved anywhere changes the text.
std::string pattern(std::size_t size) {
    std::string text(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        text[i] = static_cast<char>('A' + (i * 7 + i / 251) % 53);
    return text;
}

/// A client with a small receive buffer, connected to `where`: the server's
/// sends then fill the way back and come out short.
Socket slow_reader(const Address& where) {
    Socket client(where.family(), SOCK_STREAM);
    client.set_option(SOL_SOCKET, SO_RCVBUF, 4096);  // before connect: it sets the window
    client.set_timeout(test::kGuard);
    client.connect(where);
    return client;
}

std::string receive(Socket& client, std::size_t size) {
    std::string got;
    char chunk[4096];
    while (got.size() < size) {
        const IoResult n = client.recv(chunk, sizeof chunk);
        if (!n || *n == 0) break;
        got.append(chunk, *n);
    }
    return got;
}

// 12 MiB (more than the 4 MiB a loopback send buffer grows to) sent at full speed to a client whose
// window is a few KiB: the server's sends are short, the rest waits in the connection, later reads
// queue behind it (the order holds), and reading pauses above the high-water mark. Every byte comes
// back once, in order, and the counts add up.
TEST_P(LoopEchoTest, ARawEchoToASlowReaderReturnsEveryByteInOrder) {
    const EchoHandler echo(Framing{}, 1 << 20);
    ServerLimits limits;
    limits.threads = 1;
    limits.output_high_water = 64 * 1024;
    StreamServer server(Address::ip("127.0.0.1", 0), GetParam(), limits, echo);
    const std::string sent = pattern(12 << 20);
    std::string got;
    std::string failure;
    std::atomic<bool> client_failed{false};
    {
        Running running(server, failure);
        try {
            Socket client = slow_reader(server.local_address());
            // Its own descriptor for the sending thread: the two never share an object.
            Socket writer{Fd(::fcntl(client.fd(), F_DUPFD_CLOEXEC, 0))};
            // Nothing is read until the sender is blocked (or done): by then
            // the way back is full and the server's sends have come out short.
            std::promise<void> blocked;
            std::thread sender([&] {
                try {
                    writer.set_timeout(std::chrono::seconds(0));
                    std::size_t off = 0;
                    while (off < sent.size()) {
                        const IoResult n = writer.send(sent.data() + off, sent.size() - off);
                        if (!n) break;
                        off += *n;
                    }
                    blocked.set_value();
                    writer.set_timeout(
                        std::chrono::seconds(20));  // all of the rest, at the reader's pace
                    writer.send_all(std::string_view(sent).substr(off));
                    writer.shutdown(Shutdown::write);
                } catch (const Error&) {
                    client_failed = true;
                }
            });
            if (blocked.get_future().wait_for(test::kGuard) == std::future_status::ready)
                got = receive(client, sent.size() + 1);  // + 1: the end of stream must follow
            sender.join();
        } catch (const Error&) {
            client_failed = true;
        }
    }
    ASSERT_TRUE(failure.empty()) << failure;
    ASSERT_FALSE(client_failed);
    ASSERT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent) << "the echo differs from what was sent";
    EXPECT_EQ(server.stats().bytes_in.load(), sent.size());
    EXPECT_EQ(server.stats().bytes_out.load(), sent.size());
    EXPECT_GE(server.stats().messages.load(), sent.size() / (64 * 1024));
}

// A line cut across three sends comes back whole and once: the partial frame
// waits in the connection's own buffer between reads.
TEST_P(LoopEchoTest, ALineSplitAcrossSendsIsEchoedWhole) {
    const EchoHandler echo(Framing::parse("line"), 1 << 20);
    ServerLimits limits;
    limits.threads = 1;
    StreamServer server(Address::ip("127.0.0.1", 0), GetParam(), limits, echo);
    std::string failure;
    std::string got;
    {
        Running running(server, failure);
        Socket client(AF_INET, SOCK_STREAM);
        client.set_timeout(test::kGuard);
        client.connect(server.local_address());
        client.send_all("hel");
        client.send_all("lo\nwor");
        client.send_all("ld\n");
        client.shutdown(Shutdown::write);
        got = receive(client, 13);
    }
    ASSERT_TRUE(failure.empty()) << failure;
    EXPECT_EQ(got, "hello\nworld\n");
    EXPECT_EQ(server.stats().messages.load(), 2u);
}

INSTANTIATE_TEST_SUITE_P(EventLoopModels, LoopEchoTest,
                         ::testing::Values(Model::select, Model::poll, Model::epoll),
                         [](const ::testing::TestParamInfo<Model>& param_info) {
                             return std::string(model_name(param_info.param));
                         });

}  // namespace
}  // namespace ferry
