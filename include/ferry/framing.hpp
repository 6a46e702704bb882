// ferry/framing.hpp: message boundaries over a byte stream, each bounded by a maximum size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ferry/socket.hpp"

namespace ferry {

/// An incremental decoder: feed() the bytes as they arrive, in chunks of any
/// size, and take whole messages out with next(). A peer can never make it
/// hold more than its maximum message size plus one feed: next() throws
/// Error(Errc::frame_too_large) as soon as a message is known to exceed the
/// maximum, before storing it (a length prefix is checked on its own four bytes).
///
/// Thread-safety: none; one decoder per connection.
class FrameDecoder {
  public:
    virtual ~FrameDecoder() = default;

    /// Appends `size` bytes that arrived; decoding waits for next().
    void feed(const void* data, std::size_t size);
    /// Appends the bytes of `data`.
    void feed(std::string_view data) { feed(data.data(), data.size()); }
    /// The next complete message, or nullopt until more bytes arrive.
    virtual std::optional<std::string> next() = 0;
    /// The fewest bytes the message being assembled needs in all (for the
    /// "was expecting N bytes" report when the stream ends inside it).
    [[nodiscard]] virtual std::size_t wanted() const = 0;
    /// Bytes received but not yet returned as a message.
    [[nodiscard]] std::size_t buffered() const noexcept { return buffer_.size() - start_; }
    /// The largest message this decoder accepts, in bytes.
    [[nodiscard]] std::size_t max_size() const noexcept { return max_size_; }

  protected:
    /// For subclasses: a decoder of messages of at most `max_size` bytes.
    explicit FrameDecoder(std::size_t max_size) : max_size_(max_size) {}
    /// The bytes fed and not yet taken out as a message.
    [[nodiscard]] std::string_view pending() const noexcept {
        return std::string_view(buffer_).substr(start_);
    }
    /// Removes `skip` bytes after taking `size` bytes out as a message.
    std::string take(std::size_t size, std::size_t skip = 0);
    /// Throws Error(Errc::frame_too_large) for a message of `size` bytes.
    [[noreturn]] void too_large(std::size_t size) const;

  private:
    std::size_t max_size_;
    std::string buffer_;
    std::size_t start_ = 0;  // consumed prefix, compacted lazily to keep take() O(message)
};

/// Every message is exactly `size` bytes. A size of 0 throws std::invalid_argument
/// (empty messages would come out forever, without taking a byte).
class FixedLengthDecoder final : public FrameDecoder {
  public:
    /// Messages of exactly `size` bytes (at least 1).
    explicit FixedLengthDecoder(std::size_t size);
    std::optional<std::string> next() override;
    [[nodiscard]] std::size_t wanted() const override;
};

/// Messages end with `delimiter` (default "\n"), which next() strips.
class DelimiterDecoder final : public FrameDecoder {
  public:
    /// Messages of at most `max_size` bytes, the delimiter not counted.
    explicit DelimiterDecoder(std::size_t max_size, std::string delimiter = "\n");
    std::optional<std::string> next() override;
    [[nodiscard]] std::size_t wanted() const override;

  private:
    std::string delimiter_;
    std::size_t searched_ = 0;  // bytes of pending() already known to hold no delimiter
};

/// Messages follow a 32-bit big-endian length.
class LengthPrefixDecoder final : public FrameDecoder {
  public:
    /// Messages of at most `max_size` bytes, the prefix not counted.
    explicit LengthPrefixDecoder(std::size_t max_size) : FrameDecoder(max_size) {}
    std::optional<std::string> next() override;
    [[nodiscard]] std::size_t wanted() const override;
};

/// The wire form of one length-prefixed message (throws frame_too_large past 4 GiB - 1).
std::string encode_length_prefixed(std::string_view message);

/// Reads from `socket` until `decoder` yields a message. Returns nullopt at a
/// clean end of stream (nothing buffered); an end of stream inside a message
/// throws ShortReadError with the bytes that were held. Honours the socket's
/// timeout as one deadline for the whole message.
std::optional<std::string> read_frame(Socket& socket, FrameDecoder& decoder);

/// End-of-stream framing: everything until the peer shuts down its side, at
/// most `max_size` bytes (more throws frame_too_large).
std::string recv_until_eof(Socket& socket, std::size_t max_size);

}  // namespace ferry
