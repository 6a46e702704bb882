// Fuzzes the framing decoders (ferry/framing.hpp), every kind: the same bytes fed all at
// once, in chunk sizes drawn from the input and (up to 512 bytes) one byte at a time must
// give the same frames and the same verdict; no frame exceeds the maximum; the frames
// re-encoded, followed by what the decoder still holds, are exactly the input; and a
// decoder never holds more than one frame's worth once it has said it has no frame.
//
// Input: the decoder's kind, maximum, delimiter and chunking seed, then the stream itself.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "ferry/error.hpp"
#include "ferry/framing.hpp"

namespace {

using ferry::FrameDecoder;

enum class Kind { fixed, delimiter, length };

constexpr std::size_t kBytewiseUpTo = 512;

struct Setup {
    Kind kind = Kind::fixed;
    std::size_t max_size = 0;
    std::string delimiter;
};

struct Outcome {
    std::vector<std::string> frames;
    bool too_large = false;
    std::size_t left = 0;  // buffered() at the end, when no frame was too large
    friend bool operator==(const Outcome&, const Outcome&) = default;
};

/// A maximum from the input: mostly small (frames actually complete), sometimes near
/// SIZE_MAX ("no limit" as a caller may write it), where sums overflow.
std::size_t pick_max(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
            return in.ConsumeIntegralInRange<std::size_t>(0, 16);
        case 1:
            return in.ConsumeIntegralInRange<std::size_t>(0, 70000);
        case 2:
            return std::numeric_limits<std::size_t>::max() -
                   in.ConsumeIntegralInRange<std::size_t>(0, 8);
        default:
            return in.ConsumeIntegral<std::uint32_t>();
    }
}

std::unique_ptr<FrameDecoder> make_decoder(const Setup& s) {
    switch (s.kind) {
        case Kind::fixed:
            return std::make_unique<ferry::FixedLengthDecoder>(s.max_size);
        case Kind::delimiter:
            return std::make_unique<ferry::DelimiterDecoder>(s.max_size, s.delimiter);
        case Kind::length:
            return std::make_unique<ferry::LengthPrefixDecoder>(s.max_size);
    }
    return nullptr;
}

std::size_t saturating_add(std::size_t a, std::size_t b) {
    return a > std::numeric_limits<std::size_t>::max() - b ? std::numeric_limits<std::size_t>::max()
                                                           : a + b;
}

/// The most a decoder may hold after next() said "no frame yet": less than one frame and
/// its framing bytes (a delimiter may have arrived all but its last byte).
std::size_t most_held(const Setup& s) {
    switch (s.kind) {
        case Kind::fixed:
            return s.max_size - 1;
        case Kind::delimiter:
            return saturating_add(s.max_size, s.delimiter.size() - 1);
        case Kind::length:
            return saturating_add(s.max_size, 3);
    }
    return 0;
}

std::string encode(const Setup& s, const std::string& frame) {
    switch (s.kind) {
        case Kind::fixed:
            return frame;
        case Kind::delimiter:
            return frame + s.delimiter;
        case Kind::length:
            return ferry::encode_length_prefixed(frame);
    }
    return {};
}

/// Feeds `input` in the chunks `next_chunk` picks, taking every frame out after each feed.
Outcome decode(const Setup& s, const std::string& input,
               const std::function<std::size_t()>& next_chunk) {
    const auto decoder = make_decoder(s);
    Outcome out;
    std::size_t at = 0;
    try {
        while (at < input.size()) {
            const std::size_t n = std::min(next_chunk(), input.size() - at);
            decoder->feed(input.data() + at, n);
            at += n;
            while (auto frame = decoder->next()) {
                FUZZ_CHECK(frame->size() <= s.max_size);
                if (s.kind == Kind::fixed) FUZZ_CHECK(frame->size() == s.max_size);
                // The first delimiter ends the frame: none inside, none ending inside it.
                if (s.kind == Kind::delimiter)
                    FUZZ_CHECK((*frame + s.delimiter).find(s.delimiter) == frame->size());
                out.frames.push_back(std::move(*frame));
                // Every frame takes at least one byte of the stream: more frames than
                // bytes is a decoder yielding without consuming (it would never stop).
                FUZZ_CHECK(out.frames.size() <= at);
            }
            FUZZ_CHECK(decoder->buffered() <= most_held(s));
            FUZZ_CHECK(decoder->wanted() > decoder->buffered());
        }
    } catch (const ferry::Error& e) {
        FUZZ_CHECK(e.code() == ferry::Errc::frame_too_large);
        out.too_large = true;
    }
    if (!out.too_large) out.left = decoder->buffered();

    // What came out, framed again, is what went in (a prefix of it, after a rejected frame).
    std::string again;
    for (const std::string& frame : out.frames)
        again += encode(s, frame);
    if (out.too_large) {
        FUZZ_CHECK(again.size() <= input.size());
        FUZZ_CHECK(input.compare(0, again.size(), again) == 0);
    } else {
        FUZZ_CHECK(again.size() + out.left == input.size());
        FUZZ_CHECK(input.compare(0, again.size(), again) == 0);
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    Setup s;
    s.kind = static_cast<Kind>(in.ConsumeIntegralInRange<int>(0, 2));
    s.max_size = pick_max(in);
    if (s.kind == Kind::delimiter) s.delimiter = in.ConsumeRandomLengthString(4);
    const auto seed = in.ConsumeIntegral<std::uint32_t>();
    const std::size_t largest_chunk = in.ConsumeIntegralInRange<std::size_t>(1, 64);
    const std::string input = in.ConsumeRemainingBytesAsString();

    // The constructors refuse what cannot frame anything.
    if (s.kind == Kind::fixed && s.max_size == 0) {
        try {
            (void)make_decoder(s);
        } catch (const std::invalid_argument&) {
            return 0;
        }
        FUZZ_FAIL("FixedLengthDecoder(0) was accepted");
    }
    if (s.kind == Kind::delimiter && s.delimiter.empty()) {
        try {
            (void)make_decoder(s);
        } catch (const ferry::Error& e) {
            FUZZ_CHECK(e.code() == std::errc::invalid_argument);
            return 0;
        }
        FUZZ_FAIL("an empty delimiter was accepted");
    }

    const Outcome whole = decode(s, input, [&] { return input.size(); });
    std::minstd_rand rng(seed);
    std::uniform_int_distribution<std::size_t> chunk(1, largest_chunk);
    FUZZ_CHECK(decode(s, input, [&] { return chunk(rng); }) == whole);
    // One byte at a time splits every header and delimiter; on short inputs only, where
    // it costs little (the chunks above may be of one byte too).
    if (input.size() <= kBytewiseUpTo)
        FUZZ_CHECK(decode(s, input, [] { return std::size_t{1}; }) == whole);
    return 0;
}
