// Socket I/O under the three modes (blocking, timeout, non-blocking): send,
// recv, accept, connect and the whole-message helpers built on them.
#include <poll.h>

#include <cerrno>
#include <utility>

#include "ferry/datagram_batch.hpp"
#include "ferry/error.hpp"
#include "ferry/socket.hpp"

namespace ferry {

template <class Call>
Socket::Outcome Socket::attempt(Direction dir, Deadline deadline, bool wait_when_nonblocking,
                                Call&& call) const noexcept {
    for (;;) {
        const auto n = call();
        if (n >= 0) return {Outcome::done, static_cast<std::size_t>(n), 0};
        const int err = errno;
        if (err == EINTR) continue;
        if (err != EAGAIN && err != EWOULDBLOCK) return {Outcome::failed, 0, err};
        // Without a deadline, a blocking descriptor only says EAGAIN when the
        // user set SO_RCVTIMEO/SO_SNDTIMEO.
        if (!timeout_ && !deadline) return {Outcome::timed_out, 0, 0};
        if (timeout_ == Duration::zero() && !wait_when_nonblocking)
            return {Outcome::would_block, 0, 0};
        pollfd p{fd(), static_cast<short>(dir == Direction::in ? POLLIN : POLLOUT), 0};
        std::error_code ec;
        const int ready = poll_until({&p, 1}, deadline, ec);
        if (ready < 0) return {Outcome::failed, 0, ec.value()};
        if (ready == 0) return {Outcome::timed_out, 0, 0};
    }
}

template <class Call>
IoResult Socket::retry(Direction dir, Deadline deadline, bool wait_when_nonblocking,
                       const char* what, Call&& call) {
    const Outcome o = attempt(dir, deadline, wait_when_nonblocking, std::forward<Call>(call));
    switch (o.kind) {
        case Outcome::done:
            return o.size;
        case Outcome::would_block:
            return std::nullopt;
        case Outcome::timed_out:
            throw TimeoutError(context(what));
        case Outcome::failed:
            break;
    }
    throw_errno(o.error, context(what));
}

std::error_code Socket::code_of(const Outcome& outcome) noexcept {
    switch (outcome.kind) {
        case Outcome::done:
            return {};
        case Outcome::would_block:
            return {EWOULDBLOCK, std::system_category()};
        case Outcome::timed_out:
            return {ETIMEDOUT, std::system_category()};
        case Outcome::failed:
            break;
    }
    return {outcome.error, std::system_category()};
}

IoResult Socket::send(const void* data, std::size_t size, int flags) {
    return retry(Direction::out, deadline_from_now(), false, "send to",
                 [&] { return ::send(fd(), data, size, flags | MSG_NOSIGNAL); });
}

std::size_t Socket::send(const void* data, std::size_t size, int flags,
                         std::error_code& ec) noexcept {
    const Outcome o = attempt(Direction::out, deadline_from_now(), false,
                              [&] { return ::send(fd(), data, size, flags | MSG_NOSIGNAL); });
    ec = code_of(o);
    return o.size;
}

IoResult Socket::recv(void* data, std::size_t size, int flags) {
    return retry(Direction::in, deadline_from_now(), false, "recv from",
                 [&] { return ::recv(fd(), data, size, flags); });
}

std::size_t Socket::recv(void* data, std::size_t size, int flags, std::error_code& ec) noexcept {
    const Outcome o = attempt(Direction::in, deadline_from_now(), false,
                              [&] { return ::recv(fd(), data, size, flags); });
    ec = code_of(o);
    return o.size;
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

int Socket::recvmmsg_call(DatagramBatch& batch, int flags) noexcept {
    // MSG_WAITFORONE: wait (when the mode waits) for the first datagram only, as recvfrom does.
    return ::recvmmsg(fd(), batch.headers(), static_cast<unsigned>(batch.capacity()),
                      flags | MSG_WAITFORONE, nullptr);
}

int Socket::sendmmsg_call(DatagramBatch& batch, std::size_t first, int flags) noexcept {
    return ::sendmmsg(fd(), batch.headers() + first, static_cast<unsigned>(batch.size() - first),
                      flags | MSG_NOSIGNAL);
}

std::optional<std::size_t> Socket::recvmmsg(DatagramBatch& batch, int flags) {
    batch.prepare_receive();
    const IoResult n = retry(Direction::in, deadline_from_now(), false, "recvmmsg",
                             [&] { return recvmmsg_call(batch, flags); });
    if (!n) return std::nullopt;
    batch.received(*n);
    return *n;
}

std::size_t Socket::recvmmsg(DatagramBatch& batch, int flags, std::error_code& ec) noexcept {
    batch.prepare_receive();
    const Outcome o = attempt(Direction::in, deadline_from_now(), false,
                              [&] { return recvmmsg_call(batch, flags); });
    ec = code_of(o);
    batch.received(o.size);
    return o.size;
}

std::size_t Socket::sendmmsg(DatagramBatch& batch, std::size_t first, int flags,
                             std::error_code& ec) noexcept {
    ec.clear();
    if (first >= batch.size()) return 0;
    const Outcome o = attempt(Direction::out, deadline_from_now(), false,
                              [&] { return sendmmsg_call(batch, first, flags); });
    ec = code_of(o);
    return o.size;
}

IoResult Socket::sendmmsg(DatagramBatch& batch, std::size_t first, int flags) {
    if (first >= batch.size()) return 0;
    try {
        return retry(Direction::out, deadline_from_now(), false, "sendmmsg",
                     [&] { return sendmmsg_call(batch, first, flags); });
    } catch (const TimeoutError&) {
        throw TimeoutError(context("sendmmsg"));
    } catch (const Error& e) {
        const Address& to = batch.address(first);
        if (to.family() == AF_UNSPEC) throw;
        throw Error(e.code(), "sendmmsg to " + to.to_string());
    }
}

Socket::Outcome Socket::accept_outcome(int flags, Accepted& result) noexcept {
    const Outcome o = attempt(Direction::in, deadline_from_now(), false, [&] {
        *result.peer.size_ptr() = Address::capacity();
        return ::accept4(fd(), result.peer.data(), result.peer.size_ptr(), flags | SOCK_CLOEXEC);
    });
    if (o.kind == Outcome::done) {
        result.socket.fd_.reset(static_cast<int>(o.size));
        if ((flags & SOCK_NONBLOCK) != 0) result.socket.timeout_ = Duration::zero();
    }
    return o;
}

std::optional<Accepted> Socket::accept(int flags) {
    Accepted result;
    const Outcome o = accept_outcome(flags, result);
    switch (o.kind) {
        case Outcome::done:
            return result;
        case Outcome::would_block:
            return std::nullopt;
        case Outcome::timed_out:
            throw TimeoutError(context("accept on"));
        case Outcome::failed:
            break;
    }
    throw_errno(o.error, context("accept on"));
}

std::optional<Accepted> Socket::accept(int flags, std::error_code& ec) noexcept {
    Accepted result;
    const Outcome o = accept_outcome(flags, result);
    ec = code_of(o);
    if (ec) return std::nullopt;
    return result;
}

std::optional<Accepted> Socket::accept(std::error_code& ec) noexcept {
    return accept(0, ec);
}

Socket::Outcome Socket::connect_outcome(const Address& address) noexcept {
    const Deadline deadline = deadline_from_now();
    if (::connect(fd(), address.data(), address.size()) == 0) return {};
    const int err = errno;
    // EINTR on a blocking connect does not abort it: the handshake goes on and
    // completes asynchronously, as EINPROGRESS does (connect(2), ERRORS).
    if (err != EINPROGRESS && err != EINTR) return {Outcome::failed, 0, err};
    if (err == EINPROGRESS && timeout_ == Duration::zero()) return {Outcome::would_block, 0, 0};
    pollfd p{fd(), POLLOUT, 0};
    std::error_code ec;
    const int ready = poll_until({&p, 1}, deadline, ec);
    if (ready < 0) return {Outcome::failed, 0, ec.value()};
    if (ready == 0) return {Outcome::timed_out, 0, 0};
    finish_connect(ec);
    if (ec) return {Outcome::failed, 0, ec.value()};
    return {};
}

bool Socket::connect(const Address& address) {
    const Outcome o = connect_outcome(address);
    switch (o.kind) {
        case Outcome::done:
            return true;
        case Outcome::would_block:
            return false;
        case Outcome::timed_out:
            throw TimeoutError("connect to " + address.to_string());
        case Outcome::failed:
            break;
    }
    throw_errno(o.error, "connect to " + address.to_string());
}

bool Socket::connect(const Address& address, std::error_code& ec) noexcept {
    const Outcome o = connect_outcome(address);
    // "Would block" for a connect is the handshake still in progress.
    ec = o.kind == Outcome::would_block ? std::error_code(EINPROGRESS, std::system_category())
                                        : code_of(o);
    return !ec;
}

void Socket::finish_connect(const Address& address) {
    std::error_code ec;
    finish_connect(ec);
    if (ec) throw Error(ec, "connect to " + address.to_string());
}

void Socket::finish_connect(std::error_code& ec) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    ec.assign(err, std::system_category());
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
