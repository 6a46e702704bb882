// ferry/server/connection_io.hpp: how a server connection's bytes are read, handed to the
// StreamHandler and written back, as a byte stream or one message at a time (SOCK_SEQPACKET).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "ferry/buffer.hpp"
#include "ferry/server/stream_handler.hpp"

namespace ferry {

/// The replies waiting to go out on one connection.
///
/// On a byte stream they are bytes, sent in as few calls as the socket
/// takes. On a message socket each reply is sealed with end_message() and
/// goes out in a send(2) of its own: two replies are never merged, one is
/// never split. (Bytes never sealed go out as a stream: a byte-stream
/// connection simply never calls end_message().)
///
/// Costs nothing beyond an empty Buffer until a message is sealed.
/// Thread-safety: none; one connection is served by one thread at a time.
class Outbox {
  public:
    /// Where replies are appended (StreamHandler::on_data's `output`).
    [[nodiscard]] Buffer& bytes() noexcept { return bytes_; }
    /// Seals the bytes appended since the last seal as one message. With
    /// none appended there is no message (an empty one would read as end of
    /// stream on SOCK_SEQPACKET).
    void end_message();

    /// Bytes waiting to go out, sealed or not.
    [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
    /// Whether nothing waits to go out.
    [[nodiscard]] bool empty() const noexcept { return bytes_.empty(); }
    /// Frees the storage when empty (an idle connection costs no buffer memory).
    void release() noexcept;

    /// What the next send must carry: the first sealed message, or every byte when none is sealed.
    [[nodiscard]] std::string_view next() const noexcept;
    /// A send of next() took `n` bytes: they are dropped from the front. A
    /// message socket sends a message whole or not at all, so a part of a
    /// message throws Error(EMSGSIZE) rather than let the rest go out as a
    /// message of its own.
    void sent(std::size_t n);
    /// Sends what the socket takes now (MSG_NOSIGNAL): on a stream one
    /// send(2) of every byte; sealed messages one send(2) each, until all are
    /// out or the socket is full. Returns the bytes sent; empty when the first
    /// send would block. Throws Error: `send: Message too long` for a message
    /// larger than the send buffer (see fit_send_buffer), `send: Broken pipe`.
    IoResult write_to(int fd);

  private:
    struct Messages {
        std::vector<std::size_t> sizes;  // of the sealed messages, in order
        std::size_t first = 0;           // the next to go out
        std::size_t sealed_bytes = 0;    // bytes covered by sizes[first..]
    };
    Buffer bytes_;
    std::unique_ptr<Messages> messages_;  // made by the first end_message()
};

/// A connection's reads and the StreamHandler call between a read and the
/// replies: the one place where the server models treat a byte stream and a
/// message socket differently.
///
/// - Byte stream (TCP, Unix SOCK_STREAM; the default-constructed one): a
///   read takes whatever has arrived; the handler finds messages in the bytes
///   by its framing.
/// - Messages (Unix SOCK_SEQPACKET; ConnectionIo(max_message)): a read takes
///   exactly one message, into a buffer of max_message bytes, and a longer
///   message is an error (MSG_TRUNC), never a shortened message. The handler
///   sees that one message alone in its input and must take all of it; what it
///   appends is sealed as one reply message.
///
/// Thread-safety: none. It owns the message read buffer (allocated at the
/// first read, left untouched beyond the bytes the kernel writes): one per
/// thread, or per connection in the blocking models.
class ConnectionIo {
  public:
    /// A byte stream.
    ConnectionIo() = default;
    /// Messages of 1 to `max_message` bytes. Throws Error(EINVAL) for 0.
    explicit ConnectionIo(std::size_t max_message);

    /// Whether reads take one message each (SOCK_SEQPACKET) rather than a stream's bytes.
    [[nodiscard]] bool messages() const noexcept { return max_message_ != 0; }
    /// The largest message a read takes (0 for a byte stream).
    [[nodiscard]] std::size_t max_message() const noexcept { return max_message_; }

    /// Readies a newly accepted connection: for messages, a send buffer that
    /// takes the largest reply (fit_send_buffer). Throws Error.
    void prepare(int fd) const;

    /// One read from `fd` into `in`: 0 = end of stream, empty = would block.
    /// Stream: one Buffer::read_from. Messages: one recv_message, the message
    /// appended to `in` (which the previous handle() left empty); throws
    /// Error(Errc::frame_too_large) for one over max_message. Other failures
    /// throw Error (`recv: Connection reset by peer`).
    IoResult read(int fd, Buffer& in);

    /// Whether a read that returned `n` bytes left the socket empty, so that
    /// reading again now would only say "would block": a stream read that
    /// filled less than the room Buffer::read_from offers. Never assumed for
    /// messages, where every read is one message whatever its size.
    [[nodiscard]] bool drained_by(std::size_t n) const noexcept;

    /// For models whose receives complete elsewhere (io_uring): appends a
    /// completed receive of `n` bytes from `data` to `in`. For messages the
    /// receive must have had room for max_message + 1 bytes and the flag
    /// MSG_TRUNC (which makes it return the real length), so that `n` above
    /// max_message means a message too large: Error(Errc::frame_too_large).
    void received(const char* data, std::size_t n, Buffer& in) const;

    /// Runs `handler` over `in`, appends the replies to `out`, and returns how
    /// many messages it handled. Stream: StreamHandler::on_data. Messages: the
    /// reply is sealed as one message; bytes the handler leaves in `in` mean
    /// the message was not whole under its framing: Error(Errc::bad_frame).
    /// Throws what the handler throws.
    std::size_t handle(const StreamHandler& handler, Buffer& in, Outbox& out) const;

  private:
    std::size_t max_message_ = 0;  // 0: a byte stream
    std::unique_ptr<char[]> area_;
};

}  // namespace ferry
