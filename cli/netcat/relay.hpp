// Internal to the ferry command: the relay behind `ferry connect` and `ferry listen`,
// standard input to a socket and the socket to standard output (nc's readwrite).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ferry/socket.hpp"

namespace ferry::cli {

struct RelayOptions {
    /// -q: once input has ended and all of it was sent, end the session this
    /// long afterwards (zero: at once). nullopt: the half-close, i.e. shut
    /// down the writing side and keep printing what arrives until the peer
    /// ends too.
    std::optional<Duration> quit_after_eof;
    /// -w: end the session when no data has moved either way for this long.
    std::optional<Duration> idle_timeout;
    /// Polled with the rest; readable means "stop now" (listen's signalfd). -1: none.
    int stop_fd = -1;
    int in_fd = STDIN_FILENO;
    int out_fd = STDOUT_FILENO;
};

/// How a session ended.
enum class RelayEnd {
    done,     ///< both directions finished: input ended and was sent, the peer's data ended and was
              ///< written
    quit,     ///< -q: the time after end of input passed
    idle,     ///< -w: no data either way for the idle timeout
    stopped,  ///< stop_fd became readable
};

/// Copies standard input to a connected socket and the socket to standard
/// output, both at once, with one poll(2) over the four ends: a small state
/// machine per direction (open, draining its buffer, done), as OpenBSD nc's
/// readwrite(). The socket is non-blocking; standard input and output are
/// used in whatever mode they come (pipe, file or terminal), and only read or
/// written once poll says so.
///
/// End of input: the buffered input is sent, then the writing side of a
/// stream socket is shut down (the peer sees end of stream) and the relay
/// keeps writing what arrives until the peer's end of stream. A datagram
/// socket has no end of stream: its session ends only by -q, -w or stop_fd.
/// An empty datagram writes nothing.
///
/// Zero copy: on a stream socket, a standard input that is a pipe, a FIFO or
/// a regular file is moved to the socket with splice(2) through a pipe of
/// the relay's own (input -> pipe -> socket), and the socket to a standard
/// output that is one of those likewise (socket -> pipe -> output): the
/// bytes never pass through user space, with the same poll(2) state machine
/// (the pipe takes the place of the buffer). A terminal, a device (the null
/// device) or a socket is read and written through the buffer, as is a
/// datagram or SOCK_SEQPACKET session, and standard input when SIGPIPE is not
/// ignored (splice(2) into a reset socket raises it; the ferry command
/// ignores it). A descriptor that refuses splice(2) after all (EINVAL) falls
/// back to the buffer; so does a direction for which no pipe can be opened.
///
/// A SOCK_SEQPACKET socket is relayed message by message: each read of
/// standard input (at most kMessageChunk bytes) is sent as one message, each
/// message received is written out whole before the next is read, and a
/// message longer than kMessageChunk ends the session with Error
/// (Errc::frame_too_large) rather than being written cut short. End of input
/// is the half-close, as on a stream. An empty message reads as the peer's
/// end of stream (the kernel cannot tell them apart).
///
/// One Relay serves one session at a time and remembers end of input across
/// sessions (listen -k: once input has ended, later clients get end of input
/// at once).
///
/// Errors: network failures throw ferry::Error naming the call and the peer
/// (`recv from 127.0.0.1:1060: Connection reset by peer`); failures of the
/// standard streams throw Failure (`write to standard output: Broken pipe`).
class Relay {
  public:
    explicit Relay(const RelayOptions& options);
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    /// Relays between the standard streams and `sock` (connected) until the
    /// session ends. `sock` is made non-blocking; `peer` names it in errors.
    RelayEnd run(Socket& sock, const std::string& peer);

    [[nodiscard]] bool input_ended() const noexcept { return input_ended_; }

    /// Stream sockets and datagram sockets move at most this much per call.
    static constexpr std::size_t kStreamChunk = 64 * 1024;
    /// The largest UDP payload over IPv4 (65535 - 20 - 8): one read of input, one datagram.
    static constexpr std::size_t kDatagramChunk = 65507;
    /// SOCK_SEQPACKET: the largest message sent (one read of input) and received.
    static constexpr std::size_t kMessageChunk = 64 * 1024;

  private:
    class Buffer;
    /// Which directions splice (see the class comment).
    struct SpliceMode {
        bool input = false;   // standard input -> socket
        bool output = false;  // socket -> standard output
    };
    [[nodiscard]] SpliceMode splice_mode(int socktype) const;

    RelayOptions options_;
    std::unique_ptr<Buffer> up_;    // standard input -> socket
    std::unique_ptr<Buffer> down_;  // socket -> standard output
    bool input_ended_ = false;
};

// --- The options connect and listen share ------------------------------------

/// -u, -U, --seqpacket, -4, -6, -q, -w as given on the command line.
struct NetcatOptions {
    bool udp = false;
    std::string unix_path;   ///< -U: empty when not given
    bool seqpacket = false;  ///< --seqpacket: -U is SOCK_SEQPACKET
    bool ipv4 = false;
    bool ipv6 = false;
    std::optional<double> quit;  ///< -q seconds
    std::optional<double> wait;  ///< -w seconds

    [[nodiscard]] int family() const { return ipv4 ? AF_INET : ipv6 ? AF_INET6 : AF_UNSPEC; }
    [[nodiscard]] int socktype() const {
        return udp ? SOCK_DGRAM : seqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
    }
    [[nodiscard]] RelayOptions relay_options(int stop_fd) const;
};

/// Adds -u, -U, --seqpacket, -4, -6, -q and -w to `cmd`; `wait_help` says what -w means there.
void add_netcat_options(CLI::App* cmd, NetcatOptions& o, const std::string& wait_help);

/// Checks the combinations the options alone decide (-U with -u, -4 or -6,
/// --seqpacket without -U or with -u, a -U path too long for sun_path);
/// throws CLI::ValidationError (exit 2).
void check_netcat_options(const NetcatOptions& o);

/// A host as given: `[::1]` (as in `[::1]:1060`) becomes `::1`.
std::string strip_brackets(const std::string& host);

/// A port for -u (udp) or not (tcp), or CLI::ValidationError (exit 2).
std::uint16_t checked_port(const std::string& text, const NetcatOptions& o);

/// The one line a session ended by -w prints.
std::string idle_message(const NetcatOptions& o, const std::string& peer);

/// Makes sure descriptors 0, 1 and 2 are open (on the null device when not),
/// so that no socket opened later takes one of their numbers and gets
/// mistaken for a standard stream. Call before opening any socket.
void keep_standard_streams_open();

}  // namespace ferry::cli
