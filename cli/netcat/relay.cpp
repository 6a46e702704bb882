// Internal to the ferry command: the relay behind connect and listen (see relay.hpp).
#include "netcat/relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/core.h>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "ferry/address.hpp"
#include "ferry/error.hpp"
#include "ferry/server/message_io.hpp"
#include "ferry/splice_pipe.hpp"
#include "ferry/time.hpp"

namespace ferry::cli {

/// One direction's bytes in flight: read into [0, end), written out from `begin`.
class Relay::Buffer {
  public:
    explicit Buffer(std::size_t capacity) : data_(capacity) {}
    [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
    [[nodiscard]] char* space() noexcept { return data_.data(); }
    [[nodiscard]] const char* pending() const noexcept { return data_.data() + begin_; }
    [[nodiscard]] std::size_t pending_size() const noexcept { return end_ - begin_; }
    /// Only an empty buffer is refilled, from its start: one read, then write it all out.
    void filled(std::size_t n) noexcept {
        begin_ = 0;
        end_ = n;
    }
    void consumed(std::size_t n) noexcept {
        begin_ += n;
        if (begin_ == end_) clear();
    }
    void clear() noexcept { begin_ = end_ = 0; }

  private:
    std::vector<char> data_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

namespace {

[[noreturn]] void stream_failure(const char* what) {
    throw Failure(fmt::format("{}: {}", what, std::strerror(errno)));
}

bool transient(int err) {
    return err == EINTR || err == EAGAIN || err == EWOULDBLOCK;
}

/// Whether `fd` is a pipe, a FIFO or a regular file: splice(2) moves its bytes
/// without a copy. A terminal, a device (the null device) or a socket is copied.
/// A file opened for appending (`>>`) is written, not spliced: splice(2) refuses O_APPEND.
bool spliceable(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode))) return false;
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && (flags & O_APPEND) == 0;
}

/// A pipe to splice through for one direction, or null when splicing does
/// not apply (`wanted` false) or no pipe can be had (out of descriptors).
std::unique_ptr<SplicePipe> pipe_if(bool wanted) {
    if (!wanted) return nullptr;
    try {
        return std::make_unique<SplicePipe>();
    } catch (const Error&) {
        return nullptr;
    }
}

std::optional<Clock::time_point> earliest(std::optional<Clock::time_point> a,
                                          std::optional<Clock::time_point> b) {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

}  // namespace

Relay::Relay(const RelayOptions& options)
    : options_(options),
      up_(std::make_unique<Buffer>(kStreamChunk)),
      down_(std::make_unique<Buffer>(kStreamChunk)) {}

Relay::~Relay() = default;

Relay::SpliceMode Relay::splice_mode(int socktype) const {
    // Byte streams only: a datagram or a SOCK_SEQPACKET message is one read,
    // one send, which a pipe would merge or cut. Into a socket, splice(2)
    // raises SIGPIPE on a reset peer: only where that is ignored (it is in
    // the ferry command).
    if (socktype != SOCK_STREAM) return {};
    return {sigpipe_ignored() && spliceable(options_.in_fd), spliceable(options_.out_fd)};
}

RelayEnd Relay::run(Socket& sock, const std::string& peer) {
    sock.set_blocking(false);
    const int type = sock.type();
    const bool stream = type != SOCK_DGRAM;  // has an end of stream (SOCK_SEQPACKET too)
    const bool messages = type == SOCK_SEQPACKET;
    const std::size_t in_chunk = messages ? kMessageChunk : stream ? kStreamChunk : kDatagramChunk;
    // One read of input is one message, and a message larger than the send
    // buffer is refused (EMSGSIZE) rather than waited for.
    if (messages) fit_send_buffer(sock.fd(), kMessageChunk);
    const int net = sock.fd();
    const int in = options_.in_fd;
    const int out = options_.out_fd;
    // A write to a regular file or a device such as the null device never
    // waits for a reader: it goes out straight after the recv, one poll(2)
    // fewer per chunk. A pipe, a FIFO or a socket is written only once poll
    // says it has room, so that a reader that stops reading never blocks the
    // relay in write(2) while the other direction could go on.
    const bool out_never_waits = [out] {
        struct stat st {};
        return ::fstat(out, &st) == 0 && (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)) &&
               ::isatty(out) == 0;
    }();
    // Input read for an earlier client is not this client's to receive.
    up_->clear();
    down_->clear();
    const SpliceMode splicing = splice_mode(type);
    // A session's own: listen -k holds no descriptor between clients.
    std::unique_ptr<SplicePipe> up_pipe = pipe_if(splicing.input);
    std::unique_ptr<SplicePipe> down_pipe = pipe_if(splicing.output);
    // What is read and not yet passed on, in the pipe or the buffer.
    const auto up_empty = [&] { return up_pipe ? up_pipe->empty() : up_->empty(); };
    const auto down_empty = [&] { return down_pipe ? down_pipe->empty() : down_->empty(); };

    bool net_read_open = true;   // the peer may still send
    bool net_write_open = true;  // we may still send (until end of input was passed on)
    std::optional<Clock::time_point> input_done_at;
    Clock::time_point last_data = Clock::now();

    const auto send_pending = [&] {
        if (up_pipe) {
            try {
                if (const IoResult n = up_pipe->drain_to(net); n && *n > 0)
                    last_data = Clock::now();
            } catch (const Error& e) {
                throw_errno(e.code().value(), "send to " + peer);
            }
            return;
        }
        const ssize_t n = ::send(net, up_->pending(), up_->pending_size(), MSG_NOSIGNAL);
        if (n >= 0) {
            up_->consumed(static_cast<std::size_t>(n));
            last_data = Clock::now();
        } else if (!transient(errno)) {
            throw_errno("send to " + peer);
        }
    };
    const auto write_pending = [&] {
        if (down_pipe) {
            try {
                if (const IoResult n = down_pipe->drain_to(out); n && *n > 0)
                    last_data = Clock::now();
            } catch (const Error& e) {
                errno = e.code().value();
                stream_failure("write to standard output");
            }
            return;
        }
        const ssize_t n = ::write(out, down_->pending(), down_->pending_size());
        if (n >= 0) {
            down_->consumed(static_cast<std::size_t>(n));
            last_data = Clock::now();
        } else if (!transient(errno)) {
            stream_failure("write to standard output");
        }
    };
    // Data already taken off the socket is written out before -q ends the
    // session: it was received, so it is delivered. (A stop signal does not
    // wait for standard output: stopping must not hang on a stalled reader.)
    const auto flush_received = [&] {
        while (!down_empty()) {
            pollfd p{out, POLLOUT, 0};
            if (poll_until({&p, 1}, std::nullopt) == 0) continue;
            if ((p.revents & POLLNVAL) != 0) {
                errno = EBADF;
                stream_failure("write to standard output");
            }
            write_pending();
        }
    };

    for (;;) {
        // End of input goes to the peer once everything read before it was sent.
        if (net_write_open && input_ended_ && up_empty()) {
            net_write_open = false;
            input_done_at = Clock::now();
            // ENOTCONN: the peer has already reset the connection, and there is
            // nobody left to tell; a pending error shows up on the next recv.
            if (stream && ::shutdown(net, SHUT_WR) != 0 && errno != ENOTCONN)
                throw_errno("shutdown of " + peer);
        }
        if (!net_write_open && !net_read_open && down_empty()) return RelayEnd::done;

        std::optional<Clock::time_point> quit_at;
        if (input_done_at && options_.quit_after_eof) {
            quit_at = *input_done_at + *options_.quit_after_eof;
            if (Clock::now() >= *quit_at) {
                flush_received();
                return RelayEnd::quit;
            }
        }
        std::optional<Clock::time_point> idle_at;
        if (options_.idle_timeout) idle_at = last_data + *options_.idle_timeout;

        // Each end is polled only for what the state machine can act on now,
        // so that a condition poll always reports (POLLHUP, POLLERR) cannot
        // spin the loop: a socket with nothing to do is left out.
        enum { kStop, kIn, kNet, kOut, kCount };
        pollfd fds[kCount] = {};
        fds[kStop] = {options_.stop_fd, POLLIN, 0};
        fds[kIn] = {!input_ended_ && up_empty() ? in : -1, POLLIN, 0};
        short net_events = 0;
        if (net_read_open && down_empty()) net_events |= POLLIN;
        if (net_write_open && !up_empty()) net_events |= POLLOUT;
        fds[kNet] = {net_events != 0 ? net : -1, net_events, 0};
        fds[kOut] = {down_empty() ? -1 : out, POLLOUT, 0};

        if (poll_until(fds, earliest(quit_at, idle_at)) == 0) {
            if (idle_at && Clock::now() >= *idle_at) return RelayEnd::idle;
            continue;
        }
        if (fds[kStop].revents != 0) return RelayEnd::stopped;

        // Standard input. POLLHUP alone (a pipe whose writer is gone) is also
        // read: the read returns what is left, then 0 for end of input.
        if ((fds[kIn].revents & POLLNVAL) != 0) {
            input_ended_ = true;
        } else if (fds[kIn].revents != 0 && up_pipe) {
            IoResult n;
            try {
                n = up_pipe->fill_from(in);
            } catch (const Error& e) {
                if (e.code() != std::errc::invalid_argument) {
                    errno = e.code().value();
                    stream_failure("read from standard input");
                }
                up_pipe.reset();  // not spliceable after all: read it from now on
            }
            if (n && *n > 0) {
                last_data = Clock::now();
                send_pending();
            } else if (n) {
                input_ended_ = true;
            }
        } else if (fds[kIn].revents != 0) {
            const ssize_t n = ::read(in, up_->space(), in_chunk);
            if (n > 0) {
                up_->filled(static_cast<std::size_t>(n));
                last_data = Clock::now();
                // The socket is non-blocking: try at once rather than poll first.
                send_pending();
            } else if (n == 0) {
                input_ended_ = true;
            } else if (!transient(errno)) {
                stream_failure("read from standard input");
            }
        }

        // The socket. POLLERR and POLLHUP are handed to whichever call was
        // asked for: send or recv then returns the error or the end of stream.
        const short net_revents = fds[kNet].revents;
        if ((net_events & POLLOUT) != 0 && !up_empty() &&
            (net_revents & (POLLOUT | POLLERR | POLLHUP)) != 0)
            send_pending();
        const bool net_readable =
            (net_events & POLLIN) != 0 && (net_revents & (POLLIN | POLLERR | POLLHUP)) != 0;
        if (net_readable && down_pipe) {
            IoResult got;  // empty: nothing to read after all
            try {
                got = down_pipe->fill_from(net);
            } catch (const Error& e) {
                throw_errno(e.code().value(), "recv from " + peer);
            }
            if (got && *got > 0) {
                last_data = Clock::now();
                if (out_never_waits) write_pending();
            } else if (got) {
                net_read_open = false;
            }
        } else if (net_readable) {
            IoResult got;  // empty: nothing to read after all
            if (messages) {
                // A message is taken whole or refused: never written out cut short.
                got = recv_message(net, down_->space(), kMessageChunk, "recv from " + peer);
            } else if (const ssize_t n = ::recv(net, down_->space(), kStreamChunk, 0); n >= 0) {
                got = static_cast<std::size_t>(n);
            } else if (!transient(errno)) {
                throw_errno("recv from " + peer);
            }
            if (got && *got > 0) {
                down_->filled(*got);
                last_data = Clock::now();
                if (out_never_waits) write_pending();
            } else if (got) {
                if (stream) net_read_open = false;  // an empty datagram is no end of stream
            }
        }

        // Standard output.
        if ((fds[kOut].revents & POLLNVAL) != 0) {
            errno = EBADF;
            stream_failure("write to standard output");
        }
        if (fds[kOut].revents != 0) write_pending();
    }
}

// --- The options connect and listen share ------------------------------------

RelayOptions NetcatOptions::relay_options(int stop_fd) const {
    RelayOptions r;
    if (quit) r.quit_after_eof = seconds(*quit);
    if (wait) r.idle_timeout = seconds(*wait);
    r.stop_fd = stop_fd;
    return r;
}

void add_netcat_options(CLI::App* cmd, NetcatOptions& o, const std::string& wait_help) {
    cmd->add_flag("-u,--udp", o.udp, "UDP instead of TCP");
    cmd->add_option("-U,--unix", o.unix_path,
                    "a Unix socket at PATH instead of HOST PORT ('@name': abstract); a stream, "
                    "or with --seqpacket messages")
        ->type_name("PATH");
    cmd->add_flag("--seqpacket", o.seqpacket,
                  "with -U: SOCK_SEQPACKET, the kernel keeps message boundaries. Each read of "
                  "standard input (up to 64 KiB) is sent as one message, each message received is "
                  "written out whole; a longer one ends the session (exit 1). End of input is the "
                  "half-close, as on a stream; an empty message reads as end of stream");
    auto* v4 = cmd->add_flag("-4", o.ipv4, "IPv4 only");
    cmd->add_flag("-6", o.ipv6, "IPv6 only")->excludes(v4);
    add_number(cmd, "-q,--quit-after-eof", o.quit, NumberKind::seconds, {0, kLongestDuration},
               "after end of input (all of it sent), end the session this many seconds later; 0: "
               "at once. Default: half-close, i.e. shut down the writing side and keep printing "
               "what arrives until the peer ends too");
    // Idle sessions may be long: up to the longest duration, a year.
    add_number(cmd, "-w,--wait", o.wait, NumberKind::seconds, {kMillisecond, kLongestDuration},
               wait_help);
}

void check_netcat_options(const NetcatOptions& o) {
    if (o.seqpacket && o.udp)
        throw CLI::ValidationError(
            "--seqpacket is a Unix socket type (with -U PATH): it does not combine with -u");
    if (o.seqpacket && o.unix_path.empty())
        throw CLI::ValidationError(
            "--seqpacket needs -U PATH (SOCK_SEQPACKET is a Unix socket here)");
    if (o.unix_path.empty()) return;
    if (o.udp)
        throw CLI::ValidationError("-U is a Unix stream socket: it does not combine with -u");
    if (o.ipv4 || o.ipv6)
        throw CLI::ValidationError("-4 and -6 do not apply to a Unix socket (-U)");
    try {
        (void)Address::unix_path(o.unix_path);
    } catch (const Error& e) {
        throw CLI::ValidationError(fmt::format("-U: {}", e.what()));
    }
}

std::string strip_brackets(const std::string& host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        return host.substr(1, host.size() - 2);
    return host;
}

std::uint16_t checked_port(const std::string& text, const NetcatOptions& o) {
    try {
        return parse_port(text, o.udp ? "udp" : "tcp");
    } catch (const Error&) {
        throw CLI::ValidationError(
            fmt::format("port '{}' is not a number in 0..65535 or a known {} service", text,
                        o.udp ? "udp" : "tcp"));
    }
}

std::string idle_message(const NetcatOptions& o, const std::string& peer) {
    return fmt::format("no data either way for {} s (-w): closing the session with {}",
                       seconds_text(seconds(o.wait.value_or(0))), peer);
}

void keep_standard_streams_open() {
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
        if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        // A pipe with one end closed: a closed standard input reads as empty,
        // a closed standard output fails with "Broken pipe" when written.
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) != 0) throw_errno("pipe");
        const int keep = fd == STDIN_FILENO ? ends[0] : ends[1];
        const int drop = fd == STDIN_FILENO ? ends[1] : ends[0];
        // dup2 clears close-on-exec on the copy: it is a standard stream now.
        if (keep != fd) {
            if (::dup2(keep, fd) < 0) throw_errno("dup2");
            ::close(keep);
        } else {
            ::fcntl(fd, F_SETFD, 0);
        }
        if (drop != fd) ::close(drop);
    }
}

}  // namespace ferry::cli
