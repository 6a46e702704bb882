// ferry/address.hpp: socket addresses (IPv4, IPv6, Unix) and name/service resolution.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// One socket address of any family, held by value (a sockaddr_storage and its length).
///
/// Printable form (to_string): `127.0.0.1:1060`, `[::1]:1060`, a path for a Unix
/// socket (`@name` for the abstract namespace), `(unnamed)` for an unbound Unix socket.
class Address {
  public:
    /// An empty address (family AF_UNSPEC), filled by the calls that take a sockaddr*.
    Address() noexcept;
    /// Copies `len` bytes of a sockaddr returned by the kernel (none when `len`
    /// is 0, and `addr` may then be null: an empty address, AF_UNSPEC). Throws
    /// Error (EINVAL) when `len` exceeds sockaddr_storage.
    Address(const sockaddr* addr, socklen_t len);

    /// A numeric IPv4 or IPv6 address, no name lookup; throws Error (EINVAL)
    /// naming the text when it is not a numeric address (a NUL byte in it included).
    static Address ip(std::string_view numeric_host, std::uint16_t port);
    /// A Unix-domain address; a leading '@' selects the Linux abstract namespace.
    /// Throws Error: ENAMETOOLONG when empty or longer than sun_path holds (107
    /// bytes for a path, which needs its terminating NUL; 108 for '@' and an
    /// abstract name, which has none); EINVAL for a NUL byte in a filesystem
    /// path. An abstract name is bytes: it may hold NULs, and prints with them.
    static Address unix_path(std::string_view path);

    /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
    [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
    /// Whether the family is AF_INET or AF_INET6.
    [[nodiscard]] bool is_ip() const noexcept;
    /// The port of an IPv4/IPv6 address, 0 for other families.
    [[nodiscard]] std::uint16_t port() const noexcept;
    /// Sets the port of an IPv4/IPv6 address; nothing for other families.
    void set_port(std::uint16_t port) noexcept;
    /// The numeric host (`127.0.0.1`, `::1`) or the Unix path.
    [[nodiscard]] std::string host() const;
    /// The printable form: `127.0.0.1:1060`, `[::1]:1060`, a path, `@name`.
    [[nodiscard]] std::string to_string() const;

    /// The sockaddr, for the socket calls (with size()).
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    /// The sockaddr, for calls that fill it in (with size_ptr()).
    [[nodiscard]] sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    /// The length of the sockaddr in bytes.
    [[nodiscard]] socklen_t size() const noexcept { return len_; }
    /// For calls that fill the address in: pass data() and a pointer to this.
    [[nodiscard]] socklen_t* size_ptr() noexcept { return &len_; }
    /// The room for any family: what to pass as the length a call may fill.
    [[nodiscard]] static constexpr socklen_t capacity() noexcept {
        return sizeof(sockaddr_storage);
    }

    /// Same family, host and port (and IPv6 scope); Unix addresses byte for byte.
    friend bool operator==(const Address& a, const Address& b) noexcept;

  private:
    sockaddr_storage storage_;
    socklen_t len_;
};

/// Parses a port: a number 0..65535 or a service name from the services
/// database (`domain` -> 53, `http` -> 80), looked up for `protocol` ("tcp" or
/// "udp"; empty means either). Throws Error(Errc::bad_port) naming the text
/// (text with a NUL byte is no port, whatever comes before the NUL).
std::uint16_t parse_port(std::string_view text, std::string_view protocol = {});

/// What to ask getaddrinfo for. Zero means "any".
struct ResolveHints {
    int family = AF_UNSPEC;  ///< AF_INET, AF_INET6 or AF_UNSPEC
    int socktype = 0;        ///< SOCK_STREAM, SOCK_DGRAM, ... or 0 for every type
    /// IPPROTO_TCP, IPPROTO_UDP, ... or 0 for every protocol
    int protocol = 0;
    bool passive = false;  ///< an address to bind: "" means every interface
    /// AI_CANONNAME: the first result carries the host's canonical name
    bool canonical_name = false;
};

/// One getaddrinfo result.
struct Resolved {
    /// The address, with the service's port.
    Address address;
    /// The arguments of socket(2) for this address: family (AF_INET, AF_INET6),
    int family = 0;
    /// socket type (SOCK_STREAM, SOCK_DGRAM, ...)
    int socktype = 0;
    /// and protocol (IPPROTO_TCP, IPPROTO_UDP, ...).
    int protocol = 0;
    std::string canonical_name;  ///< only on the first result, when asked for
};

/// Resolves `host` and `service` with getaddrinfo(3) and returns every result in
/// the resolver's order of preference.
///
/// `host`: a name, a numeric address, `""` (every interface when passive,
/// loopback otherwise) or `<broadcast>` (255.255.255.255). `service`: a number or
/// a service name; empty means port 0.
/// Throws Error with resolver_category() (`resolve nosuch.invalid: Name or
/// service not known`; so does a host with a NUL byte, without a lookup).
std::vector<Resolved> resolve(std::string_view host, std::string_view service,
                              const ResolveHints& hints = {});

/// Printable names for the integer constants: "IPv4", "IPv6", "Unix";
/// "STREAM", "DGRAM", "SEQPACKET", "RAW"; "tcp", "udp".
std::string family_name(int family);
/// "STREAM", "DGRAM", "SEQPACKET", "RAW" (`type N` for any other).
std::string socktype_name(int socktype);
/// "tcp", "udp", or another name from the protocols database (`proto N` when unknown).
std::string protocol_name(int protocol);

}  // namespace ferry
