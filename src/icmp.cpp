// ICMP echo: opening the datagram or raw socket, the RFC 1071 checksum, building a request
// and classifying what comes back (ICMP, RFC 792; ICMPv6, RFC 4443).
#include "ferry/icmp.hpp"

#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "ferry/error.hpp"

namespace ferry::icmp {
namespace {

constexpr std::uint8_t kEchoRequest4 = ICMP_ECHO;
constexpr std::uint8_t kEchoReply4 = ICMP_ECHOREPLY;
constexpr std::uint8_t kEchoRequest6 = ICMP6_ECHO_REQUEST;
constexpr std::uint8_t kEchoReply6 = ICMP6_ECHO_REPLY;
constexpr std::size_t kHeader = 8;         // type, code, checksum, identifier, sequence
constexpr std::size_t kMaxPacket = 65536;  // an IPv4 packet with its header, or an ICMPv6 message

std::uint16_t read16(const unsigned char* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

/// Why the kernel refuses ICMP datagram sockets, which is a setting, not a right: the
/// caller's group must be inside net.ipv4.ping_group_range (ICMPv6 uses it too).
std::string range_hint(const Error& e) {
    if (e.code() != std::error_code(EACCES, std::system_category())) return {};
    std::ifstream range("/proc/sys/net/ipv4/ping_group_range");
    std::string low, high;
    if (!(range >> low >> high)) return {};
    return " (net.ipv4.ping_group_range is " + low + " " + high + ", this process's group " +
           std::to_string(::getegid()) + ")";
}

}  // namespace

std::string_view mode_name(Mode mode) {
    return mode == Mode::datagram ? "datagram" : "raw";
}

Socket open_socket(int family, std::optional<Mode> mode, Mode& opened) {
    const int protocol = family == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
    std::string tried;  // "ICMP datagram socket: Permission denied (...); raw socket"
    for (const Mode m : {Mode::datagram, Mode::raw}) {
        if (mode && *mode != m) continue;
        try {
            Socket sock(family, m == Mode::datagram ? int{SOCK_DGRAM} : int{SOCK_RAW}, protocol);
            if (family == AF_INET6)
                sock.set_option<int>(IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
            else
                sock.set_option<int>(IPPROTO_IP, IP_RECVTTL, 1);
            opened = m;
            return sock;
        } catch (const Error& e) {
            const bool last = mode.has_value() || m == Mode::raw;
            if (!tried.empty()) tried += "; ";
            const std::string what =
                m == Mode::datagram ? "ICMP datagram socket" + range_hint(e) : "raw socket";
            if (!last) {
                tried += what + ": " + e.code().message();
                continue;
            }
            tried += what;  // Error appends the reason itself
            throw Error(e.code(), "cannot open an ICMP socket: " + tried);
        }
    }
    throw Error(std::make_error_code(std::errc::invalid_argument), "cannot open an ICMP socket");
}

std::uint16_t checksum(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint32_t sum = 0;
    for (; size > 1; p += 2, size -= 2)
        sum += read16(p);
    if (size == 1) sum += static_cast<std::uint32_t>(p[0] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

std::string echo_request(int family, std::uint16_t id, std::uint16_t sequence,
                         std::string_view payload) {
    std::string packet(kHeader + payload.size(), '\0');
    packet[0] = static_cast<char>(family == AF_INET6 ? kEchoRequest6 : kEchoRequest4);
    packet[4] = static_cast<char>(id >> 8);
    packet[5] = static_cast<char>(id & 0xff);
    packet[6] = static_cast<char>(sequence >> 8);
    packet[7] = static_cast<char>(sequence & 0xff);
    std::memcpy(packet.data() + kHeader, payload.data(), payload.size());
    if (family != AF_INET6) {
        const std::uint16_t sum = checksum(packet.data(), packet.size());
        packet[2] = static_cast<char>(sum >> 8);
        packet[3] = static_cast<char>(sum & 0xff);
    }
    return packet;
}

std::optional<Received> receive_reply(Socket& sock, int family, Mode mode) {
    std::vector<unsigned char> buf(kMaxPacket);
    alignas(cmsghdr) std::array<char, 256> control{};
    Address from;
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = from.data();
    msg.msg_namelen = sizeof(sockaddr_storage);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n = 0;
    do {
        n = ::recvmsg(sock.fd(), &msg, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        throw_errno("recvmsg (ICMP)");
    }
    Received got;
    got.reply.from = Address(from.data(), msg.msg_namelen);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        const bool ttl = (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                         (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT);
        if (!ttl) continue;
        int value = 0;
        std::memcpy(&value, CMSG_DATA(c), sizeof value);
        got.reply.ttl = value;
    }
    const unsigned char* icmp = buf.data();
    std::size_t size = static_cast<std::size_t>(n);
    if (family == AF_INET && mode == Mode::raw) {
        // A raw IPv4 socket hands over the IP header too: skip it, and take the TTL from it.
        if (size < 20) return got;
        const std::size_t header = static_cast<std::size_t>(buf[0] & 0x0f) * 4;
        if (header < 20 || size < header) return got;
        got.reply.ttl = buf[8];
        icmp += header;
        size -= header;
    }
    if (size < kHeader) return got;
    const std::uint8_t reply_type = family == AF_INET6 ? kEchoReply6 : kEchoReply4;
    if (icmp[0] != reply_type || icmp[1] != 0) return got;
    // The kernel checks the checksum of what it gives datagram and ICMPv6 sockets; a raw
    // IPv4 socket gets a copy before that check, so a corrupted reply shows up here.
    if (family == AF_INET && mode == Mode::raw && checksum(icmp, size) != 0) {
        got.kind = Received::Kind::bad_checksum;
    } else {
        got.kind = Received::Kind::reply;
    }
    got.reply.id = read16(icmp + 4);
    got.reply.sequence = read16(icmp + 6);
    got.reply.icmp_size = size;
    got.reply.payload.assign(reinterpret_cast<const char*>(icmp + kHeader), size - kHeader);
    return got;
}

}  // namespace ferry::icmp
