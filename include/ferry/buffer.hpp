// ferry/buffer.hpp: a byte buffer for non-blocking I/O: framing room in front, one-call reads,
// backpressure.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>
#include <vector>

#include "ferry/socket.hpp"

namespace ferry {

/// A growable byte queue shaped for a connection's input or output:
///
///   [ prependable | readable (peek..) | writable ]
///
/// - Nothing is allocated until the first byte arrives, so an idle
///   connection costs only this object; release() gives memory back.
/// - read_from() drains a socket in one readv(2): into the writable room and
///   a 64 KiB stack spill, so a small buffer never makes a read short.
/// - prepend() writes a header (a length prefix) in front of a message
///   already in the buffer, without moving it, when the room is there.
/// Thread-safety: none.
class Buffer {
  public:
    /// Bytes kept free in front of the readable ones, for a header prepend() adds.
    static constexpr std::size_t kPrependRoom = 8;
    /// read_from() always offers at least this much room (its stack spill):
    /// a read that returns less has drained the socket.
    static constexpr std::size_t kReadSpill = 64 * 1024;

    /// Readable bytes.
    [[nodiscard]] std::size_t size() const noexcept { return write_ - read_; }
    /// Whether no byte is readable.
    [[nodiscard]] bool empty() const noexcept { return write_ == read_; }
    /// The first readable byte. Never null: before the first allocation (and
    /// after release()) it points at a static zero byte, since there is no
    /// storage to add the prepend room to.
    [[nodiscard]] const char* data() const noexcept {
        return bytes_.empty() ? &kNoStorage : bytes_.data() + read_;
    }
    /// The readable bytes; valid until the next call that changes the buffer.
    [[nodiscard]] std::string_view view() const noexcept { return {data(), size()}; }

    /// Adds `n` bytes at the end, growing the storage when needed.
    void append(const void* data, std::size_t n);
    /// Adds the bytes of `s` at the end.
    void append(std::string_view s) { append(s.data(), s.size()); }
    /// Puts `n` bytes in front of the readable ones (n <= kPrependRoom is always cheap).
    void prepend(const void* data, std::size_t n);
    /// Drops `n` readable bytes from the front.
    void consume(std::size_t n) noexcept;
    /// Drops every readable byte; keeps the storage (see release()).
    void clear() noexcept { read_ = write_ = kPrependRoom; }
    /// Frees the storage when empty (an idle connection goes back to zero bytes).
    void release() noexcept;
    /// Bytes of storage held (0 after release()).
    [[nodiscard]] std::size_t capacity() const noexcept { return bytes_.capacity(); }

    /// One readv() from `fd`: returns bytes read (0 = end of stream), or
    /// empty when it would block. Throws Error (`recv: Connection reset by peer`).
    IoResult read_from(int fd);
    /// One send() of the readable bytes (MSG_NOSIGNAL); consumes what was
    /// sent. Empty when it would block. Throws Error.
    IoResult write_to(int fd);

  private:
    static constexpr char kNoStorage = '\0';

    void make_room(std::size_t n);

    std::vector<char> bytes_;
    std::size_t read_ = kPrependRoom;
    std::size_t write_ = kPrependRoom;
};

}  // namespace ferry
