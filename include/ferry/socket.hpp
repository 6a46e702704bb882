// ferry/socket.hpp: the socket object, one owner per descriptor, every POSIX call within reach.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ferry/address.hpp"
#include "ferry/fd.hpp"

namespace ferry {

using Duration = std::chrono::nanoseconds;
using Clock = std::chrono::steady_clock;
/// An absolute point by which an operation must finish; nullopt = no limit.
using Deadline = std::optional<Clock::time_point>;

/// Bytes moved by one call. Empty means "would block": returned only in
/// non-blocking mode (timeout zero). For recv, 0 bytes means end of stream.
using IoResult = std::optional<std::size_t>;

enum class Shutdown { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };

class Socket;
struct Accepted;

struct Received {
    std::size_t size = 0;
    Address from;
};

/// One socket: a move-only owner of its descriptor, created close-on-exec.
///
/// Modes, as Python's settimeout: no timeout (the default) blocks; a zero
/// timeout is non-blocking and "would block" comes back as an empty IoResult;
/// a positive timeout bounds each operation, and send_all/recv_exact as a
/// whole, and throws TimeoutError when it passes.
///
/// Every failure throws Error (or TimeoutError, ShortReadError) whose text
/// names the call and the address, e.g. `connect to 127.0.0.1:1060: Connection
/// refused`. EINTR is retried. Every send passes MSG_NOSIGNAL, so a write to a
/// reset peer is an Error ("Broken pipe"), never a SIGPIPE: the library does
/// not touch process-wide signal state.
///
/// Thread-safety: one thread may send while another receives; changing the
/// timeout while another thread uses the socket is a data race.
class Socket {
  public:
    Socket() noexcept = default;
    /// socket(2) with SOCK_CLOEXEC added; `type` may carry SOCK_NONBLOCK.
    Socket(int family, int type, int protocol = 0);
    /// Adopts a descriptor; its O_NONBLOCK flag sets the initial mode.
    explicit Socket(Fd fd);

    /// socketpair(2) (AF_UNIX), both ends close-on-exec.
    static std::pair<Socket, Socket> pair(int type = SOCK_STREAM);

    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
    /// Gives up the descriptor; the socket becomes empty.
    [[nodiscard]] Fd release() noexcept { return std::move(fd_); }
    void close() noexcept { fd_.reset(); }

    /// SO_DOMAIN and SO_TYPE, read from the kernel.
    [[nodiscard]] int family() const;
    [[nodiscard]] int type() const;

    /// nullopt: block; zero: non-blocking; positive: a deadline per operation.
    void set_timeout(std::optional<Duration> timeout);
    [[nodiscard]] std::optional<Duration> timeout() const noexcept { return timeout_; }
    void set_blocking(bool blocking) {
        set_timeout(blocking ? std::nullopt : std::optional<Duration>(Duration::zero()));
    }

    void bind(const Address& address);
    void listen(int backlog = SOMAXCONN);
    /// accept4(2). `flags` may be SOCK_NONBLOCK (the new socket starts
    /// non-blocking); SOCK_CLOEXEC is always added. Empty only in non-blocking
    /// mode when no connection is pending.
    std::optional<Accepted> accept(int flags = 0);
    /// connect(2); with a timeout, a non-blocking connect bounded by it. Returns
    /// false only in non-blocking mode, while the connection is in progress
    /// (then wait for writability and call finish_connect()).
    bool connect(const Address& address);
    /// After a non-blocking connect became writable: throws the connect error, if any.
    void finish_connect(const Address& address);

    IoResult send(const void* data, std::size_t size, int flags = 0);
    IoResult send(std::string_view data, int flags = 0) {
        return send(data.data(), data.size(), flags);
    }
    IoResult recv(void* data, std::size_t size, int flags = 0);
    IoResult sendto(const void* data, std::size_t size, const Address& to, int flags = 0);
    IoResult sendto(std::string_view data, const Address& to, int flags = 0) {
        return sendto(data.data(), data.size(), to, flags);
    }
    /// One recv that waits for data until `deadline` whatever the mode: the
    /// step of multi-call operations that carry one deadline throughout.
    /// Throws TimeoutError when the deadline passes.
    std::size_t recv_before(void* data, std::size_t size, Deadline deadline);
    /// recvfrom(2): the size and the sender. Empty only in non-blocking mode.
    std::optional<Received> recvfrom(void* data, std::size_t size, int flags = 0);

    /// Sends every byte, looping over partial sends. With a timeout, the whole
    /// call ends by then (TimeoutError). In non-blocking mode it waits for
    /// writability as needed rather than giving up half way.
    void send_all(const void* data, std::size_t size);
    void send_all(std::string_view data) { send_all(data.data(), data.size()); }
    /// Receives exactly `size` bytes (the classic recvall). End of stream
    /// first: ShortReadError saying how many bytes were expected and received.
    void recv_exact(void* data, std::size_t size);
    std::string recv_exact(std::size_t size);

    void shutdown(Shutdown how);

    [[nodiscard]] Address local_address() const;
    [[nodiscard]] Address peer_address() const;

    /// getsockopt(2)/setsockopt(2) for any option whose value is a T.
    template <class T>
    [[nodiscard]] T get_option(int level, int name) const {
        T value{};
        socklen_t len = sizeof value;
        get_option_raw(level, name, &value, &len);
        return value;
    }
    template <class T>
    void set_option(int level, int name, const T& value) {
        set_option_raw(level, name, &value, sizeof value);
    }
    void get_option_raw(int level, int name, void* value, socklen_t* len) const;
    void set_option_raw(int level, int name, const void* value, socklen_t len);

    // The options everybody sets, by name.
    void set_reuse_address(bool on) { set_option<int>(SOL_SOCKET, SO_REUSEADDR, on); }
    void set_reuse_port(bool on) { set_option<int>(SOL_SOCKET, SO_REUSEPORT, on); }
    void set_broadcast(bool on) { set_option<int>(SOL_SOCKET, SO_BROADCAST, on); }
    void set_no_delay(bool on);
    void set_v6_only(bool on);

    /// Waits until the socket is ready for `events` (POLLIN/POLLOUT) or the
    /// deadline passes; returns false on timeout. EINTR is retried.
    bool wait(short events, Deadline deadline) const;
    /// The deadline an operation starting now gets from the timeout.
    [[nodiscard]] Deadline deadline_from_now() const;

  private:
    enum class Direction { in, out };
    /// Runs `call` until it succeeds, applying the mode: EINTR retried,
    /// EAGAIN waited for (timeout), returned empty (non-blocking) or thrown.
    template <class Call>
    IoResult retry(Direction dir, Deadline deadline, bool wait_when_nonblocking, const char* what,
                   Call&& call);
    [[nodiscard]] std::string context(const char* what) const;

    Fd fd_;
    std::optional<Duration> timeout_;
};

struct Accepted {
    Socket socket;
    Address peer;
};

}  // namespace ferry
