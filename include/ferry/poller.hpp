// ferry/poller.hpp: select(2), poll(2) and epoll(7) behind one small interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "ferry/socket.hpp"

namespace ferry {

/// Readiness bits, with one meaning on every backend.
///
/// What each backend can tell apart differs, never what a bit means: a bit
/// reported is true of the descriptor; select(2) has fewer of them. Out-of-band
/// data (TCP urgent data, POLLPRI, select's exceptional set) is watched by no
/// backend and reported by none: it is neither readable nor an error, so one
/// urgent byte can never make a consumer spin. A consumer learns what a
/// pending error or the peer's close is by its next call on the descriptor
/// (recv returns 0 or the error), whichever bits announced it.
namespace events {
/// Data, an end of stream or a pending error is there to read: a read will not block.
inline constexpr std::uint32_t readable = 1u << 0;
/// There is room to send (or a pending error): a send will not block.
inline constexpr std::uint32_t writable = 1u << 1;
/// The descriptor has a pending error (POLLERR, EPOLLERR; POLLNVAL for poll):
/// a TCP reset, a failed non-blocking connect, an ICMP error on a connected
/// UDP socket. Reported whether asked for or not, by poll and epoll. Never
/// urgent data. select(2) has no set for errors: the select backend reports
/// such a descriptor as readable and writable (those asked for), as select
/// itself does, and never sets this bit.
inline constexpr std::uint32_t error = 1u << 2;
/// The descriptor is hung up (POLLHUP, EPOLLHUP): a connection closed both
/// ways or reset, a stream whose peer is gone. Reported whether asked for or
/// not, by poll and epoll; the select backend reports such a descriptor as
/// readable (when asked for) instead.
inline constexpr std::uint32_t hangup = 1u << 3;
}  // namespace events

/// One descriptor that wait() found ready, and what it is ready for (events::).
struct ReadyEvent {
    int fd;                ///< the descriptor, as added
    std::uint32_t events;  ///< the events:: bits
};

/// The system call a Poller waits with.
enum class Backend { select, poll, epoll };
/// "select", "poll" or "epoll".
std::string_view backend_name(Backend backend);
/// Parses "select", "poll" or "epoll"; nullopt otherwise.
std::optional<Backend> parse_backend(std::string_view name);

/// A set of descriptors and the readiness each is watched for.
///
/// Level-triggered on every backend, so a consumer may read part of what is
/// there and be told again. wait() returns an empty span on timeout and when
/// interrupted by a signal (EINTR is not an error). The span is valid until
/// the next call on the poller.
///
/// select() cannot watch a descriptor >= FD_SETSIZE (1024): add() throws
/// Error(EINVAL) naming it, rather than corrupting memory.
/// Thread-safety: none; one thread owns a poller.
class Poller {
  public:
    virtual ~Poller() = default;
    /// A poller of that backend; throws Error when the kernel refuses one (epoll_create1).
    static std::unique_ptr<Poller> create(Backend backend);

    /// Watches `fd` (not owned) for `interest` (events::readable, writable);
    /// Error(EEXIST) if it is watched already.
    virtual void add(int fd, std::uint32_t interest) = 0;
    /// Changes what a watched descriptor is watched for; Error(ENOENT) if it is not watched.
    virtual void modify(int fd, std::uint32_t interest) = 0;
    /// Stops watching `fd`; nothing happens for a descriptor not watched.
    virtual void remove(int fd) = 0;
    /// Waits for readiness at most `timeout`; nullopt: until something is ready.
    virtual std::span<const ReadyEvent> wait(std::optional<Duration> timeout) = 0;
    /// Which system call this poller waits with.
    [[nodiscard]] virtual Backend backend() const noexcept = 0;
};

}  // namespace ferry
