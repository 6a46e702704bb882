// ferry/icmp.hpp: ICMP echo (ping) over the unprivileged ICMP datagram socket or a raw socket:
// the socket, the Internet checksum, building a request and reading a reply.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ferry/socket.hpp"

/// ICMP echo (ping): the socket, the checksum, requests and replies.
namespace ferry::icmp {

/// How an ICMP socket was opened.
enum class Mode {
    /// SOCK_DGRAM with IPPROTO_ICMP/ICMPV6: no privilege needed where the
    /// kernel allows the caller's group (net.ipv4.ping_group_range); the
    /// kernel sets the identifier, fills in the checksum, checks the reply's
    /// and hands this socket only the replies to its own requests.
    datagram,
    /// SOCK_RAW: needs CAP_NET_RAW; sees every ICMP message of the host, the
    /// IPv4 header included, so the caller matches identifiers and checks
    /// checksums itself.
    raw,
};

/// "datagram" or "raw".
std::string_view mode_name(Mode mode);

/// An ICMP socket for `family` (AF_INET or AF_INET6). With a mode it opens
/// that kind or fails; without, the datagram kind where permitted, else raw.
/// Asks for the reply's TTL / hop limit as ancillary data (IP_RECVTTL,
/// IPV6_RECVHOPLIMIT), read back by receive_reply().
/// Errors: Error with both reasons when neither kind may be opened
/// ("ICMP datagram socket: Permission denied (net.ipv4.ping_group_range
/// excludes group 0); raw socket: Operation not permitted").
Socket open_socket(int family, std::optional<Mode> mode, Mode& opened);

/// The Internet checksum of RFC 1071: the ones' complement of the ones'
/// complement sum of the 16-bit words (an odd last byte padded with zero).
/// A message that carries its own correct checksum sums to 0.
std::uint16_t checksum(const void* data, std::size_t size);

/// An echo request (ICMP type 8, or ICMPv6 type 128) with `payload`. Its
/// checksum is filled in for IPv4; for ICMPv6 the kernel computes it over
/// the pseudo-header (RFC 3542, 3.1), so it is left 0.
std::string echo_request(int family, std::uint16_t id, std::uint16_t sequence,
                         std::string_view payload);

/// An echo reply as it came: who sent it, its header fields and payload.
struct EchoReply {
    /// The sender.
    Address from;
    /// The identifier (on the datagram kind, the one the kernel gave the socket).
    std::uint16_t id = 0;
    /// The sequence number of the request it answers.
    std::uint16_t sequence = 0;
    std::size_t icmp_size = 0;  ///< ICMP header and payload, as ping prints it
    std::optional<int> ttl;     ///< TTL or hop limit, when the kernel told it
    /// The data after the ICMP header.
    std::string payload;
};

/// What one receive found.
struct Received {
    /// What kind of message it was.
    enum class Kind {
        reply,         ///< an echo reply: `reply` is filled in
        bad_checksum,  ///< an echo reply whose checksum is wrong (raw IPv4 only; not counted)
        other,         ///< some other ICMP message (a request, an error, a truncated packet)
    };
    /// What was received.
    Kind kind = Kind::other;
    /// The reply, when kind is Kind::reply.
    EchoReply reply;
};

/// Receives one message from `sock` (which must be readable, or blocks as
/// its timeout says) and classifies it. Returns nullopt when nothing was
/// there (non-blocking). Errors: Error from recvmsg.
std::optional<Received> receive_reply(Socket& sock, int family, Mode mode);

}  // namespace ferry::icmp
