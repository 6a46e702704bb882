// Framing: every decoder returns exactly the messages sent whatever the chunk
// boundaries, never holds more than its maximum, and read_frame over sockets.
#include "ferry/framing.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ferry/byte_order.hpp"
#include "ferry/error.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using test::kGuard;

using FramingTest = test::FdLeakCheck;
using ReadFrameTest = test::FdLeakCheck;

std::string random_bytes(std::mt19937& rng, std::size_t size, std::string_view alphabet = {}) {
    std::string s(size, '\0');
    std::uniform_int_distribution<int> byte(0, 255);
    for (char& c : s) {
        if (alphabet.empty()) {
            c = static_cast<char>(byte(rng));
        } else {
            c = alphabet[static_cast<std::size_t>(byte(rng)) % alphabet.size()];
        }
    }
    return s;
}

// Feeds `wire` to `decoder` in chunks of random sizes (mostly small, so that
// headers and delimiters are split, sometimes large) and collects every message.
std::vector<std::string> decode_in_random_chunks(FrameDecoder& decoder, const std::string& wire,
                                                 std::mt19937& rng) {
    std::vector<std::string> out;
    std::uniform_int_distribution<std::size_t> small(1, 7);
    std::uniform_int_distribution<std::size_t> large(1, 3000);
    std::bernoulli_distribution pick_small(0.7);
    std::size_t at = 0;
    while (at < wire.size()) {
        const std::size_t n = std::min(wire.size() - at, pick_small(rng) ? small(rng) : large(rng));
        decoder.feed(std::string_view(wire).substr(at, n));
        at += n;
        while (auto message = decoder.next())
            out.push_back(std::move(*message));
    }
    EXPECT_EQ(decoder.buffered(), 0U);
    return out;
}

struct Case {
    const char* name;
    std::function<std::unique_ptr<FrameDecoder>()> make;
    std::function<std::string(std::mt19937&)> message;  // a random valid message
    std::function<std::string(const std::string&)> encode;
};

TEST_F(FramingTest, EveryDecoderReturnsTheOriginalMessagesWhateverTheChunkBoundaries) {
    const std::vector<Case> cases = {
        {"fixed", [] { return std::make_unique<FixedLengthDecoder>(16); },
         [](std::mt19937& rng) { return random_bytes(rng, 16); },
         [](const std::string& m) { return m; }},
        {"fixed-1", [] { return std::make_unique<FixedLengthDecoder>(1); },
         [](std::mt19937& rng) { return random_bytes(rng, 1); },
         [](const std::string& m) { return m; }},
        {"newline", [] { return std::make_unique<DelimiterDecoder>(300); },
         [](std::mt19937& rng) {
             return random_bytes(rng, std::uniform_int_distribution<std::size_t>(0, 300)(rng),
                                 "abc \t\r\0xyz");
         },
         [](const std::string& m) { return m + "\n"; }},
        {"crlf", [] { return std::make_unique<DelimiterDecoder>(200, "\r\n"); },
         [](std::mt19937& rng) {
             // '\r' alone may appear in a message, even last; "\r\n" may not.
             return random_bytes(rng, std::uniform_int_distribution<std::size_t>(0, 200)(rng),
                                 "ab\r");
         },
         [](const std::string& m) { return m + "\r\n"; }},
        {"length-prefix", [] { return std::make_unique<LengthPrefixDecoder>(5000); },
         [](std::mt19937& rng) {
             return random_bytes(rng, std::uniform_int_distribution<std::size_t>(0, 5000)(rng));
         },
         [](const std::string& m) { return encode_length_prefixed(m); }},
    };
    for (const Case& c : cases) {
        for (std::uint32_t seed = 1; seed <= 5; ++seed) {
            SCOPED_TRACE(std::string(c.name) + " seed " + std::to_string(seed));
            std::mt19937 rng(seed);
            std::vector<std::string> messages;
            std::string wire;
            for (int i = 0; i < 400; ++i) {
                messages.push_back(c.message(rng));
                wire += c.encode(messages.back());
            }
            const auto decoder = c.make();
            const auto decoded = decode_in_random_chunks(*decoder, wire, rng);
            ASSERT_EQ(decoded.size(), messages.size());
            for (std::size_t i = 0; i < messages.size(); ++i)
                ASSERT_EQ(decoded[i], messages[i]) << "message " << i;
        }
    }
}

TEST_F(FramingTest, DelimiterSplitAcrossFeeds) {
    DelimiterDecoder decoder(100, "\r\n");
    decoder.feed("hello\r");
    EXPECT_EQ(decoder.next(), std::nullopt);
    decoder.feed("\nworld\r");
    EXPECT_EQ(decoder.next(), "hello");
    EXPECT_EQ(decoder.next(), std::nullopt);
    decoder.feed("\n");
    EXPECT_EQ(decoder.next(), "world");
    EXPECT_EQ(decoder.next(), std::nullopt);
    EXPECT_EQ(decoder.buffered(), 0U);
}

TEST_F(FramingTest, LongDelimiterFedOneByteAtATime) {
    DelimiterDecoder decoder(100, "<END>");
    const std::string wire =
        "a<EN<END>"
        "<END>"
        "b<<END>";
    std::vector<std::string> got;
    for (const char c : wire) {
        decoder.feed(&c, 1);
        while (auto m = decoder.next())
            got.push_back(*m);
    }
    EXPECT_EQ(got, (std::vector<std::string>{"a<EN", "", "b<"}));
}

TEST_F(FramingTest, EmptyDelimiterIsRejected) {
    EXPECT_THROW(DelimiterDecoder(10, ""), Error);
}

// A message of zero bytes would make next() yield empty messages forever.
TEST_F(FramingTest, FixedLengthOfZeroIsRefused) {
    try {
        FixedLengthDecoder decoder(0);
        FAIL() << "FixedLengthDecoder(0) was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("at least 1"), std::string::npos) << e.what();
    }
}

// Found by the framing fuzz harness: with SIZE_MAX as the maximum ("no limit") and a
// delimiter of two bytes or more, max + delimiter - 1 wrapped around to a small number and
// every byte without a delimiter was "too large".
TEST_F(FramingTest, DelimiterWithNoLimitWaitsForALongDelimiter) {
    DelimiterDecoder decoder(SIZE_MAX, "\r\n");
    decoder.feed("no end yet");
    EXPECT_EQ(decoder.next(), std::nullopt);
    decoder.feed("\r");
    EXPECT_EQ(decoder.next(), std::nullopt);
    decoder.feed("\n");
    EXPECT_EQ(decoder.next(), "no end yet");
    EXPECT_EQ(decoder.buffered(), 0U);
}

void expect_too_large(FrameDecoder& decoder) {
    try {
        (void)decoder.next();
        FAIL() << "no frame_too_large";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::frame_too_large) << e.what();
    }
}

TEST_F(FramingTest, HugeLengthPrefixThrowsRightAfterTheHeader) {
    LengthPrefixDecoder decoder(1 << 20);
    decoder.feed("\xff\xff\xff", 3);
    EXPECT_EQ(decoder.next(), std::nullopt);
    decoder.feed("\xff", 1);
    EXPECT_EQ(decoder.buffered(), 4U);  // no body was needed to decide
    expect_too_large(decoder);
}

TEST_F(FramingTest, LengthPrefixAtTheMaximumIsAcceptedOneMoreIsNot) {
    LengthPrefixDecoder at_max(100);
    at_max.feed(encode_length_prefixed(std::string(100, 'm')));
    EXPECT_EQ(at_max.next(), std::string(100, 'm'));
    LengthPrefixDecoder over(100);
    over.feed(encode_length_prefixed(std::string(101, 'm')).substr(0, 4));
    expect_too_large(over);
}

TEST_F(FramingTest, LengthPrefixOfZeroIsAnEmptyMessage) {
    LengthPrefixDecoder decoder(10);
    decoder.feed(std::string("\0\0\0\0\0\0\0\x01z", 9));
    EXPECT_EQ(decoder.next(), "");
    EXPECT_EQ(decoder.next(), "z");
    EXPECT_EQ(decoder.next(), std::nullopt);
}

TEST_F(FramingTest, DelimiterMessageOverTheMaximumThrows) {
    DelimiterDecoder decoder(8);
    decoder.feed("123456789\n");
    expect_too_large(decoder);
}

TEST_F(FramingTest, DelimiterMessageAtTheMaximumIsAccepted) {
    DelimiterDecoder decoder(8, "\r\n");
    decoder.feed("12345678\r");  // the maximum plus part of the delimiter: still possible
    EXPECT_EQ(decoder.next(), std::nullopt);
    decoder.feed("\n");
    EXPECT_EQ(decoder.next(), "12345678");
}

TEST_F(FramingTest, DelimiterOverTheMaximumThrowsBeforeTheDelimiterArrives) {
    // A peer that never sends the delimiter cannot make the decoder grow.
    DelimiterDecoder decoder(8);
    decoder.feed("12345678");
    EXPECT_EQ(decoder.next(), std::nullopt);
    decoder.feed("9");
    expect_too_large(decoder);
}

TEST_F(FramingTest, FixedLengthWantedAndBuffered) {
    FixedLengthDecoder decoder(4);
    EXPECT_EQ(decoder.wanted(), 4U);
    decoder.feed("abcdef");
    EXPECT_EQ(decoder.buffered(), 6U);
    EXPECT_EQ(decoder.next(), "abcd");
    EXPECT_EQ(decoder.buffered(), 2U);
    EXPECT_EQ(decoder.next(), std::nullopt);
    EXPECT_EQ(decoder.max_size(), 4U);
}

TEST_F(FramingTest, EncodeLengthPrefixedIsBigEndian) {
    const std::string wire = encode_length_prefixed(std::string(0x0102, 'x'));
    ASSERT_EQ(wire.size(), 4U + 0x0102);
    EXPECT_EQ(wire.substr(0, 4), std::string("\0\0\x01\x02", 4));
    EXPECT_EQ(load_be32(wire.data()), 0x0102U);
}

TEST_F(ReadFrameTest, ReadsFramesOverASocketpair) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all(encode_length_prefixed("first") + encode_length_prefixed("") +
                    encode_length_prefixed(std::string(100'000, 'z')));
    writer.close();
    LengthPrefixDecoder decoder(1 << 20);
    EXPECT_EQ(read_frame(reader, decoder), "first");
    EXPECT_EQ(read_frame(reader, decoder), "");
    EXPECT_EQ(read_frame(reader, decoder), std::string(100'000, 'z'));
    EXPECT_EQ(read_frame(reader, decoder), std::nullopt);  // clean end of stream
}

TEST_F(ReadFrameTest, LinesFromAPeerWritingInPieces) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.set_timeout(kGuard);
    std::thread peer([&writer = writer] {
        for (const char* piece : {"he", "llo\nwor", "ld", "\n", "last\n"})
            writer.send_all(piece);
        writer.shutdown(Shutdown::write);
    });
    DelimiterDecoder decoder(64);
    EXPECT_EQ(read_frame(reader, decoder), "hello");
    EXPECT_EQ(read_frame(reader, decoder), "world");
    EXPECT_EQ(read_frame(reader, decoder), "last");
    EXPECT_EQ(read_frame(reader, decoder), std::nullopt);
    peer.join();
}

TEST_F(ReadFrameTest, CleanEofReturnsNullopt) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.close();
    FixedLengthDecoder decoder(16);
    EXPECT_EQ(read_frame(reader, decoder), std::nullopt);
}

TEST_F(ReadFrameTest, EofMidFrameThrowsShortReadError) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all("Hi th");
    writer.close();
    FixedLengthDecoder decoder(16);
    try {
        (void)read_frame(reader, decoder);
        FAIL() << "read_frame returned a partial frame";
    } catch (const ShortReadError& e) {
        EXPECT_EQ(e.expected(), 16U);
        EXPECT_EQ(e.received(), 5U);
        EXPECT_NE(std::string(e.what()).find(
                      "was expecting 16 bytes but only received 5 bytes before the socket closed"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(ReadFrameTest, EofInsideALengthPrefixedBodyCountsTheHeader) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all(encode_length_prefixed("0123456789abcdef").substr(0, 9));
    writer.close();
    LengthPrefixDecoder decoder(100);
    try {
        (void)read_frame(reader, decoder);
        FAIL() << "read_frame returned a partial frame";
    } catch (const ShortReadError& e) {
        EXPECT_EQ(e.expected(), 20U);
        EXPECT_EQ(e.received(), 9U);
    }
}

TEST_F(ReadFrameTest, HostileLengthPrefixFailsWithoutReadingTheBody) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all("\xff\xff\xff\xff");
    LengthPrefixDecoder decoder(1 << 20);
    try {
        (void)read_frame(reader, decoder);
        FAIL() << "read_frame accepted a 4 GiB frame";
    } catch (const TimeoutError& e) {
        FAIL() << "waited for the body: " << e.what();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::frame_too_large);
    }
}

TEST_F(ReadFrameTest, TimeoutIsOneDeadlineForTheWholeFrame) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(200ms);
    writer.send_all("part of a line");
    DelimiterDecoder decoder(64);
    const auto start = Clock::now();
    EXPECT_THROW((void)read_frame(reader, decoder), TimeoutError);
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 200ms);
    EXPECT_LT(elapsed, 200ms + 1500ms);
}

TEST_F(ReadFrameTest, RecvUntilEof) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all("everything until");
    writer.send_all(" the end");
    writer.shutdown(Shutdown::write);
    EXPECT_EQ(recv_until_eof(reader, 100), "everything until the end");
}

TEST_F(ReadFrameTest, RecvUntilEofOverTheMaximumThrows) {
    auto [reader, writer] = Socket::pair();
    reader.set_timeout(kGuard);
    writer.send_all(std::string(101, 'x'));
    writer.close();
    try {
        (void)recv_until_eof(reader, 100);
        FAIL() << "accepted 101 bytes with a maximum of 100";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::frame_too_large);
    }
}

}  // namespace
}  // namespace ferry
