// The socket object: creation, modes, addresses and options. I/O lives in socket_io.cpp.
#include "ferry/socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "ferry/error.hpp"

namespace ferry {

Socket::Socket(int family, int type, int protocol) {
    const int fd = ::socket(family, type | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        throw_errno("socket(" + family_name(family) + ", " +
                    socktype_name(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) + ")");
    fd_.reset(fd);
    if ((type & SOCK_NONBLOCK) != 0) timeout_ = Duration::zero();
}

Socket::Socket(Fd fd) : fd_(std::move(fd)) {
    const int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags < 0) throw_errno("fcntl(F_GETFL) on descriptor " + std::to_string(fd_.get()));
    if ((flags & O_NONBLOCK) != 0) timeout_ = Duration::zero();
}

std::pair<Socket, Socket> Socket::pair(int type) {
    int fds[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair");
    Socket a;
    Socket b;
    a.fd_.reset(fds[0]);
    b.fd_.reset(fds[1]);
    if ((type & SOCK_NONBLOCK) != 0) a.timeout_ = b.timeout_ = Duration::zero();
    return {std::move(a), std::move(b)};
}

int Socket::family() const {
    return get_option<int>(SOL_SOCKET, SO_DOMAIN);
}
int Socket::type() const {
    return get_option<int>(SOL_SOCKET, SO_TYPE);
}

void Socket::set_timeout(std::optional<Duration> timeout) {
    if (timeout && *timeout < Duration::zero())
        throw_errno(EINVAL, "set_timeout to a negative duration");
    // The descriptor is non-blocking both when the user asked for it (zero) and
    // when a timeout is implemented with poll(); only "block forever" blocks.
    const bool was_nonblocking = timeout_.has_value();
    const bool nonblocking = timeout.has_value();
    if (was_nonblocking != nonblocking) {
        const int flags = ::fcntl(fd(), F_GETFL);
        if (flags < 0) throw_errno("fcntl(F_GETFL)");
        const int wanted = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
        if (::fcntl(fd(), F_SETFL, wanted) != 0) throw_errno("fcntl(F_SETFL)");
    }
    timeout_ = timeout;
}

Deadline Socket::deadline_from_now() const {
    if (!timeout_ || *timeout_ == Duration::zero()) return std::nullopt;
    return Clock::now() + *timeout_;
}

bool Socket::wait(short events, Deadline deadline) const {
    pollfd p{fd(), events, 0};
    for (;;) {
        timespec ts{};
        timespec* limit = nullptr;
        if (deadline) {
            const auto left = std::max(Duration::zero(), *deadline - Clock::now());
            ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
            limit = &ts;
        }
        const int rc = ::ppoll(&p, 1, limit, nullptr);
        if (rc > 0) return true;
        if (rc == 0) return false;
        if (errno != EINTR) throw_errno("poll");
    }
}

void Socket::bind(const Address& address) {
    if (::bind(fd(), address.data(), address.size()) != 0)
        throw_errno("bind to " + address.to_string());
}

void Socket::listen(int backlog) {
    if (::listen(fd(), backlog) != 0) throw_errno("listen on " + local_address().to_string());
}

void Socket::shutdown(Shutdown how) {
    if (::shutdown(fd(), static_cast<int>(how)) != 0) throw_errno(context("shutdown of"));
}

Address Socket::local_address() const {
    Address a;
    if (::getsockname(fd(), a.data(), a.size_ptr()) != 0) throw_errno("getsockname");
    return a;
}

Address Socket::peer_address() const {
    Address a;
    if (::getpeername(fd(), a.data(), a.size_ptr()) != 0) throw_errno("getpeername");
    return a;
}

void Socket::get_option_raw(int level, int name, void* value, socklen_t* len) const {
    if (::getsockopt(fd(), level, name, value, len) != 0)
        throw_errno("getsockopt(level " + std::to_string(level) + ", option " +
                    std::to_string(name) + ")");
}

void Socket::set_option_raw(int level, int name, const void* value, socklen_t len) {
    if (::setsockopt(fd(), level, name, value, len) != 0)
        throw_errno("setsockopt(level " + std::to_string(level) + ", option " +
                    std::to_string(name) + ")");
}

void Socket::set_no_delay(bool on) {
    set_option<int>(IPPROTO_TCP, TCP_NODELAY, on);
}
void Socket::set_v6_only(bool on) {
    set_option<int>(IPPROTO_IPV6, IPV6_V6ONLY, on);
}

std::string Socket::context(const char* what) const {
    // Only computed on the error path: one getpeername/getsockname is cheap there.
    Address a;
    if (::getpeername(fd(), a.data(), a.size_ptr()) == 0)
        return std::string(what) + " " + a.to_string();
    a = Address();
    const std::string verb(what, std::strcspn(what, " "));
    if (::getsockname(fd(), a.data(), a.size_ptr()) == 0 && a.family() != AF_UNSPEC)
        return verb + " on " + a.to_string();
    return verb;
}

}  // namespace ferry
