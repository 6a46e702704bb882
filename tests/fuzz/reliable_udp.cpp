// Fuzzes the request IDs of reliable UDP (ferry/reliable_udp.hpp): splitting a datagram into
// its ID and payload and building one are inverses, and the client's reply matching takes a
// datagram for the current request only when it carries that request's sequence number and
// the number of a try that went out, whatever bytes a peer sends.
//
// Input: the reply datagram, then (from the end) the request's sequence number, how many
// tries went out, the try to answer, and another request's sequence number.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <string>

#include "check.hpp"
#include "ferry/reliable_udp.hpp"

namespace {

constexpr std::uint32_t kSequenceMask = 0xFFFFFF;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto sequence = in.ConsumeIntegral<std::uint32_t>() & kSequenceMask;
    const auto tries_sent = in.ConsumeIntegralInRange<std::size_t>(0, 255);
    const auto attempt = in.ConsumeIntegralInRange<unsigned>(0, 256);
    const auto other = in.ConsumeIntegral<std::uint32_t>() & kSequenceMask;
    const std::string bytes = in.ConsumeRemainingBytesAsString();

    // Any datagram of 4 bytes or more is an ID and a payload, and builds back to itself.
    const auto split = ferry::split_request_id(bytes);
    FUZZ_CHECK(split.has_value() == (bytes.size() >= 4));
    if (split) FUZZ_CHECK(ferry::with_request_id(split->first, split->second) == bytes);

    // Any ID and payload survive the wire.
    const std::uint32_t id = ferry::request_id(sequence, attempt);
    const std::string wire = ferry::with_request_id(id, bytes);
    const auto back = ferry::split_request_id(wire);
    FUZZ_CHECK(back && back->first == id && back->second == bytes);

    // A reply to a try that went out is taken, with its payload; any other is not.
    const auto answer = ferry::match_reply(wire, sequence, tries_sent);
    const bool was_sent = attempt >= 1 && attempt <= tries_sent;
    FUZZ_CHECK(answer.has_value() == was_sent);
    if (answer) FUZZ_CHECK(answer->attempt == attempt && answer->payload == bytes);

    // A reply to another request is never taken for this one.
    if (other != sequence)
        FUZZ_CHECK(
            !ferry::match_reply(ferry::with_request_id(ferry::request_id(other, attempt), bytes),
                                sequence, tries_sent));

    // Whatever a peer sends: taken only as an exact reply to a try that went out.
    if (const auto taken = ferry::match_reply(bytes, sequence, tries_sent)) {
        FUZZ_CHECK(taken->attempt >= 1 && taken->attempt <= tries_sent);
        FUZZ_CHECK(ferry::with_request_id(ferry::request_id(sequence, taken->attempt),
                                          taken->payload) == bytes);
    }
    return 0;
}
