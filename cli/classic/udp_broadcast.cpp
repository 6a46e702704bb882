// ferry udp-broadcast server|client: one datagram to a whole network.
#include <memory>

#include "common/command.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "ferry/create.hpp"

namespace ferry::cli {
namespace {

constexpr std::size_t kMaxBytes = 65535;
constexpr std::string_view kMessage = "Broadcast datagram!";

struct UdpBroadcastOptions {
    std::string host;
    std::string port = "1060";
};

int run_server(const UdpBroadcastOptions& o) {
    ServerOptions server;
    server.family = AF_INET;  // broadcast is an IPv4 idea
    server.socktype = SOCK_DGRAM;
    Socket sock = create_server(o.host, o.port, server);
    sock.set_broadcast(true);
    StopSignals stop;
    say("Listening at {}", sock.local_address().to_string());
    std::string buffer(kMaxBytes, '\0');
    while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
        const auto got = *sock.recvfrom(buffer.data(), buffer.size());
        say("The client at {} says: {}", got.from.to_string(),
            py_repr(std::string_view(buffer.data(), got.size)));
    }
    return 0;
}

int run_client(const UdpBroadcastOptions& o) {
    ResolveHints hints;
    hints.family = AF_INET;
    hints.socktype = SOCK_DGRAM;
    const Address to = resolve(o.host, o.port, hints).front().address;
    Socket sock(AF_INET, SOCK_DGRAM);
    sock.set_broadcast(true);
    sock.sendto(kMessage, to);
    say("Sent {} to {}", py_repr(kMessage), to.to_string());
    return 0;
}

}  // namespace

void add_udp_broadcast(CLI::App& app, Runner& run) {
    auto o = std::make_shared<UdpBroadcastOptions>();
    CLI::App* cmd = app.add_subcommand(
        "udp-broadcast",
        "UDP broadcast: the client sends one datagram with SO_BROADCAST to a network's broadcast "
        "address, every server on that network prints it. Example: ferry udp-broadcast server "
        "0.0.0.0 & ferry udp-broadcast client 127.255.255.255");
    cmd->require_subcommand(1);
    CLI::App* server = add_role(cmd, "server", "print every datagram that arrives");
    server
        ->add_option("interface", o->host, "address to bind (0.0.0.0 or \"\" for every interface)")
        ->required();
    add_port_option(server, o->port);
    server->callback([o, &run] { run = [o] { return run_server(*o); }; });
    CLI::App* client = add_role(cmd, "client", "send 'Broadcast datagram!' to NETWORK");
    client->add_option("network", o->host, "broadcast address, e.g. 10.0.0.255, or <broadcast>")
        ->required();
    add_destination_port_option(client, o->port);
    client->callback([o, &run] { run = [o] { return run_client(*o); }; });
}

}  // namespace ferry::cli
