// Internal to the unit tests: connected socket pairs over real loopback sockets.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "ferry/create.hpp"
#include "ferry/socket.hpp"
#include "unit/fd_leak_check.hpp"

namespace ferry::test {

/// A listener on `host` port 0, the port read back, one client connected to it
/// and accepted: {client, server side}. Both ends get kGuard as their timeout
/// so that a bug cannot hang the test.
inline std::pair<Socket, Socket> connected_tcp(const std::string& host = "127.0.0.1") {
    Socket listener = create_server(host, "0");
    const Address where = listener.local_address();
    EXPECT_NE(where.port(), 0);
    listener.set_timeout(kGuard);
    Socket client(where.family(), SOCK_STREAM);
    client.set_timeout(kGuard);
    client.connect(where);
    Accepted accepted = *listener.accept();
    accepted.socket.set_timeout(kGuard);
    return {std::move(client), std::move(accepted.socket)};
}

/// The printable port of `address`, as create_connection takes it.
inline std::string port_of(const Address& address) {
    return std::to_string(address.port());
}

}  // namespace ferry::test
