// Internal to the ferry command: the echo service's options, shared by its server and client files.
#pragma once

#include <optional>
#include <string>

#include "ferry/server/stream_server.hpp"

namespace ferry::cli {

struct EchoOptions {
    std::string host = "127.0.0.1";
    std::string port = "1060";
    std::string unix_path;   ///< -U: a Unix socket instead of TCP (stream, or seqpacket)
    bool seqpacket = false;  ///< --seqpacket: -U is SOCK_SEQPACKET, one message per send
    bool udp = false;
    std::string model = "epoll";
    std::string framing = "raw";
    // server limits (defaults in ServerLimits)
    std::size_t max_conns = 10000;
    double idle_timeout = 300;  ///< 0 = never
    std::size_t max_frame = 1 << 20;
    std::size_t high_water = 1 << 20;
    double stalled_timeout = 10;
    double drain_timeout = 0.5;  // so that a stop signal ends the server within a second
    std::optional<unsigned> threads;  ///< default: 4 for the pool, 1 loop for epoll
    // client
    std::optional<std::size_t> count;
    std::size_t size = 64;
    double timeout = 10;
    bool retry = false;
    std::uint32_t seed = 1;
};

/// The address a server binds or a client connects to: the Unix path with -U,
/// else the first address HOST PORT resolves to for the socket type.
Address echo_address(const EchoOptions& o, bool passive);

int run_echo_server(const EchoOptions& o);
int run_udp_echo_server(const EchoOptions& o);
int run_echo_client(const EchoOptions& o);

}  // namespace ferry::cli
