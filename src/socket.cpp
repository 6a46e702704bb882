// The socket object: creation, modes, addresses and options (multicast among them).
// I/O lives in socket_io.cpp.
#include "ferry/socket.hpp"

#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <memory>
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
    return poll_until({&p, 1}, deadline) > 0;
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

// --- Multicast -------------------------------------------------------------

namespace {

in_addr ipv4_of(const Address& a) {
    sockaddr_in sin{};
    std::memcpy(&sin, a.data(), sizeof sin);
    return sin.sin_addr;
}

in6_addr ipv6_of(const Address& a) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, a.data(), sizeof sin6);
    return sin6.sin6_addr;
}

/// The address without its port (and scope), for group_source_req and for messages.
sockaddr_storage host_only(const Address& a) {
    sockaddr_storage ss{};
    if (a.family() == AF_INET) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr = ipv4_of(a);
        std::memcpy(&ss, &sin, sizeof sin);
    } else {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_addr = ipv6_of(a);
        std::memcpy(&ss, &sin6, sizeof sin6);
    }
    return ss;
}

/// The index of the interface that holds `address`, or 0 when none does.
unsigned index_of_address(const Address& address) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return 0;
    const std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> owner(list, ::freeifaddrs);
    for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != address.family()) continue;
        const socklen_t len =
            address.family() == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
        const Address held(i->ifa_addr, len);
        if (held.host() == address.host()) return ::if_nametoindex(i->ifa_name);
    }
    return 0;
}

/// " on eth0", or nothing for any interface: the tail of every multicast message.
std::string on_text(const MulticastInterface& on) {
    return on.is_any() ? std::string() : " on " + on.to_string();
}

/// Checks what the kernel would otherwise answer with a bare EINVAL, so that the
/// message says which address is wrong.
void check_group(const Address& group, const std::string& what) {
    if (!group.is_ip()) throw_errno(EAFNOSUPPORT, what);
    if (!is_multicast_group(group)) throw_errno(EINVAL, what + " (not a multicast address)");
}

}  // namespace

bool is_multicast_group(const Address& address) noexcept {
    if (address.family() == AF_INET) return IN_MULTICAST(ntohl(ipv4_of(address).s_addr));
    if (address.family() == AF_INET6) {
        const in6_addr a = ipv6_of(address);
        return IN6_IS_ADDR_MULTICAST(&a) != 0;
    }
    return false;
}

MulticastInterface MulticastInterface::named(std::string name) {
    MulticastInterface i;
    i.kind_ = Kind::name;
    i.name_ = std::move(name);
    return i;
}

MulticastInterface MulticastInterface::with_index(unsigned index) {
    MulticastInterface i;
    i.kind_ = Kind::index;
    i.index_ = index;
    return i;
}

MulticastInterface MulticastInterface::with_address(const Address& address) {
    if (!address.is_ip())
        throw_errno(EAFNOSUPPORT, "multicast interface address " + address.to_string());
    MulticastInterface i;
    i.kind_ = Kind::address;
    i.address_ = address;
    i.address_.set_port(0);
    return i;
}

MulticastInterface MulticastInterface::parse(std::string_view text) {
    if (text.empty()) return {};
    try {
        return with_address(Address::ip(text, 0));
    } catch (const Error&) {
        return named(std::string(text));
    }
}

const Address* MulticastInterface::ipv4_address() const noexcept {
    return kind_ == Kind::address && address_.family() == AF_INET ? &address_ : nullptr;
}

unsigned MulticastInterface::index() const {
    unsigned index = 0;
    switch (kind_) {
        case Kind::any:
            return 0;
        case Kind::index:
            return index_;
        case Kind::name:
            // if_nametoindex sets ENODEV itself; a name longer than IFNAMSIZ is
            // no interface either, whatever errno the lookup left. It would read
            // a name only up to a NUL: "lo\0x" is no interface, not "lo".
            if (name_.find('\0') == std::string::npos) index = ::if_nametoindex(name_.c_str());
            if (index == 0) throw_errno(ENODEV, "interface " + name_);
            return index;
        case Kind::address:
            index = index_of_address(address_);
            if (index == 0) throw_errno(ENODEV, "interface with address " + address_.host());
            return index;
    }
    return 0;
}

std::string MulticastInterface::to_string() const {
    switch (kind_) {
        case Kind::any:
            return "any interface";
        case Kind::name:
            return name_;
        case Kind::index:
            return "interface " + std::to_string(index_);
        case Kind::address:
            return address_.host();
    }
    return {};
}

namespace {

/// The index for a setsockopt, or an Error that names the call the caller was making.
unsigned index_for(const MulticastInterface& on, const std::string& what) {
    try {
        return on.index();
    } catch (const Error& e) {
        throw Error(e.code(), what);
    }
}

/// The ip_mreqn that IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP and IP_MULTICAST_IF
/// take: it names the interface by index or by address, where the older ip_mreq
/// only takes an address.
ip_mreqn ipv4_request(const in_addr& group, const MulticastInterface& on, const std::string& what) {
    ip_mreqn request{};
    request.imr_multiaddr = group;
    if (const Address* address = on.ipv4_address())
        request.imr_address = ipv4_of(*address);
    else
        request.imr_ifindex = static_cast<int>(index_for(on, what));
    return request;
}

}  // namespace

void Socket::join_group(const Address& group, const MulticastInterface& on) {
    const std::string what = "join group " + group.host() + on_text(on);
    check_group(group, what);
    if (group.family() == AF_INET) {
        const ip_mreqn request = ipv4_request(ipv4_of(group), on, what);
        if (::setsockopt(fd(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &request, sizeof request) != 0)
            throw_errno(what);
    } else {
        ipv6_mreq request{};
        request.ipv6mr_multiaddr = ipv6_of(group);
        request.ipv6mr_interface = index_for(on, what);
        if (::setsockopt(fd(), IPPROTO_IPV6, IPV6_JOIN_GROUP, &request, sizeof request) != 0)
            throw_errno(what);
    }
}

void Socket::leave_group(const Address& group, const MulticastInterface& on) {
    const std::string what = "leave group " + group.host() + on_text(on);
    check_group(group, what);
    if (group.family() == AF_INET) {
        const ip_mreqn request = ipv4_request(ipv4_of(group), on, what);
        if (::setsockopt(fd(), IPPROTO_IP, IP_DROP_MEMBERSHIP, &request, sizeof request) != 0)
            throw_errno(what);
    } else {
        ipv6_mreq request{};
        request.ipv6mr_multiaddr = ipv6_of(group);
        request.ipv6mr_interface = index_for(on, what);
        if (::setsockopt(fd(), IPPROTO_IPV6, IPV6_LEAVE_GROUP, &request, sizeof request) != 0)
            throw_errno(what);
    }
}

namespace {

/// Both source-specific calls: the IPv4 ip_mreq_source form where the interface
/// is an address (or any), the protocol-independent group_source_req otherwise,
/// since ip_mreq_source cannot name an interface by index.
void source_membership(int fd, bool join, const Address& group, const Address& source,
                       const MulticastInterface& on) {
    const std::string what = std::string(join ? "join" : "leave") + " group " + group.host() +
                             " source " + source.host() + on_text(on);
    check_group(group, what);
    if (source.family() != group.family())
        throw_errno(EINVAL, what + " (the source is not of the group's family)");
    if (group.family() == AF_INET && (on.is_any() || on.ipv4_address() != nullptr)) {
        ip_mreq_source request{};
        request.imr_multiaddr = ipv4_of(group);
        request.imr_sourceaddr = ipv4_of(source);
        if (const Address* address = on.ipv4_address()) request.imr_interface = ipv4_of(*address);
        const int name = join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP;
        if (::setsockopt(fd, IPPROTO_IP, name, &request, sizeof request) != 0) throw_errno(what);
        return;
    }
    group_source_req request{};
    request.gsr_interface = index_for(on, what);
    request.gsr_group = host_only(group);
    request.gsr_source = host_only(source);
    const int level = group.family() == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
    const int name = join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP;
    if (::setsockopt(fd, level, name, &request, sizeof request) != 0) throw_errno(what);
}

}  // namespace

void Socket::join_source_group(const Address& group, const Address& source,
                               const MulticastInterface& on) {
    source_membership(fd(), true, group, source, on);
}

void Socket::leave_source_group(const Address& group, const Address& source,
                                const MulticastInterface& on) {
    source_membership(fd(), false, group, source, on);
}

void Socket::set_multicast_ttl(int ttl) {
    const bool v4 = family() == AF_INET;
    const char* name = v4 ? "IP_MULTICAST_TTL" : "IPV6_MULTICAST_HOPS";
    if (::setsockopt(fd(), v4 ? IPPROTO_IP : IPPROTO_IPV6,
                     v4 ? IP_MULTICAST_TTL : IPV6_MULTICAST_HOPS, &ttl, sizeof ttl) != 0)
        throw_errno(std::string("set ") + name + " to " + std::to_string(ttl));
}

int Socket::multicast_ttl() const {
    return family() == AF_INET ? get_option<int>(IPPROTO_IP, IP_MULTICAST_TTL)
                               : get_option<int>(IPPROTO_IPV6, IPV6_MULTICAST_HOPS);
}

void Socket::set_multicast_loop(bool on) {
    if (family() == AF_INET)
        set_option<int>(IPPROTO_IP, IP_MULTICAST_LOOP, on);
    else
        set_option<int>(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on);
}

bool Socket::multicast_loop() const {
    return (family() == AF_INET ? get_option<int>(IPPROTO_IP, IP_MULTICAST_LOOP)
                                : get_option<int>(IPPROTO_IPV6, IPV6_MULTICAST_LOOP)) != 0;
}

void Socket::set_multicast_interface(const MulticastInterface& on) {
    if (family() == AF_INET) {
        const std::string what = "set IP_MULTICAST_IF to " + on.to_string();
        const ip_mreqn request = ipv4_request(in_addr{}, on, what);
        if (::setsockopt(fd(), IPPROTO_IP, IP_MULTICAST_IF, &request, sizeof request) != 0)
            throw_errno(what);
    } else {
        const std::string what = "set IPV6_MULTICAST_IF to " + on.to_string();
        const int index = static_cast<int>(index_for(on, what));
        if (::setsockopt(fd(), IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) != 0)
            throw_errno(what);
    }
}

void Socket::set_multicast_all(bool on) {
    if (family() == AF_INET)
        set_option<int>(IPPROTO_IP, IP_MULTICAST_ALL, on);
    else
        set_option<int>(IPPROTO_IPV6, IPV6_MULTICAST_ALL, on);
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
