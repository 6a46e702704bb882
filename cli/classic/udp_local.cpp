// ferry udp-local server|client: the textbook's first UDP pair, on 127.0.0.1.
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

struct UdpLocalOptions {
    std::string port = "1060";
    double timeout = 5.0;
};

int run_server(const UdpLocalOptions& o) {
    ServerOptions server;
    server.family = AF_INET;
    server.socktype = SOCK_DGRAM;
    Socket sock = create_server("127.0.0.1", o.port, server);
    StopSignals stop;
    say("Listening at {}", sock.local_address().to_string());
    std::string buffer(kMaxBytes, '\0');
    while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
        const auto got = *sock.recvfrom(buffer.data(), buffer.size());
        say("The client at {} says {}", got.from.to_string(),
            py_repr(std::string_view(buffer.data(), got.size)));
        sock.sendto(fmt::format("Your data was {} bytes long", got.size), got.from);
    }
    return 0;
}

int run_client(const UdpLocalOptions& o) {
    const Address server = Address::ip("127.0.0.1", parse_port(o.port, "udp"));
    Socket sock(AF_INET, SOCK_DGRAM);
    sock.sendto("The time is " + datetime_now(), server);
    say("The OS assigned me the address {}", sock.local_address().to_string());

    // Unlike the original ("Danger!"), only the server's answer is the answer:
    // any datagram from another address is reported and ignored.
    sock.set_timeout(seconds(o.timeout));
    const Deadline deadline = sock.deadline_from_now();
    std::string buffer(kMaxBytes, '\0');
    for (;;) {
        if (!sock.wait(POLLIN, deadline))
            throw Failure(fmt::format("no reply from {} within {} s", server.to_string(),
                                      seconds_text(seconds(o.timeout))));
        const auto got = *sock.recvfrom(buffer.data(), buffer.size());
        const std::string_view text(buffer.data(), got.size);
        if (got.from == server) {
            say("The server {} replied {}", got.from.to_string(), py_repr(text));
            return 0;
        }
        say("Ignoring a datagram from {} (not the server)", got.from.to_string());
    }
}

}  // namespace

void add_udp_local(CLI::App& app, Runner& run) {
    auto o = std::make_shared<UdpLocalOptions>();
    CLI::App* cmd = app.add_subcommand(
        "udp-local",
        "UDP server and client on 127.0.0.1: the client sends the time, the server "
        "answers with its length. Example: ferry udp-local server & ferry udp-local client");
    cmd->require_subcommand(1);
    CLI::App* server = add_role(cmd, "server", "bind 127.0.0.1:PORT and answer every datagram");
    add_port_option(server, o->port);
    server->callback([o, &run] { run = [o] { return run_server(*o); }; });
    CLI::App* client =
        add_role(cmd, "client", "send one datagram to 127.0.0.1:PORT, print the reply");
    add_destination_port_option(client, o->port);
    add_number(client, "--timeout", o->timeout, NumberKind::seconds, {kMillisecond, kDay},
               "seconds to wait for the reply")
        ->capture_default_str();
    client->callback([o, &run] { run = [o] { return run_client(*o); }; });
}

}  // namespace ferry::cli
