// ferry big-sender client|server: a datagram larger than the path MTU, with fragmentation
// forbidden.
#include <netinet/in.h>

#include <cerrno>
#include <memory>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {
namespace {

constexpr std::size_t kMaxBytes = 65535;

struct BigSenderOptions {
    std::string host;
    std::string port = "1060";
    std::size_t size = 65000;
};

int run_client(const BigSenderOptions& o) {
    ConnectOptions connect;
    connect.family = AF_INET;  // IP_MTU_DISCOVER and IP_MTU are IPv4 options
    connect.socktype = SOCK_DGRAM;
    Socket sock = create_connection(o.host, o.port, connect);
    sock.set_option<int>(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO);
    try {
        sock.send(std::string(o.size, '#'));
    } catch (const Error& e) {
        // EMSGSIZE is the kernel saying the datagram exceeds the path MTU.
        if (e.code() != std::error_code(EMSGSIZE, std::system_category())) throw;
        say("Alas, the datagram did not make it");
        say("Actual MTU: {}", sock.get_option<int>(IPPROTO_IP, IP_MTU));
        return 0;
    }
    say("The big datagram was sent!");
    return 0;
}

int run_server(const BigSenderOptions& o) {
    ServerOptions server;
    server.family = AF_INET;
    server.socktype = SOCK_DGRAM;
    Socket sock = create_server(o.host, o.port, server);
    StopSignals stop;
    say("Listening at {}", sock.local_address().to_string());
    std::string buffer(kMaxBytes, '\0');
    while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
        const auto got = *sock.recvfrom(buffer.data(), buffer.size());
        say("Received a datagram of {} bytes from {}", got.size, got.from.to_string());
    }
    return 0;
}

}  // namespace

void add_big_sender(CLI::App& app, Runner& run) {
    auto o = std::make_shared<BigSenderOptions>();
    CLI::App* cmd = app.add_subcommand(
        "big-sender",
        "Send one large UDP datagram with fragmentation forbidden; if the kernel refuses, print "
        "the path MTU. Example: ferry big-sender client 127.0.0.1 --size 65000");
    cmd->require_subcommand(1);
    CLI::App* client = add_role(cmd, "client", "send one datagram of --size bytes of '#'");
    client->add_option("host", o->host, "host to send to")->required();
    add_destination_port_option(client, o->port);
    add_number(client, "--size", o->size, NumberKind::size, {1, 65507}, "datagram size in bytes")
        ->capture_default_str();
    client->callback([o, &run] { run = [o] { return run_client(*o); }; });
    CLI::App* server = add_role(cmd, "server", "print the size of every datagram that arrives");
    server->add_option("interface", o->host, "address to bind (default: every IPv4 interface)");
    add_port_option(server, o->port);
    server->callback([o, &run] { run = [o] { return run_server(*o); }; });
}

}  // namespace ferry::cli
