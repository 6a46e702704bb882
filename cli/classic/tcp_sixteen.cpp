// ferry tcp-sixteen server|client: exactly sixteen octets each way over TCP.
#include <memory>
#include <optional>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {
namespace {

struct TcpSixteenOptions {
    std::string host;
    std::string port = "1060";
    double timeout = 30.0;
};

/// recv_exact(16) that also wakes for a stop signal (nullopt then), so that
/// Ctrl-C or SIGTERM stops the server while a client is silent.
std::optional<std::string> recv_sixteen(Socket& sc, const StopSignals& stop, Duration timeout) {
    const Deadline deadline = Clock::now() + timeout;
    const std::string where = "recv from " + sc.peer_address().to_string();
    std::string message(16, '\0');
    std::size_t got = 0;
    while (got < message.size()) {
        const auto wake = stop.wait(sc, POLLIN, deadline);
        if (wake == StopSignals::Wake::stop) return std::nullopt;
        if (wake == StopSignals::Wake::timeout) throw TimeoutError(where);
        const std::size_t n = sc.recv_before(message.data() + got, message.size() - got, deadline);
        if (n == 0) throw ShortReadError(where, message.size(), got);
        got += n;
    }
    return message;
}

void serve_one(Accepted& client, const TcpSixteenOptions& o, const StopSignals& stop) {
    Socket& sc = client.socket;
    sc.set_timeout(seconds(o.timeout));
    say("We have accepted a connection from {}", client.peer.to_string());
    say("  Socket name: {}", sc.local_address().to_string());
    say("  Socket peer: {}", sc.peer_address().to_string());
    const auto message = recv_sixteen(sc, stop, seconds(o.timeout));
    if (!message) return;  // stopping: the caller closes the socket and the server
    say("  Incoming sixteen-octet message: {}", py_repr_bytes(*message));
    sc.send_all("Farewell, client");
    sc.close();
    say("  Reply sent, socket closed");
}

int run_server(const TcpSixteenOptions& o) {
    ServerOptions server;
    server.backlog = 1;  // the textbook's: one client served, one waiting
    Socket sock = create_server(o.host, o.port, server);
    StopSignals stop;
    say("Listening at {}", sock.local_address().to_string());
    while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
        auto client = sock.accept();
        // A client that fails (short read, reset, silence) ends its own
        // connection, not the server.
        try {
            serve_one(*client, o, stop);
        } catch (const Error& e) {
            fmt::print(stderr, "ferry: {}\n", e.what());
            say("  Client failed, socket closed");
        }
    }
    return 0;
}

int run_client(const TcpSixteenOptions& o) {
    ConnectOptions connect;
    connect.timeout = seconds(o.timeout);
    Socket sock = create_connection(o.host, o.port, connect);
    say("Client has been assigned socket name {}", sock.local_address().to_string());
    sock.send_all("Hi there, server");
    const std::string reply = sock.recv_exact(16);
    say("The server said {}", py_repr_bytes(reply));
    return 0;
}

}  // namespace

void add_tcp_sixteen(CLI::App& app, Runner& run) {
    auto o = std::make_shared<TcpSixteenOptions>();
    CLI::App* cmd = app.add_subcommand(
        "tcp-sixteen",
        "TCP server and client that exchange exactly sixteen octets each way (recv_exact). "
        "Example: ferry tcp-sixteen server 127.0.0.1 & ferry tcp-sixteen client 127.0.0.1");
    cmd->require_subcommand(1);
    CLI::App* server = add_role(cmd, "server", "serve one client at a time (listen backlog 1)");
    server->add_option("host", o->host, "interface to listen at")->required();
    add_port_option(server, o->port);
    add_number(server, "--timeout", o->timeout, NumberKind::seconds, {kMillisecond, kDay},
               "seconds a client may take before it is dropped")
        ->capture_default_str();
    server->callback([o, &run] { run = [o] { return run_server(*o); }; });
    CLI::App* client = add_role(cmd, "client", "send 'Hi there, server', read the 16-byte reply");
    client->add_option("host", o->host, "host to connect to")->required();
    add_destination_port_option(client, o->port);
    add_number(client, "--timeout", o->timeout, NumberKind::seconds, {kMillisecond, kDay},
               "seconds for the connect and for each exchange")
        ->capture_default_str();
    client->callback([o, &run] { run = [o] { return run_client(*o); }; });
}

}  // namespace ferry::cli
