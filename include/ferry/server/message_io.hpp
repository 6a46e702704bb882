// ferry/server/message_io.hpp: whole messages on a message socket (SOCK_SEQPACKET), never
// truncated in silence.
#pragma once

#include <cstddef>
#include <string>

#include "ferry/socket.hpp"

namespace ferry {

/// Receives one message from a message socket (SOCK_SEQPACKET, SOCK_DGRAM)
/// with one recvmsg(2) into `data`, which has room for `size` bytes.
///
/// Returns the message's size; 0 is end of stream (the peer shut down its
/// writing side or closed). A SOCK_SEQPACKET reader cannot tell an empty
/// message from end of stream (both read as 0, see unix_dgram_recvmsg), so a
/// protocol over one should never send an empty message. Empty (nullopt)
/// when `fd` is non-blocking and no message is waiting. EINTR is retried.
///
/// A message longer than `size` is never passed off as whole: the kernel
/// drops its tail and says so (MSG_TRUNC), and this throws
/// Error(Errc::frame_too_large), e.g. `recv: message of 2000 bytes (room for
/// 1000): message larger than the maximum`. The message is consumed either
/// way. Any other failure throws Error naming `context` (`recv from
/// app.sock: Connection reset by peer`).
///
/// Thread-safety: that of recvmsg(2); two readers each get whole messages.
IoResult recv_message(int fd, void* data, std::size_t size, const std::string& context = "recv");

/// Makes the send buffer (SO_SNDBUF) of `fd` big enough for one message of
/// `message_size` bytes, if it is not already: a Unix message socket refuses
/// a message larger than its send buffer (EMSGSIZE, "Message too long")
/// however long it would wait. Never lowers the buffer. Unprivileged, the
/// kernel caps the buffer at twice net.core.wmem_max (2 x 212992 bytes unless
/// raised): a larger message still cannot be sent, and send says so
/// (EMSGSIZE). Throws Error for getsockopt/setsockopt.
void fit_send_buffer(int fd, std::size_t message_size);

}  // namespace ferry
