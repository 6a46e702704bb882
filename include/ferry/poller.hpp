// ferry/poller.hpp: select(2), poll(2) and epoll(7) behind one small interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "ferry/socket.hpp"

namespace ferry {

/// Readiness bits, the same for every backend.
namespace events {
/// Data to read, a connection to accept, or end of stream.
inline constexpr std::uint32_t readable = 1u << 0;
/// Room to write, or a non-blocking connect completed.
inline constexpr std::uint32_t writable = 1u << 1;
inline constexpr std::uint32_t error = 1u << 2;   ///< reported whether asked for or not
inline constexpr std::uint32_t hangup = 1u << 3;  ///< reported whether asked for or not
}  // namespace events

/// One ready descriptor, as Poller::wait() returns it.
struct ReadyEvent {
    /// The descriptor.
    int fd;
    /// Its ready bits (events::readable, ...).
    std::uint32_t events;
};

/// The readiness system calls a Poller is built on.
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
    /// A poller on `backend`. Throws Error (epoll_create1).
    static std::unique_ptr<Poller> create(Backend backend);

    /// Starts watching `fd` for `interest` (events:: bits). Throws Error.
    virtual void add(int fd, std::uint32_t interest) = 0;
    /// Changes what `fd` is watched for. Throws Error.
    virtual void modify(int fd, std::uint32_t interest) = 0;
    /// Stops watching `fd`, before it is closed.
    virtual void remove(int fd) = 0;
    /// nullopt: wait until something is ready.
    virtual std::span<const ReadyEvent> wait(std::optional<Duration> timeout) = 0;
    /// Which backend this is.
    [[nodiscard]] virtual Backend backend() const noexcept = 0;
};

}  // namespace ferry
