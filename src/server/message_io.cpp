// Whole messages on a message socket: recv_message and fit_send_buffer (see message_io.hpp).
#include "ferry/server/message_io.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "ferry/error.hpp"

namespace ferry {
namespace {

// unix_dgram_sendmsg refuses a message with `len > sk_sndbuf - 32`; a little
// more than that leaves room for the skb's own accounting.
constexpr std::size_t kSendOverhead = 64;

}  // namespace

IoResult recv_message(int fd, void* data, std::size_t size, const std::string& context) {
    iovec iov{data, size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    for (;;) {
        // MSG_TRUNC in the flags makes the call return the message's real
        // length (Unix sockets since Linux 3.4), so the error can say how
        // large it was; msg_flags says MSG_TRUNC whatever the kernel.
        const ssize_t n = ::recvmsg(fd, &msg, MSG_TRUNC);
        if (n >= 0) {
            const auto got = static_cast<std::size_t>(n);
            if ((msg.msg_flags & MSG_TRUNC) != 0 || got > size)
                throw Error(
                    make_error_code(Errc::frame_too_large),
                    context + ": message of " +
                        (got > size ? std::to_string(got) : "more than " + std::to_string(size)) +
                        " bytes (room for " + std::to_string(size) + ")");
            return got;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        throw_errno(context);
    }
}

void fit_send_buffer(int fd, std::size_t message_size) {
    int current = 0;
    socklen_t len = sizeof current;
    if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &current, &len) != 0)
        throw_errno("getsockopt(SO_SNDBUF)");
    const std::size_t needed = message_size + kSendOverhead;
    if (static_cast<std::size_t>(current) >= needed) return;
    // The kernel doubles what it is given (socket(7)), and then holds this
    // message and about one more in flight.
    const int wanted = static_cast<int>(
        std::min<std::size_t>(needed, static_cast<std::size_t>(std::numeric_limits<int>::max())));
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &wanted, sizeof wanted) != 0)
        throw_errno("setsockopt(SO_SNDBUF, " + std::to_string(wanted) + ")");
}

}  // namespace ferry
