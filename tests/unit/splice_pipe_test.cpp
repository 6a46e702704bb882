// SplicePipe over real descriptors: loopback TCP sockets, a pipe, a regular file.
#include "ferry/splice_pipe.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "ferry/error.hpp"
#include "unit/fd_leak_check.hpp"
#include "unit/loopback.hpp"

namespace ferry {
namespace {

class SplicePipeTest : public test::FdLeakCheck {};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>(i * 7 + i / 251);
    return s;
}

TEST_F(SplicePipeTest, MovesSocketToSocketInOrderAndCounts) {
    auto [a_client, a_server] = test::connected_tcp();
    auto [b_client, b_server] = test::connected_tcp();
    SplicePipe pipe;
    EXPECT_GE(pipe.capacity(), 4096u);
    const std::string data = pattern(300'000);
    a_client.send_all(data);
    a_client.shutdown(Shutdown::write);
    a_server.set_blocking(false);
    std::string got;
    std::size_t moved_in = 0;
    for (bool ended = false; !ended || !pipe.empty();) {
        if (!ended) {
            if (const IoResult n = pipe.fill_from(a_server.fd())) {
                ended = *n == 0;
                moved_in += *n;
            }
        }
        const std::size_t held = pipe.size();
        const IoResult out = pipe.drain_to(b_client.fd());
        ASSERT_TRUE(out.has_value());  // the receiver's buffer has room for what is held
        EXPECT_EQ(pipe.size(), held - *out);
        while (got.size() < moved_in - pipe.size())
            got += b_server.recv_exact(moved_in - pipe.size() - got.size());
    }
    EXPECT_EQ(moved_in, data.size());
    EXPECT_EQ(got, data);
}

TEST_F(SplicePipeTest, WouldBlockWhenTheSocketHasNothing) {
    auto [client, server] = test::connected_tcp();
    server.set_blocking(false);
    SplicePipe pipe;
    EXPECT_FALSE(pipe.fill_from(server.fd()).has_value());
    EXPECT_TRUE(pipe.empty());
}

TEST_F(SplicePipeTest, DrainIntoHandsTheHeldBytesToABufferInOrder) {
    auto [client, server] = test::connected_tcp();
    server.set_blocking(false);
    SplicePipe pipe;
    const std::string data = pattern(100'000);
    client.send_all(data);
    std::size_t in = 0;
    while (in < data.size())
        in += pipe.fill_from(server.fd(), data.size() - in).value_or(0);
    Buffer out;
    out.append("head:");
    pipe.drain_into(out);
    EXPECT_TRUE(pipe.empty());
    EXPECT_EQ(std::string(out.view()), "head:" + data);
}

TEST_F(SplicePipeTest, FileToSocketAndSocketToFile) {
    auto [client, server] = test::connected_tcp();
    char in_name[] = "/tmp/ferry-splice-in-XXXXXX";
    char out_name[] = "/tmp/ferry-splice-out-XXXXXX";
    const Fd in(::mkstemp(in_name)), out(::mkstemp(out_name));
    ASSERT_TRUE(in && out);
    ::unlink(in_name);
    ::unlink(out_name);
    const std::string data = pattern(200'001);
    ASSERT_EQ(::write(in.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(::lseek(in.get(), 0, SEEK_SET), 0);

    SplicePipe up, down;
    std::size_t sent = 0;
    for (;;) {
        const IoResult n = up.fill_from(in.get());
        ASSERT_TRUE(n.has_value());
        if (*n == 0) break;  // end of the file
        while (!up.empty())
            sent += up.drain_to(client.fd()).value_or(0);
    }
    client.shutdown(Shutdown::write);
    EXPECT_EQ(sent, data.size());
    server.set_blocking(false);
    std::size_t received = 0;
    for (bool ended = false; !ended;) {
        if (const IoResult n = down.fill_from(server.fd())) {
            ended = *n == 0;
            received += *n;
            while (!down.empty())
                ASSERT_TRUE(down.drain_to(out.get()).has_value());
        }
    }
    EXPECT_EQ(received, data.size());
    std::string back(data.size(), '\0');
    ASSERT_EQ(::pread(out.get(), back.data(), back.size(), 0), static_cast<ssize_t>(data.size()));
    EXPECT_EQ(back, data);
}

TEST_F(SplicePipeTest, AFileOpenedForAppendingIsRefusedWithEinval) {
    auto [client, server] = test::connected_tcp();
    char name[] = "/tmp/ferry-splice-append-XXXXXX";
    Fd file(::mkstemp(name));
    ASSERT_TRUE(file);
    ::unlink(name);
    ASSERT_EQ(::fcntl(file.get(), F_SETFL, O_APPEND), 0);
    client.send_all("abc");
    SplicePipe pipe;
    ASSERT_EQ(pipe.fill_from(server.fd()).value_or(0), 3u);
    try {
        (void)pipe.drain_to(file.get());
        FAIL() << "splice to an O_APPEND file was taken";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
    }
    EXPECT_EQ(pipe.size(), 3u);
}

}  // namespace
}  // namespace ferry
