#include "ferry/buffer.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include "ferry/error.hpp"

namespace ferry {

void Buffer::make_room(std::size_t n) {
    if (bytes_.empty()) bytes_.resize(kPrependRoom);
    const std::size_t writable = bytes_.size() - write_;
    if (writable >= n) return;
    const std::size_t readable = size();
    // Slide the readable bytes to the front when that alone makes room:
    // cheaper than growing, and keeps the buffer from creeping.
    if (read_ - kPrependRoom + writable >= n) {
        std::memmove(bytes_.data() + kPrependRoom, bytes_.data() + read_, readable);
        read_ = kPrependRoom;
        write_ = read_ + readable;
        return;
    }
    bytes_.resize(std::max(write_ + n, bytes_.size() * 2));
}

void Buffer::append(const void* data, std::size_t n) {
    if (n == 0) return;
    make_room(n);
    std::memcpy(bytes_.data() + write_, data, n);
    write_ += n;
}

void Buffer::prepend(const void* data, std::size_t n) {
    if (bytes_.empty()) bytes_.resize(kPrependRoom);
    if (n <= read_) {
        read_ -= n;
        std::memcpy(bytes_.data() + read_, data, n);
        return;
    }
    // Not enough room in front: rebuild with the header first.
    std::vector<char> rebuilt(kPrependRoom + n + size());
    std::memcpy(rebuilt.data() + kPrependRoom, data, n);
    std::memcpy(rebuilt.data() + kPrependRoom + n, this->data(), size());
    write_ = rebuilt.size();
    read_ = kPrependRoom;
    bytes_.swap(rebuilt);
}

void Buffer::consume(std::size_t n) noexcept {
    if (n >= size()) {
        clear();
        return;
    }
    read_ += n;
}

void Buffer::release() noexcept {
    if (!empty()) return;
    std::vector<char>().swap(bytes_);
    clear();
}

IoResult Buffer::read_from(int fd) {
    char spill[kReadSpill];
    if (bytes_.empty()) bytes_.resize(kPrependRoom);
    iovec iov[2];
    const std::size_t writable = bytes_.size() - write_;
    iov[0].iov_base = bytes_.data() + write_;
    iov[0].iov_len = writable;
    iov[1].iov_base = spill;
    iov[1].iov_len = sizeof spill;
    for (;;) {
        const ssize_t n = ::readv(fd, iov, 2);
        if (n >= 0) {
            const auto got = static_cast<std::size_t>(n);
            if (got <= writable) {
                write_ += got;
            } else {
                write_ = bytes_.size();
                append(spill, got - writable);
            }
            return got;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        throw_errno("recv");
    }
}

IoResult Buffer::write_to(int fd) {
    for (;;) {
        const ssize_t n = ::send(fd, data(), size(), MSG_NOSIGNAL);
        if (n >= 0) {
            consume(static_cast<std::size_t>(n));
            return static_cast<std::size_t>(n);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        throw_errno("send");
    }
}

}  // namespace ferry
