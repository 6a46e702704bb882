#include "ferry/framing.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "ferry/byte_order.hpp"
#include "ferry/error.hpp"

namespace ferry {

void FrameDecoder::feed(const void* data, std::size_t size) {
    // Compact once the consumed prefix dominates, so the buffer never grows
    // with the total traffic, only with what is pending.
    if (start_ > 0 && start_ >= buffer_.size() / 2) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    buffer_.append(static_cast<const char*>(data), size);
}

std::string FrameDecoder::take(std::size_t size, std::size_t skip) {
    std::string message = buffer_.substr(start_, size);
    start_ += size + skip;
    if (start_ == buffer_.size()) {
        buffer_.clear();
        start_ = 0;
    }
    return message;
}

void FrameDecoder::too_large(std::size_t size) const {
    throw Error(
        make_error_code(Errc::frame_too_large),
        "frame of " + std::to_string(size) + "+ bytes (maximum " + std::to_string(max_size_) + ")");
}

FixedLengthDecoder::FixedLengthDecoder(std::size_t size) : FrameDecoder(size) {
    if (size == 0)
        throw std::invalid_argument("fixed-length framing needs a message size of at least 1 byte");
}

std::optional<std::string> FixedLengthDecoder::next() {
    if (buffered() < max_size()) return std::nullopt;
    return take(max_size());
}

DelimiterDecoder::DelimiterDecoder(std::size_t max_size, std::string delimiter)
    : FrameDecoder(max_size), delimiter_(std::move(delimiter)) {
    if (delimiter_.empty())
        throw Error(std::make_error_code(std::errc::invalid_argument),
                    "delimiter framing with an empty delimiter");
}

std::optional<std::string> DelimiterDecoder::next() {
    const std::string_view data = pending();
    // Resume where the last search stopped, backing up so a delimiter split
    // across two feeds is still found.
    const std::size_t from = searched_ >= delimiter_.size() ? searched_ - delimiter_.size() + 1 : 0;
    const std::size_t at = data.find(delimiter_, from);
    if (at == std::string_view::npos) {
        searched_ = data.size();
        // All but a delimiter's first bytes (which may have arrived) belong to the
        // message; counted without adding to max_size(), which may be SIZE_MAX.
        const std::size_t partial_delimiter = std::min(data.size(), delimiter_.size() - 1);
        if (data.size() - partial_delimiter > max_size()) too_large(data.size());
        return std::nullopt;
    }
    if (at > max_size()) too_large(at);
    searched_ = 0;
    return take(at, delimiter_.size());
}

std::size_t FixedLengthDecoder::wanted() const {
    return max_size();
}
std::size_t DelimiterDecoder::wanted() const {
    return buffered() + delimiter_.size();
}
std::size_t LengthPrefixDecoder::wanted() const {
    if (buffered() < 4) return 4;
    return 4 + std::size_t{load_be32(pending().data())};
}

std::optional<std::string> LengthPrefixDecoder::next() {
    const std::string_view data = pending();
    if (data.size() < 4) return std::nullopt;
    const std::uint32_t length = load_be32(data.data());
    if (length > max_size()) too_large(length);
    if (data.size() - 4 < length) return std::nullopt;
    take(0, 4);
    return take(length);
}

std::string encode_length_prefixed(std::string_view message) {
    if (message.size() > UINT32_MAX)
        throw Error(make_error_code(Errc::frame_too_large),
                    "length prefix for " + std::to_string(message.size()) + " bytes");
    std::string wire(4 + message.size(), '\0');
    store_be32(wire.data(), static_cast<std::uint32_t>(message.size()));
    std::memcpy(wire.data() + 4, message.data(), message.size());
    return wire;
}

std::optional<std::string> read_frame(Socket& socket, FrameDecoder& decoder) {
    const Deadline deadline = socket.deadline_from_now();
    char buffer[64 * 1024];
    for (;;) {
        if (auto message = decoder.next()) return message;
        const std::size_t n = socket.recv_before(buffer, sizeof buffer, deadline);
        if (n == 0) {
            if (decoder.buffered() == 0) return std::nullopt;
            throw ShortReadError("read_frame", decoder.wanted(), decoder.buffered());
        }
        decoder.feed(buffer, n);
    }
}

std::string recv_until_eof(Socket& socket, std::size_t max_size) {
    const Deadline deadline = socket.deadline_from_now();
    std::string data;
    char buffer[64 * 1024];
    for (;;) {
        const std::size_t n = socket.recv_before(buffer, sizeof buffer, deadline);
        if (n == 0) return data;
        if (data.size() + n > max_size)
            throw Error(make_error_code(Errc::frame_too_large),
                        "stream longer than " + std::to_string(max_size) + " bytes");
        data.append(buffer, n);
    }
}

}  // namespace ferry
