// Socket I/O under the three modes (blocking, timeout, non-blocking): send,
// recv, accept, connect and the whole-message helpers built on them.
#include <poll.h>

#include <cerrno>

#include "ferry/error.hpp"
#include "ferry/socket.hpp"

namespace ferry {

template <class Call>
IoResult Socket::retry(Direction dir, Deadline deadline, bool wait_when_nonblocking,
                       const char* what, Call&& call) {
    for (;;) {
        const auto n = call();
        if (n >= 0) return static_cast<std::size_t>(n);
        const int err = errno;
        if (err == EINTR) continue;
        if (err != EAGAIN && err != EWOULDBLOCK) throw_errno(err, context(what));
        // Without a deadline, a blocking descriptor only says EAGAIN when the
        // user set SO_RCVTIMEO/SO_SNDTIMEO.
        if (!timeout_ && !deadline) throw TimeoutError(context(what));
        if (timeout_ == Duration::zero() && !wait_when_nonblocking) return std::nullopt;
        if (!wait(dir == Direction::in ? POLLIN : POLLOUT, deadline))
            throw TimeoutError(context(what));
    }
}

IoResult Socket::send(const void* data, std::size_t size, int flags) {
    return retry(Direction::out, deadline_from_now(), false, "send to",
                 [&] { return ::send(fd(), data, size, flags | MSG_NOSIGNAL); });
}

IoResult Socket::recv(void* data, std::size_t size, int flags) {
    return retry(Direction::in, deadline_from_now(), false, "recv from",
                 [&] { return ::recv(fd(), data, size, flags); });
}

IoResult Socket::sendto(const void* data, std::size_t size, const Address& to, int flags) {
    try {
        return retry(Direction::out, deadline_from_now(), false, "sendto", [&] {
            return ::sendto(fd(), data, size, flags | MSG_NOSIGNAL, to.data(), to.size());
        });
    } catch (const TimeoutError&) {
        throw TimeoutError("sendto " + to.to_string());
    } catch (const Error& e) {
        throw Error(e.code(), "sendto " + to.to_string());
    }
}

std::optional<Received> Socket::recvfrom(void* data, std::size_t size, int flags) {
    Received r;
    const IoResult n = retry(Direction::in, deadline_from_now(), false, "recvfrom", [&] {
        *r.from.size_ptr() = Address::capacity();
        return ::recvfrom(fd(), data, size, flags, r.from.data(), r.from.size_ptr());
    });
    if (!n) return std::nullopt;
    r.size = *n;
    return r;
}

std::optional<Accepted> Socket::accept(int flags) {
    Accepted result;
    const IoResult fd = retry(Direction::in, deadline_from_now(), false, "accept on", [&] {
        *result.peer.size_ptr() = Address::capacity();
        return ::accept4(this->fd(), result.peer.data(), result.peer.size_ptr(),
                         flags | SOCK_CLOEXEC);
    });
    if (!fd) return std::nullopt;
    result.socket.fd_.reset(static_cast<int>(*fd));
    if ((flags & SOCK_NONBLOCK) != 0) result.socket.timeout_ = Duration::zero();
    return result;
}

bool Socket::connect(const Address& address) {
    const Deadline deadline = deadline_from_now();
    if (::connect(fd(), address.data(), address.size()) == 0) return true;
    const int err = errno;
    // EINTR on a blocking connect does not abort it: the handshake goes on and
    // completes asynchronously, as EINPROGRESS does (connect(2), ERRORS).
    if (err != EINPROGRESS && err != EINTR) throw_errno(err, "connect to " + address.to_string());
    if (err == EINPROGRESS && timeout_ == Duration::zero()) return false;
    if (!wait(POLLOUT, deadline)) throw TimeoutError("connect to " + address.to_string());
    finish_connect(address);
    return true;
}

void Socket::finish_connect(const Address& address) {
    const int err = get_option<int>(SOL_SOCKET, SO_ERROR);
    if (err != 0) throw_errno(err, "connect to " + address.to_string());
}

void Socket::send_all(const void* data, std::size_t size) {
    const Deadline deadline = deadline_from_now();
    const auto* bytes = static_cast<const char*>(data);
    std::size_t sent = 0;
    while (sent < size) {
        sent += *retry(Direction::out, deadline, true, "send to",
                       [&] { return ::send(fd(), bytes + sent, size - sent, MSG_NOSIGNAL); });
    }
}

std::size_t Socket::recv_before(void* data, std::size_t size, Deadline deadline) {
    // On a blocking descriptor recv(2) would wait past the deadline: receive
    // with MSG_DONTWAIT and let retry() poll until the deadline instead.
    const int flags = deadline && !timeout_ ? MSG_DONTWAIT : 0;
    return *retry(Direction::in, deadline, true, "recv from",
                  [&] { return ::recv(fd(), data, size, flags); });
}

void Socket::recv_exact(void* data, std::size_t size) {
    const Deadline deadline = deadline_from_now();
    auto* bytes = static_cast<char*>(data);
    std::size_t got = 0;
    while (got < size) {
        const std::size_t n = recv_before(bytes + got, size - got, deadline);
        if (n == 0) throw ShortReadError(context("recv from"), size, got);
        got += n;
    }
}

std::string Socket::recv_exact(std::size_t size) {
    std::string data(size, '\0');
    recv_exact(data.data(), size);
    return data;
}

}  // namespace ferry
