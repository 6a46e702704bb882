// Errors: the text says what was attempted and why; categories for what is not errno.
#include "ferry/error.hpp"

#include <netdb.h>

#include <gtest/gtest.h>
#include <cerrno>
#include <string>
#include <system_error>

#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using ErrorTest = test::FdLeakCheck;

TEST_F(ErrorTest, WhatIsContextThenReason) {
    const Error e(std::error_code(ECONNREFUSED, std::system_category()),
                  "connect to 127.0.0.1:1060");
    EXPECT_STREQ(e.what(), "connect to 127.0.0.1:1060: Connection refused");
    EXPECT_EQ(e.code(), std::errc::connection_refused);
}

TEST_F(ErrorTest, EmptyContextIsJustTheReason) {
    const Error e(std::error_code(EPIPE, std::system_category()), "");
    EXPECT_STREQ(e.what(), "Broken pipe");
}

TEST_F(ErrorTest, ThrowErrnoUsesTheGivenOrCurrentErrno) {
    try {
        throw_errno(ECONNRESET, "send to [::1]:80");
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "send to [::1]:80: Connection reset by peer");
        EXPECT_EQ(e.code().category(), std::system_category());
    }
    errno = EADDRINUSE;
    try {
        throw_errno("bind to 0.0.0.0:80");
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "bind to 0.0.0.0:80: Address already in use");
    }
}

TEST_F(ErrorTest, TimeoutErrorIsTimedOut) {
    const TimeoutError e("recv from 127.0.0.1:1060");
    EXPECT_EQ(e.code(), std::errc::timed_out);
    EXPECT_EQ(std::string(e.what()),
              "recv from 127.0.0.1:1060: " + std::make_error_code(std::errc::timed_out).message());
    const Error& base = e;
    EXPECT_EQ(base.code(), std::errc::timed_out);
}

TEST_F(ErrorTest, ShortReadErrorSaysExpectedAndReceived) {
    const ShortReadError e("recv from 127.0.0.1:1060", 16, 5);
    EXPECT_STREQ(e.what(),
                 "recv from 127.0.0.1:1060: was expecting 16 bytes but only received 5 bytes "
                 "before the socket closed");
    EXPECT_EQ(e.expected(), 16U);
    EXPECT_EQ(e.received(), 5U);
    EXPECT_EQ(e.code(), Errc::eof);
    const ShortReadError bare("", 4, 0);
    EXPECT_STREQ(bare.what(),
                 "was expecting 4 bytes but only received 0 bytes before the socket closed");
}

TEST_F(ErrorTest, ResolverCategoryUsesGaiStrerror) {
    const std::error_code code(EAI_NONAME, resolver_category());
    EXPECT_STREQ(resolver_category().name(), "getaddrinfo");
    EXPECT_EQ(code.message(), ::gai_strerror(EAI_NONAME));
    const Error e(code, "resolve nosuch.invalid");
    EXPECT_EQ(std::string(e.what()),
              std::string("resolve nosuch.invalid: ") + ::gai_strerror(EAI_NONAME));
    // EAI_* codes are not errno values, whatever their numbers.
    EXPECT_NE(code, std::error_code(-EAI_NONAME, std::system_category()));
    EXPECT_NE(code.category(), std::system_category());
}

TEST_F(ErrorTest, FerryCategoryCodesAndMessages) {
    EXPECT_STREQ(ferry_category().name(), "ferry");
    const std::error_code eof = Errc::eof;  // implicit through is_error_code_enum
    EXPECT_EQ(eof.category(), ferry_category());
    EXPECT_EQ(eof, make_error_code(Errc::eof));
    EXPECT_NE(eof, make_error_code(Errc::bad_port));
    for (const Errc e : {Errc::eof, Errc::frame_too_large, Errc::bad_frame, Errc::bad_port}) {
        const std::string message = make_error_code(e).message();
        EXPECT_FALSE(message.empty());
        EXPECT_NE(message, "unknown ferry error");
    }
    EXPECT_EQ(std::error_code(999, ferry_category()).message(), "unknown ferry error");
    EXPECT_TRUE(make_error_code(Errc::eof));  // a set error code converts to true
}

TEST_F(ErrorTest, SubclassesAreCaughtAsError) {
    EXPECT_THROW(throw TimeoutError("x"), Error);
    EXPECT_THROW(throw ShortReadError("x", 2, 1), Error);
    EXPECT_THROW(throw Error(make_error_code(Errc::bad_frame), "x"), std::system_error);
}

}  // namespace
}  // namespace ferry
