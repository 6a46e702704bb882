// ferry/create.hpp: a connected client socket or a listening server socket from a host and service.
#pragma once

#include <optional>
#include <string_view>

#include "ferry/socket.hpp"

namespace ferry {

/// How create_connection() connects.
struct ConnectOptions {
    int family = AF_UNSPEC;      ///< AF_INET or AF_INET6 to force one
    int socktype = SOCK_STREAM;  ///< SOCK_DGRAM "connects" a UDP socket: fixes its peer
    /// Bounds the whole call, name resolution included in the budget; the
    /// returned socket keeps this timeout (as Python's create_connection).
    std::optional<Duration> timeout;
};

/// Resolves `host`/`service` and connects to each address in turn until one
/// accepts, as Python's socket.create_connection. Throws the last address's
/// error (`connect to [::1]:1060: Connection refused`) when none does, and
/// TimeoutError when the budget runs out.
Socket create_connection(std::string_view host, std::string_view service,
                         const ConnectOptions& options = {});

/// How create_server() makes its socket.
struct ServerOptions {
    /// AF_INET or AF_INET6 to force one; AF_UNSPEC takes the first address that binds.
    int family = AF_UNSPEC;
    /// SOCK_STREAM (listens), SOCK_DGRAM or SOCK_SEQPACKET (listens).
    int socktype = SOCK_STREAM;
    /// The listen(2) backlog (the kernel caps it at net.core.somaxconn).
    int backlog = SOMAXCONN;
    /// SO_REUSEADDR, so a restarted server can bind at once. Stream and
    /// seqpacket sockets only: on UDP it would let two servers share the port
    /// unnoticed (use reuse_port to share one on purpose).
    bool reuse_address = true;
    bool reuse_port = false;  ///< SO_REUSEPORT, for one listener per thread
};

/// Binds (and, for stream sockets, listens) on the first address `host`/
/// `service` resolves to that can be bound. `""` binds every interface. IPv6
/// sockets get IPV6_V6ONLY set explicitly, so behaviour does not depend on the
/// net.ipv6.bindv6only sysctl. Throws `bind to 127.0.0.1:1060: Address already in use`.
Socket create_server(std::string_view host, std::string_view service,
                     const ServerOptions& options = {});

}  // namespace ferry
