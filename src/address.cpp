#include "ferry/address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

#include "ferry/error.hpp"

namespace ferry {
namespace {

/// Text for an error message, a NUL byte shown as \0.
std::string printable(std::string_view text) {
    std::string out;
    for (const char c : text)
        out += c == '\0' ? std::string("\\0") : std::string(1, c);
    return out;
}

std::string quoted(std::string_view text) {
    return "'" + printable(text) + "'";
}

bool has_nul(std::string_view text) {
    return text.find('\0') != std::string_view::npos;
}

}  // namespace

Address::Address() noexcept : storage_{}, len_(sizeof(sockaddr_storage)) {
    storage_.ss_family = AF_UNSPEC;
}

Address::Address(const sockaddr* addr, socklen_t len) : storage_{}, len_(len) {
    if (len > sizeof storage_) throw_errno(EINVAL, "address of " + std::to_string(len) + " bytes");
    if (len > 0) std::memcpy(&storage_, addr, len);  // memcpy from null is undefined, even of 0
}

Address Address::ip(std::string_view numeric_host, std::uint16_t port) {
    const std::string host(numeric_host);
    Address a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    // inet_pton reads only up to a NUL: "127.0.0.1\0junk" is no address.
    const bool whole = !has_nul(host);
    if (whole && ::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.len_ = sizeof(sockaddr_in);
    } else if (whole && ::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a.len_ = sizeof(sockaddr_in6);
    } else {
        throw_errno(EINVAL, "numeric address " + quoted(host));
    }
    return a;
}

Address Address::unix_path(std::string_view path) {
    Address a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
    const bool abstract = !path.empty() && path.front() == '@';
    // A path needs room for its terminating NUL; an abstract name ('@' standing for
    // its leading NUL) has none and may fill sun_path.
    const std::size_t room = abstract ? sizeof un->sun_path : sizeof un->sun_path - 1;
    if (path.empty() || path.size() > room)
        throw_errno(ENAMETOOLONG, "unix socket path " + quoted(path));
    // The kernel reads a path up to its first NUL, and a leading NUL would make it an
    // abstract name: neither is the path asked for. An abstract name is bytes, NULs included.
    if (!abstract && has_nul(path))
        throw_errno(EINVAL, "unix socket path " + quoted(path) + " contains a NUL byte");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    // An abstract address is exactly as long as its name: no terminating NUL counts.
    if (abstract) {
        un->sun_path[0] = '\0';
        a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    } else {
        a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    }
    return a;
}

bool Address::is_ip() const noexcept {
    return family() == AF_INET || family() == AF_INET6;
}

std::uint16_t Address::port() const noexcept {
    if (family() == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (family() == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

void Address::set_port(std::uint16_t port) noexcept {
    if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
    if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string Address::host() const {
    char text[INET6_ADDRSTRLEN] = {};
    switch (family()) {
        case AF_INET:
            ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
                        sizeof text);
            return text;
        case AF_INET6:
            ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr,
                        text, sizeof text);
            return text;
        case AF_UNIX: {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
            const std::size_t header = offsetof(sockaddr_un, sun_path);
            if (len_ <= header) return {};
            std::size_t n = len_ - header;
            if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
            return std::string(un->sun_path, strnlen(un->sun_path, n));
        }
        default:
            return {};
    }
}

std::string Address::to_string() const {
    switch (family()) {
        case AF_INET:
            return host() + ":" + std::to_string(port());
        case AF_INET6:
            return "[" + host() + "]:" + std::to_string(port());
        case AF_UNIX: {
            std::string path = host();
            return path.empty() ? "(unnamed)" : path;
        }
        default:
            return "(no address)";
    }
}

bool operator==(const Address& a, const Address& b) noexcept {
    if (a.family() != b.family()) return false;
    if (a.family() == AF_INET) {
        const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
        const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a.family() == AF_INET6) {
        const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
        const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
        return x->sin6_port == y->sin6_port &&
               std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
               x->sin6_scope_id == y->sin6_scope_id;
    }
    return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

std::uint16_t parse_port(std::string_view text, std::string_view protocol) {
    const std::string context = "port " + quoted(text);
    // getservbyname would read a name only up to a NUL: "http\0x" is no service.
    if (text.empty() || has_nul(text)) throw Error(make_error_code(Errc::bad_port), context);
    if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        unsigned long value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || end != text.data() + text.size() || value > 65535)
            throw Error(make_error_code(Errc::bad_port), context);
        return static_cast<std::uint16_t>(value);
    }
    const std::string name(text);
    for (const char* proto : {"tcp", "udp"}) {
        if (!protocol.empty() && protocol != proto) continue;
        servent entry{};
        servent* found = nullptr;
        char buffer[1024];
        if (::getservbyname_r(name.c_str(), proto, &entry, buffer, sizeof buffer, &found) == 0 &&
            found != nullptr)
            return ntohs(static_cast<std::uint16_t>(found->s_port));
    }
    throw Error(make_error_code(Errc::bad_port), context);
}

std::vector<Resolved> resolve(std::string_view host, std::string_view service,
                              const ResolveHints& hints) {
    std::string node(host);
    if (node == "<broadcast>") node = "255.255.255.255";
    const std::string protocol = hints.socktype == SOCK_DGRAM    ? "udp"
                                 : hints.socktype == SOCK_STREAM ? "tcp"
                                                                 : "";
    const std::uint16_t port = service.empty() ? 0 : parse_port(service, protocol);
    const std::string port_text = std::to_string(port);

    addrinfo want{};
    want.ai_family = hints.family;
    want.ai_socktype = hints.socktype;
    want.ai_protocol = hints.protocol;
    want.ai_flags = AI_NUMERICSERV | (hints.passive ? AI_PASSIVE : 0) |
                    (hints.canonical_name ? AI_CANONNAME : 0);

    const std::string context = "resolve " + (node.empty() ? std::string("\"\"") : printable(node));
    // getaddrinfo would look up only what comes before a NUL: such a name does not exist.
    if (has_nul(node)) throw Error(std::error_code(EAI_NONAME, resolver_category()), context);
    addrinfo* list = nullptr;
    const int rc =
        ::getaddrinfo(node.empty() ? nullptr : node.c_str(), port_text.c_str(), &want, &list);
    if (rc == EAI_SYSTEM) throw_errno(context);
    if (rc != 0) throw Error(std::error_code(rc, resolver_category()), context);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(list, &::freeaddrinfo);

    std::vector<Resolved> results;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        Resolved r;
        r.address = Address(ai->ai_addr, ai->ai_addrlen);
        r.family = ai->ai_family;
        r.socktype = ai->ai_socktype;
        r.protocol = ai->ai_protocol;
        if (ai->ai_canonname != nullptr) r.canonical_name = ai->ai_canonname;
        results.push_back(std::move(r));
    }
    return results;
}

std::string family_name(int family) {
    switch (family) {
        case AF_INET:
            return "IPv4";
        case AF_INET6:
            return "IPv6";
        case AF_UNIX:
            return "Unix";
        case AF_UNSPEC:
            return "unspec";
        default:
            return "family " + std::to_string(family);
    }
}

std::string socktype_name(int socktype) {
    switch (socktype) {
        case SOCK_STREAM:
            return "STREAM";
        case SOCK_DGRAM:
            return "DGRAM";
        case SOCK_SEQPACKET:
            return "SEQPACKET";
        case SOCK_RAW:
            return "RAW";
        default:
            return "type " + std::to_string(socktype);
    }
}

std::string protocol_name(int protocol) {
    switch (protocol) {
        case IPPROTO_TCP:
            return "tcp";
        case IPPROTO_UDP:
            return "udp";
        case 0:
            return "ip";
        default: {
            protoent entry{};
            protoent* found = nullptr;
            char buffer[1024];
            if (::getprotobynumber_r(protocol, &entry, buffer, sizeof buffer, &found) == 0 &&
                found != nullptr)
                return found->p_name;
            return "proto " + std::to_string(protocol);
        }
    }
}

}  // namespace ferry
