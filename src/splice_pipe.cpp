#include "ferry/splice_pipe.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

#include "ferry/error.hpp"

namespace ferry {

SplicePipe::SplicePipe(std::size_t capacity) {
    int ends[2];
    if (::pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) throw_errno("pipe");
    read_end_.reset(ends[0]);
    write_end_.reset(ends[1]);
    const int asked = static_cast<int>(std::min<std::size_t>(capacity, 1u << 30));
    // Refused over pipe-max-size or the user's pipe quota: the default size
    // still works, only with more calls per byte.
    if (asked > 0) (void)::fcntl(write_end_.get(), F_SETPIPE_SZ, asked);
    const int granted = ::fcntl(write_end_.get(), F_GETPIPE_SZ);
    capacity_ = granted > 0 ? static_cast<std::size_t>(granted) : 4096;
}

IoResult SplicePipe::fill_from(int fd, std::size_t max) {
    const std::size_t room = capacity_ > held_ ? capacity_ - held_ : 0;
    const std::size_t want = std::min(max, room);
    if (want == 0) return std::nullopt;
    for (;;) {
        const ssize_t n = ::splice(fd, nullptr, write_end_.get(), nullptr, want,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n >= 0) {
            held_ += static_cast<std::size_t>(n);
            return static_cast<std::size_t>(n);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        throw_errno("splice");
    }
}

IoResult SplicePipe::drain_to(int fd) {
    if (held_ == 0) return 0;
    for (;;) {
        const ssize_t n = ::splice(read_end_.get(), nullptr, fd, nullptr, held_,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n >= 0) {
            held_ -= static_cast<std::size_t>(n);
            return static_cast<std::size_t>(n);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        throw_errno("splice");
    }
}

void SplicePipe::drain_into(Buffer& out) {
    while (held_ > 0) {
        const IoResult n = out.read_from(read_end_.get());
        // The pipe holds held_ bytes: a read cannot block or end before they are out.
        if (!n || *n == 0) throw_errno(EIO, "read from a splice pipe");
        held_ -= std::min(*n, held_);
    }
}

bool sigpipe_ignored() noexcept {
    struct sigaction now {};
    return ::sigaction(SIGPIPE, nullptr, &now) == 0 && now.sa_handler == SIG_IGN;
}

}  // namespace ferry
