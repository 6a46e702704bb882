#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "ferry/buffer.hpp"
#include "ferry/fd.hpp"
#include "ferry/socket.hpp"

namespace ferry {

/// A kernel pipe used as the buffer of a zero-copy relay: bytes move from
/// one descriptor into the pipe and from the pipe to another with splice(2),
/// never through user space (socket -> pipe -> socket, file -> pipe ->
/// socket, socket -> pipe -> file), as nginx and HAProxy relay.
///
/// Both ends are non-blocking: fill_from() and drain_to() return at once
/// when the other descriptor has nothing to give or no room. The pipe keeps
/// count of the bytes it holds, so a relay can hand them on in order when it
/// has to see them after all (drain_into(), a toxic added mid-stream).
///
/// splice(2) into a socket whose peer has gone raises SIGPIPE as send(2)
/// without MSG_NOSIGNAL would (splice has no such flag): use it only where
/// the process ignores SIGPIPE (see sigpipe_ignored()).
///
/// Costs two descriptors while it lives. Thread-safety: none.
class SplicePipe {
  public:
    /// The pipe size asked for by default: 1 MiB (the kernel's usual
    /// pipe-max-size), so one splice moves as much as a socket buffer holds.
    static constexpr std::size_t kDefaultCapacity = std::size_t{1} << 20;

    /// Opens a pipe (non-blocking, close-on-exec) and asks for `capacity`
    /// bytes (F_SETPIPE_SZ); the kernel's default size stays when that is
    /// refused (over pipe-max-size or the user's pipe quota). Throws Error
    /// ("pipe: Too many open files") when no pipe can be opened.
    explicit SplicePipe(std::size_t capacity = kDefaultCapacity);

    /// Bytes held: moved in, not yet moved out.
    [[nodiscard]] std::size_t size() const noexcept { return held_; }
    /// Whether no byte is held.
    [[nodiscard]] bool empty() const noexcept { return held_ == 0; }
    /// The pipe's size as the kernel granted it.
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    /// One splice(2) from `fd` into the pipe, of at most `max` bytes and the
    /// room left: bytes moved, 0 at end of stream (or when no room is left),
    /// or empty when it would block (`fd` has nothing now, or the pipe is
    /// full: a pipe counts its room in pages, so it can be full before
    /// size() reaches capacity()). Throws Error ("splice: Connection reset
    /// by peer"); EINVAL means `fd` cannot be spliced from.
    IoResult fill_from(int fd, std::size_t max = std::numeric_limits<std::size_t>::max());

    /// One splice(2) of the held bytes to `fd`: bytes moved, or empty when
    /// `fd` has no room. Throws Error ("splice: Broken pipe"); EINVAL means
    /// `fd` cannot be spliced to.
    IoResult drain_to(int fd);

    /// Reads every held byte into `out` (appended, in order), leaving the
    /// pipe empty: for a relay that must see the bytes from now on.
    void drain_into(Buffer& out);

  private:
    Fd read_end_;
    Fd write_end_;
    std::size_t capacity_ = 0;
    std::size_t held_ = 0;
};

/// Whether this process ignores SIGPIPE, which splice(2) into a socket
/// raises when the peer has gone. The ferry command ignores it.
bool sigpipe_ignored() noexcept;

}  // namespace ferry
