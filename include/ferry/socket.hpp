// ferry/socket.hpp: the socket object, one owner per descriptor, every POSIX call within reach.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "ferry/address.hpp"
#include "ferry/fd.hpp"
#include "ferry/time.hpp"  // Duration, Clock, Deadline (this header once declared them)

namespace ferry {

/// Bytes moved by one call. Empty means "would block": returned only in
/// non-blocking mode (timeout zero). For recv, 0 bytes means end of stream.
using IoResult = std::optional<std::size_t>;

/// Which side shutdown(2) closes: the reading side, the writing side (the peer
/// reads end of stream), or both.
enum class Shutdown { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };

class Socket;
struct Accepted;
class DatagramBatch;

/// Whether `address` is an IP multicast group: IPv4 224.0.0.0/4, IPv6 ff00::/8.
[[nodiscard]] bool is_multicast_group(const Address& address) noexcept;

/// The interface a multicast membership or outgoing multicast uses: any (the
/// default: the kernel picks the interface of its route to the group), a name
/// (`eth0`, looked up with if_nametoindex(3) each time it is used, so an
/// interface that comes and goes is found again), an index, or one of the
/// interface's addresses. A plain value, cheap to copy.
///
/// An IPv4 address given for an IPv4 group goes to the kernel as it is (the
/// classic IP_ADD_MEMBERSHIP and IP_MULTICAST_IF contract, where the address
/// also becomes the source of outgoing multicast); in every other case the
/// address names the interface that holds it (getifaddrs(3)).
class MulticastInterface {
  public:
    /// Any interface: the kernel's choice.
    MulticastInterface() noexcept = default;
    /// The interface called `name` (`eth0`), looked up each time it is used.
    static MulticastInterface named(std::string name);
    /// The interface with index `index` (if_nametoindex(3)).
    static MulticastInterface with_index(unsigned index);
    /// An IPv4 or IPv6 address of the interface; the port is ignored.
    static MulticastInterface with_address(const Address& address);
    /// The command-line form: a numeric IPv4 or IPv6 address is an address,
    /// anything else an interface name. Empty text is any interface.
    static MulticastInterface parse(std::string_view text);

    /// Whether this is the default: any interface, the kernel's choice.
    [[nodiscard]] bool is_any() const noexcept { return kind_ == Kind::any; }
    /// The IPv4 address given with with_address(), or nullptr for any other form.
    [[nodiscard]] const Address* ipv4_address() const noexcept;
    /// The interface index now: 0 for any interface, if_nametoindex() for a
    /// name, the interface holding the address for an address. Throws Error
    /// (ENODEV) naming what was looked for: `interface eth9: No such device`,
    /// `interface with address 192.0.2.1: No such device`.
    [[nodiscard]] unsigned index() const;
    /// As given: `eth0`, `10.0.0.1`, `interface 3`; `any interface` for the default.
    [[nodiscard]] std::string to_string() const;

  private:
    enum class Kind { any, name, index, address };
    Kind kind_ = Kind::any;
    std::string name_;
    unsigned index_ = 0;
    Address address_;
};

/// What recvfrom() received.
struct Received {
    /// Bytes received (0: an empty datagram, or end of stream).
    std::size_t size = 0;
    /// The sender.
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
/// refused`. accept, connect, send and recv also come without exceptions, as
/// in Asio: the overloads taking a `std::error_code&` behave the same but set
/// it (std::system_category, the errno value) instead of throwing, and report
/// "would block" as an error code too. EINTR is retried. Every send passes MSG_NOSIGNAL, so a write
/// to a reset peer is an Error ("Broken pipe"), never a SIGPIPE: the library does not touch
/// process-wide signal state.
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

    /// The descriptor (-1 when empty); the socket still owns it.
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    /// Whether the socket holds a descriptor.
    explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
    /// Gives up the descriptor; the socket becomes empty.
    [[nodiscard]] Fd release() noexcept { return std::move(fd_); }
    /// Closes the descriptor now (the destructor would); the socket becomes empty.
    void close() noexcept { fd_.reset(); }

    /// SO_DOMAIN and SO_TYPE, read from the kernel.
    [[nodiscard]] int family() const;
    /// SO_TYPE: SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW.
    [[nodiscard]] int type() const;

    /// nullopt: block; zero: non-blocking; positive: a deadline per operation.
    void set_timeout(std::optional<Duration> timeout);
    /// The timeout set_timeout() set: nullopt (blocking), zero or positive.
    [[nodiscard]] std::optional<Duration> timeout() const noexcept { return timeout_; }
    /// set_timeout(nullopt) when true, set_timeout(0) (non-blocking) when false.
    void set_blocking(bool blocking) {
        set_timeout(blocking ? std::nullopt : std::optional<Duration>(Duration::zero()));
    }

    /// bind(2): `bind to 127.0.0.1:1060: Address already in use`.
    void bind(const Address& address);
    /// listen(2); the kernel caps `backlog` at net.core.somaxconn.
    void listen(int backlog = SOMAXCONN);
    /// accept4(2). `flags` may be SOCK_NONBLOCK (the new socket starts
    /// non-blocking); SOCK_CLOEXEC is always added. Empty only in non-blocking
    /// mode when no connection is pending.
    std::optional<Accepted> accept(int flags = 0);
    /// accept(), without exceptions: the connection, or nullopt with `ec` set
    /// from errno: std::errc::operation_would_block (== resource_unavailable_try_again)
    /// in non-blocking mode when no connection is pending, timed_out when a
    /// timeout passed, the accept4(2) error otherwise (EMFILE, ECONNABORTED...).
    /// `ec` is cleared on success. accept(ec) is accept(0, ec).
    std::optional<Accepted> accept(int flags, std::error_code& ec) noexcept;
    /// accept(0, ec): accept() without exceptions and without flags.
    std::optional<Accepted> accept(std::error_code& ec) noexcept;
    /// connect(2); with a timeout, a non-blocking connect bounded by it. Returns
    /// false only in non-blocking mode, while the connection is in progress
    /// (then wait for writability and call finish_connect()).
    bool connect(const Address& address);
    /// connect(), without exceptions: true once connected; false with `ec`
    /// set from errno otherwise: connection_refused, timed_out (the timeout
    /// passed, or the kernel gave up), and in non-blocking mode
    /// operation_in_progress while the handshake goes on (then wait for
    /// writability and call finish_connect(ec)). `ec` is cleared on success.
    bool connect(const Address& address, std::error_code& ec) noexcept;
    /// After a non-blocking connect became writable: throws the connect error, if any.
    void finish_connect(const Address& address);
    /// finish_connect(), without exceptions: `ec` is the connect error
    /// (SO_ERROR), cleared when the connection is established.
    void finish_connect(std::error_code& ec) noexcept;

    /// One send(2) with MSG_NOSIGNAL: the bytes it took, possibly fewer than `size`.
    IoResult send(const void* data, std::size_t size, int flags = 0);
    /// One send(2) of `data`'s bytes.
    IoResult send(std::string_view data, int flags = 0) {
        return send(data.data(), data.size(), flags);
    }
    /// send(), without exceptions: the bytes sent (MSG_NOSIGNAL, as always),
    /// or 0 with `ec` set from errno: operation_would_block in non-blocking
    /// mode when the send buffer is full, timed_out when a timeout passed,
    /// broken_pipe or connection_reset for a reset peer. Cleared on success. Also for a string.
    std::size_t send(const void* data, std::size_t size, int flags, std::error_code& ec) noexcept;
    /// send() of `data`'s bytes, without exceptions.
    std::size_t send(std::string_view data, int flags, std::error_code& ec) noexcept {
        return send(data.data(), data.size(), flags, ec);
    }
    /// send() of `data`'s bytes with no flags, without exceptions.
    std::size_t send(std::string_view data, std::error_code& ec) noexcept {
        return send(data.data(), data.size(), 0, ec);
    }
    /// One recv(2): the bytes read, 0 at end of stream.
    IoResult recv(void* data, std::size_t size, int flags = 0);
    /// recv(), without exceptions: the bytes received with `ec` cleared (0
    /// bytes: end of stream), or 0 with `ec` set from errno:
    /// operation_would_block in non-blocking mode when nothing has arrived,
    /// timed_out when a timeout passed, connection_reset... Without flags: flags 0.
    std::size_t recv(void* data, std::size_t size, int flags, std::error_code& ec) noexcept;
    /// recv() with no flags, without exceptions.
    std::size_t recv(void* data, std::size_t size, std::error_code& ec) noexcept {
        return recv(data, size, 0, ec);
    }
    /// One sendto(2) to `to` (with MSG_NOSIGNAL).
    IoResult sendto(const void* data, std::size_t size, const Address& to, int flags = 0);
    /// One sendto(2) of `data`'s bytes to `to`.
    IoResult sendto(std::string_view data, const Address& to, int flags = 0) {
        return sendto(data.data(), data.size(), to, flags);
    }
    /// One recv that waits for data until `deadline` whatever the mode: the
    /// step of multi-call operations that carry one deadline throughout.
    /// Throws TimeoutError when the deadline passes.
    std::size_t recv_before(void* data, std::size_t size, Deadline deadline);
    /// recvfrom(2): the size and the sender. Empty only in non-blocking mode.
    std::optional<Received> recvfrom(void* data, std::size_t size, int flags = 0);
    /// recvmmsg(2): receives into `batch` (emptied first) as many datagrams
    /// as are waiting, up to its capacity, and returns how many; each slot
    /// keeps its datagram's size, sender and truncation (MSG_TRUNC). Waits, as
    /// recvfrom() does, for the first datagram only (MSG_WAITFORONE is always
    /// added), never for a full batch. Empty only in non-blocking mode when
    /// nothing is waiting. A batch that comes back full() says more may wait;
    /// one that does not, that the queue was empty when the call returned.
    std::optional<std::size_t> recvmmsg(DatagramBatch& batch, int flags = 0);
    /// sendmmsg(2) of the batch's datagrams from `first` to its end (with
    /// MSG_NOSIGNAL): how many the kernel took, possibly fewer when datagram
    /// first + n failed after others were sent (the kernel reports that
    /// failure only on the next call starting there: resend from there, or
    /// skip it). Empty in non-blocking mode when the first would block.
    /// Throws Error naming the destination of datagram `first` when it fails.
    IoResult sendmmsg(DatagramBatch& batch, std::size_t first = 0, int flags = 0);
    /// recvmmsg(), without exceptions: the datagrams received with `ec`
    /// cleared, or 0 with `ec` set from errno: operation_would_block in
    /// non-blocking mode (or with MSG_DONTWAIT) when nothing is waiting,
    /// timed_out when a timeout (or SO_RCVTIMEO on a blocking socket) passed.
    std::size_t recvmmsg(DatagramBatch& batch, int flags, std::error_code& ec) noexcept;
    /// sendmmsg(), without exceptions: how many were sent with `ec` cleared,
    /// or 0 with `ec` set from errno for datagram `first` (operation_would_block
    /// when the send buffer is full, message_size...).
    std::size_t sendmmsg(DatagramBatch& batch, std::size_t first, int flags,
                         std::error_code& ec) noexcept;

    /// Sends every byte, looping over partial sends. With a timeout, the whole
    /// call ends by then (TimeoutError). In non-blocking mode it waits for
    /// writability as needed rather than giving up half way.
    void send_all(const void* data, std::size_t size);
    /// Sends every byte of `data` (see above).
    void send_all(std::string_view data) { send_all(data.data(), data.size()); }
    /// Receives exactly `size` bytes (the classic recvall). End of stream
    /// first: ShortReadError saying how many bytes were expected and received.
    void recv_exact(void* data, std::size_t size);
    /// Receives exactly `size` bytes and returns them (see above).
    std::string recv_exact(std::size_t size);

    /// shutdown(2): closes one or both directions; the descriptor stays open.
    void shutdown(Shutdown how);

    /// getsockname(2): the address the socket is bound to.
    [[nodiscard]] Address local_address() const;
    /// getpeername(2): the address of the connected peer.
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
    /// setsockopt(2) with a value of type T.
    void set_option(int level, int name, const T& value) {
        set_option_raw(level, name, &value, sizeof value);
    }
    /// getsockopt(2) as the system call: `len` in, bytes written out.
    void get_option_raw(int level, int name, void* value, socklen_t* len) const;
    /// setsockopt(2) as the system call.
    void set_option_raw(int level, int name, const void* value, socklen_t len);

    // The options everybody sets, by name.
    /// SO_REUSEADDR: bind a port whose old connections linger in TIME_WAIT.
    void set_reuse_address(bool on) { set_option<int>(SOL_SOCKET, SO_REUSEADDR, on); }
    /// SO_REUSEPORT: several sockets share one port; the kernel spreads connections.
    void set_reuse_port(bool on) { set_option<int>(SOL_SOCKET, SO_REUSEPORT, on); }
    /// SO_BROADCAST: allows sending to a broadcast address.
    void set_broadcast(bool on) { set_option<int>(SOL_SOCKET, SO_BROADCAST, on); }
    /// TCP_NODELAY: small writes go out at once instead of waiting (Nagle's algorithm off).
    void set_no_delay(bool on);
    /// IPV6_V6ONLY: an IPv6 socket takes no IPv4 connections (mapped addresses).
    void set_v6_only(bool on);

    // Multicast, IPv4 and IPv6. A membership belongs to the socket: closing it
    // leaves every group it joined. Datagrams for a group reach a socket bound
    // to the group's port (bind the group address itself to receive only that
    // group), on an interface where some socket of the host joined the group.
    //
    // Errors are Error with the call, the group and the interface:
    // `join group 239.1.2.3 on eth0: No such device`. The family of a
    // membership is the group's; a group that is not multicast, or a source of
    // another family than the group's, is EINVAL before any system call (a
    // group that is not IP at all, EAFNOSUPPORT).

    /// Joins `group` on `on` (IP_ADD_MEMBERSHIP with an ip_mreqn for IPv4,
    /// IPV6_JOIN_GROUP for IPv6). Joining twice on the same interface is
    /// EADDRINUSE; with no interface and no route to the group, ENODEV. An IPv6
    /// group needs an interface unless the routing table has a route to it.
    void join_group(const Address& group, const MulticastInterface& on = {});
    /// Leaves a group joined on the same interface (IP_DROP_MEMBERSHIP,
    /// IPV6_LEAVE_GROUP); a group this socket has not joined is EADDRNOTAVAIL.
    void leave_group(const Address& group, const MulticastInterface& on = {});
    /// Source-specific join: only datagrams from `source` to `group` reach this
    /// socket. Call once per source. IPv4 with any interface or an IPv4 address
    /// uses IP_ADD_SOURCE_MEMBERSHIP; otherwise (an interface by name or index,
    /// and every IPv6 group) MCAST_JOIN_SOURCE_GROUP. After join_group() for
    /// the same group and interface it narrows that membership to the sources
    /// given; the same source twice is EADDRNOTAVAIL.
    void join_source_group(const Address& group, const Address& source,
                           const MulticastInterface& on = {});
    /// Drops one source of a source-specific membership (the last one leaves
    /// the group); a source not joined is EADDRNOTAVAIL.
    void leave_source_group(const Address& group, const Address& source,
                            const MulticastInterface& on = {});

    // The sending side; the family is the socket's (SO_DOMAIN).

    /// How many routers outgoing multicast may cross (IP_MULTICAST_TTL,
    /// IPV6_MULTICAST_HOPS): 1 (the kernel's default) keeps it on the local
    /// network, 0 is meant to keep it on this host. But Linux drops a TTL-0
    /// datagram only on its way through the local members' path: when this
    /// host has itself joined the group on the outgoing interface (for IPv6,
    /// and loop is on). Otherwise it goes out with TTL 0, and the hosts on the
    /// link accept it. Outside 0..255 the kernel answers EINVAL.
    void set_multicast_ttl(int ttl);
    /// The TTL or hop limit of outgoing multicast.
    [[nodiscard]] int multicast_ttl() const;
    /// Whether this host's own members of the group get a copy of what this
    /// socket sends (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP; the kernel's default: on).
    void set_multicast_loop(bool on);
    /// Whether this host's members get a copy of what this socket sends.
    [[nodiscard]] bool multicast_loop() const;
    /// The interface outgoing multicast leaves by (IP_MULTICAST_IF with an
    /// ip_mreqn, IPV6_MULTICAST_IF); any interface restores the routing
    /// table's choice. An unknown interface is ENODEV; for IPv4, an address no
    /// interface holds is EADDRNOTAVAIL.
    void set_multicast_interface(const MulticastInterface& on);
    /// Whether a socket bound to a wildcard or group address also gets the
    /// groups that other sockets of the host joined (IP_MULTICAST_ALL,
    /// IPV6_MULTICAST_ALL). Linux's default is on; a receiver that wants only
    /// what it joined turns it off.
    void set_multicast_all(bool on);

    /// Waits until the socket is ready for `events` (POLLIN/POLLOUT) or the
    /// deadline passes; returns false on timeout. EINTR is retried.
    bool wait(short events, Deadline deadline) const;
    /// The deadline an operation starting now gets from the timeout.
    [[nodiscard]] Deadline deadline_from_now() const;

  private:
    enum class Direction { in, out };
    /// How one call ended under the socket's mode.
    struct Outcome {
        enum Kind { done, would_block, timed_out, failed } kind = done;
        std::size_t size = 0;  ///< done: what the call returned
        int error = 0;         ///< failed: the errno value
    };
    /// Runs `call` until it succeeds, applying the mode: EINTR retried,
    /// EAGAIN waited for (timeout), or given back as would_block (non-blocking).
    template <class Call>
    Outcome attempt(Direction dir, Deadline deadline, bool wait_when_nonblocking,
                    Call&& call) const noexcept;
    /// attempt(), with the failures thrown (`what` names the call) and would_block empty.
    template <class Call>
    IoResult retry(Direction dir, Deadline deadline, bool wait_when_nonblocking, const char* what,
                   Call&& call);
    /// The error code of an outcome other than done, for the overloads without exceptions.
    static std::error_code code_of(const Outcome& outcome) noexcept;
    int recvmmsg_call(DatagramBatch& batch, int flags) noexcept;
    int sendmmsg_call(DatagramBatch& batch, std::size_t first, int flags) noexcept;
    Outcome connect_outcome(const Address& address) noexcept;
    Outcome accept_outcome(int flags, Accepted& result) noexcept;
    [[nodiscard]] std::string context(const char* what) const;

    Fd fd_;
    std::optional<Duration> timeout_;
};

/// A connection accept() took: its socket and who it is from.
struct Accepted {
    /// The new connection's socket.
    Socket socket;
    /// The peer's address.
    Address peer;
};

}  // namespace ferry
