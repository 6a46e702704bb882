// StreamServer on SOCK_SEQPACKET: each model in this process echoes every
// message as exactly one message, drops a client whose message is over the
// maximum (and tells the handler why), and refuses what it cannot serve.
// (The fork model is exercised end to end, in tests/e2e/test_seqpacket.py.)
#include "ferry/server/stream_server.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ferry/error.hpp"
#include "ferry/server/message_io.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/running_server.hpp"

namespace ferry {
namespace {

class SeqpacketServerTest : public test::FdLeakCheck,
                            public ::testing::WithParamInterface<Model> {};
using StreamServerTest = test::FdLeakCheck;

/// The echo service, remembering why connections were dropped.
class RecordingEcho final : public StreamHandler {
  public:
    std::size_t on_data(Buffer& input, Buffer& output) const override {
        return echo_.on_data(input, output);
    }
    void on_frame_error(const Error& why) const noexcept override {
        std::lock_guard lock(mutex_);
        errors_.push_back(why.what());
    }
    std::vector<std::string> errors() const {
        std::lock_guard lock(mutex_);
        return errors_;
    }

  private:
    EchoHandler echo_{Framing{}, 1 << 20};
    mutable std::mutex mutex_;
    mutable std::vector<std::string> errors_;
};

using test::Running;

Socket connect_seqpacket(const Address& where) {
    Socket s(AF_UNIX, SOCK_SEQPACKET);
    s.set_timeout(test::kGuard);
    s.connect(where);
    return s;
}

/// The next message, waiting at most kGuard; "" at end of stream.
std::string next_message(Socket& s, std::size_t room = 70000) {
    std::vector<char> area(room);
    const Deadline deadline = s.deadline_from_now();
    for (;;) {
        if (const IoResult n = recv_message(s.fd(), area.data(), area.size()))
            return std::string(area.data(), *n);
        if (!s.wait(POLLIN, deadline)) throw TimeoutError("test recv");
    }
}

bool uring_unavailable(const std::string& failure) {
    return failure.find("io_uring") != std::string::npos;
}

TEST_P(SeqpacketServerTest, EachMessageSentBackToBackIsEchoedAsOneMessage) {
    test::TempDir dir;
    const Address where = Address::unix_path(dir.file("echo.sock"));
    RecordingEcho echo;
    ServerLimits limits;
    limits.threads = 2;
    StreamServer server(where, GetParam(), limits, echo, SOCK_SEQPACKET);
    std::string failure;
    bool client_failed = false;
    {
        Running running(server, failure);
        Socket client = connect_seqpacket(where);
        const std::vector<std::string> messages = {"1", std::string(100, 'h'),
                                                   std::string(4096, 'k'), std::string(65536, 's')};
        try {
            for (const std::string& m : messages)
                client.send(m);
            for (const std::string& m : messages)
                EXPECT_EQ(next_message(client), m);
        } catch (const Error&) {
            client_failed = true;
        }
    }
    if (uring_unavailable(failure)) GTEST_SKIP() << failure;
    ASSERT_FALSE(client_failed) << failure;
    EXPECT_EQ(server.stats().messages.load(), 4u);
    EXPECT_TRUE(echo.errors().empty());
}

TEST_P(SeqpacketServerTest, AMessageOverTheMaximumDropsTheClientAndSaysWhy) {
    test::TempDir dir;
    const Address where = Address::unix_path(dir.file("echo.sock"));
    RecordingEcho echo;
    ServerLimits limits;
    limits.max_message = 1000;
    StreamServer server(where, GetParam(), limits, echo, SOCK_SEQPACKET);
    std::string failure;
    bool client_failed = false;
    {
        Running running(server, failure);
        try {
            Socket client = connect_seqpacket(where);
            client.send(std::string(1000, 'f'));  // exactly the maximum: echoed
            EXPECT_EQ(next_message(client), std::string(1000, 'f'));
            client.send(std::string(2000, 'o'));
            EXPECT_EQ(next_message(client), "");  // dropped, nothing echoed cut short
        } catch (const Error&) {
            client_failed = true;
        }
    }
    if (uring_unavailable(failure)) GTEST_SKIP() << failure;
    ASSERT_FALSE(client_failed) << failure;
    EXPECT_EQ(server.stats().dropped_bad_frame.load(), 1u);
    const auto errors = echo.errors();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("message of 2000 bytes (room for 1000)"), std::string::npos)
        << errors[0];
}

INSTANTIATE_TEST_SUITE_P(InProcessModels, SeqpacketServerTest,
                         ::testing::Values(Model::iterative, Model::thread, Model::pool,
                                           Model::select, Model::poll, Model::epoll, Model::uring),
                         [](const ::testing::TestParamInfo<Model>& param_info) {
                             return std::string(model_name(param_info.param));
                         });

TEST_F(StreamServerTest, SeqpacketOnAnIpAddressIsRefused) {
    RecordingEcho echo;
    try {
        StreamServer server(Address::ip("127.0.0.1", 0), Model::epoll, ServerLimits{}, echo,
                            SOCK_SEQPACKET);
        FAIL() << "a SOCK_SEQPACKET server on 127.0.0.1";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find("Unix socket paths only"), std::string::npos)
            << e.what();
    }
}

TEST_F(StreamServerTest, OnlyStreamAndSeqpacketAreServed) {
    test::TempDir dir;
    RecordingEcho echo;
    EXPECT_THROW(StreamServer(Address::unix_path(dir.file("x.sock")), Model::epoll, ServerLimits{},
                              echo, SOCK_DGRAM),
                 Error);
}

}  // namespace
}  // namespace ferry
