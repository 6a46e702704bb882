// ferry/server/stream_handler.hpp: what a stream server does with a connection's bytes, whatever
// the model.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "ferry/buffer.hpp"
#include "ferry/error.hpp"

namespace ferry {

/// The front of an input that an echo sends back as it is (StreamHandler::echo_span).
struct EchoSpan {
    std::size_t bytes = 0;     ///< bytes of whole messages at the front of the input
    std::size_t messages = 0;  ///< how many messages those bytes hold
};

/// A service over a byte stream, shared by every connection and every server
/// model: it keeps no per-connection state of its own (the state is what is
/// left in `input`), so one instance serves all connections, from any thread.
///
/// On a message socket (a StreamServer on SOCK_SEQPACKET) the same handler
/// sees one message at a time: `input` holds exactly one message, everything
/// appended to `output` in that call goes out as one reply message (nothing
/// appended: no reply), and bytes left in `input` drop the connection
/// (Errc::bad_frame), as a message is never continued by the next one.
class StreamHandler {
  public:
    virtual ~StreamHandler() = default;

    /// Takes the whole messages at the front of `input`, appends their replies
    /// to `output`, and returns how many messages it handled. Bytes of an
    /// incomplete message stay in `input` for the next call. Throws Error
    /// (Errc::frame_too_large, Errc::bad_frame) to have the connection dropped.
    virtual std::size_t on_data(Buffer& input, Buffer& output) const = 0;

    /// Whether the reply to any bytes is those bytes, unchanged and at once
    /// (a raw echo): on_data() would move its whole input to its output and
    /// count one message. A model may then skip on_data() and send straight
    /// from its read buffer, keeping only what the socket did not take.
    /// Default: false.
    [[nodiscard]] virtual bool echoes_input() const noexcept { return false; }

    /// For a model that receives into memory of its own and can send a reply
    /// from where it was received, with no copy (the io_uring model's
    /// provided buffers): when this handler's reply to the whole messages at
    /// the front of `input` is exactly those bytes (an echo), how many bytes
    /// and messages that is. The model then sends and drops those bytes
    /// itself, as if on_data had moved them to the output. Throws as on_data
    /// does (Errc::frame_too_large). Default: nullopt for every input, which
    /// means "not an echo": replies are made by on_data. A handler answers
    /// nullopt for every input or for none.
    [[nodiscard]] virtual std::optional<EchoSpan> echo_span(std::string_view input) const {
        (void)input;
        return std::nullopt;
    }

    /// What a client refused for lack of room is told before the close.
    [[nodiscard]] virtual std::string_view refusal() const {
        return "ERR max number of clients reached\r\n";
    }

    /// Called when a connection is dropped for what it sent: a frame or
    /// message over the maximum, a malformed one (`why` says which and how
    /// large). Called from the thread, or the forked process, that served the
    /// connection, so it must be thread-safe; it must not throw. Default:
    /// nothing (the drop is counted in ServerStats::dropped_bad_frame either way).
    virtual void on_frame_error(const Error& why) const noexcept { (void)why; }
};

/// How a byte stream is cut into messages.
struct Framing {
    /// raw: whatever arrived; line: up to a newline; fixed: fixed_size bytes;
    /// length: a 32-bit big-endian length, then that many bytes.
    enum class Kind { raw, line, fixed, length };
    /// How messages are delimited.
    Kind kind = Kind::raw;
    std::size_t fixed_size = 0;  ///< for Kind::fixed

    /// Parses `raw`, `line`, `fixed:N` or `length`; throws Error(EINVAL) naming the text.
    static Framing parse(std::string_view text);
    /// The text parse() takes: `raw`, `line`, `fixed:N` or `length`.
    [[nodiscard]] std::string to_string() const;
};

/// The echo service: every message comes back unchanged (with its newline or
/// length prefix). `raw` echoes whatever arrived, as it arrived. A message
/// over `max_frame` bytes drops the connection before it is buffered whole.
class EchoHandler final : public StreamHandler {
  public:
    /// Echoes messages cut by `framing`, each of at most `max_frame` bytes.
    EchoHandler(Framing framing, std::size_t max_frame);
    std::size_t on_data(Buffer& input, Buffer& output) const override;
    /// True for Framing::Kind::raw.
    [[nodiscard]] bool echoes_input() const noexcept override {
        return framing_.kind == Framing::Kind::raw;
    }

    /// The whole messages at the front of `input` under the framing (raw: all of it).
    [[nodiscard]] std::optional<EchoSpan> echo_span(std::string_view input) const override;

  private:
    Framing framing_;
    std::size_t max_frame_;
};

}  // namespace ferry
