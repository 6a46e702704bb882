// ferry timestamp server|client: every line comes back prefixed with the server's time (TCP or
// UDP).
#include <unistd.h>

#include <memory>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/input_file.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {
namespace {

constexpr std::size_t kBufSize = 1024;  // the original's BUFSIZ

struct TimestampOptions {
    std::string host;
    std::string port = "21567";
    bool udp = false;
    double timeout = 10.0;
};

std::string stamped(std::string_view data) {
    return "[" + ctime_now() + "] " + std::string(data);
}

/// Answers one client until it closes. The socket is non-blocking and every
/// wait also wakes for a stop signal: a client that sends without reading its
/// replies fills the send buffer, and must not keep the server from stopping.
void serve_tcp_client(Accepted& client, const StopSignals& stop) {
    Socket& sock = client.socket;
    sock.set_blocking(false);
    char data[kBufSize];
    while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
        const auto n = sock.recv(data, sizeof data);
        if (!n) continue;
        if (*n == 0) break;
        const std::string reply = stamped({data, *n});
        for (std::size_t sent = 0; sent < reply.size();) {
            if (const auto k = sock.send(reply.data() + sent, reply.size() - sent)) {
                sent += *k;
                continue;
            }
            if (stop.wait(sock, POLLOUT) != StopSignals::Wake::ready) return;
        }
    }
}

int run_server(const TimestampOptions& o) {
    ServerOptions server;
    server.socktype = o.udp ? SOCK_DGRAM : SOCK_STREAM;
    if (o.host.empty()) server.family = AF_INET;  // the original's HOST = '' (every IPv4 interface)
    Socket sock = create_server(o.host, o.port, server);
    StopSignals stop;
    say("Listening at {}", sock.local_address().to_string());
    if (o.udp) {
        char data[kBufSize];
        for (;;) {
            say("waiting for message...");
            if (stop.wait(sock, POLLIN) != StopSignals::Wake::ready) return 0;
            const auto got = *sock.recvfrom(data, sizeof data);
            sock.sendto(stamped({data, got.size}), got.from);
            say("...received from and returned to: {}", got.from.to_string());
        }
    }
    for (;;) {
        say("waiting for connection...");
        if (stop.wait(sock, POLLIN) != StopSignals::Wake::ready) return 0;
        auto client = sock.accept();
        say("...connected from: {}", client->peer.to_string());
        try {
            serve_tcp_client(*client, stop);
        } catch (const Error& e) {
            fmt::print(stderr, "ferry: {}\n", e.what());
        }
        if (stop.requested()) return 0;
    }
}

int run_client(const TimestampOptions& o) {
    ConnectOptions connect;
    connect.socktype = o.udp ? SOCK_DGRAM : SOCK_STREAM;
    connect.timeout = seconds(o.timeout);
    Socket sock = create_connection(o.host, o.port, connect);
    const bool prompt = ::isatty(0) == 1;
    std::string line;
    char data[kBufSize];
    for (;;) {
        if (prompt) {
            fmt::print("> ");
            std::fflush(stdout);
        }
        if (!read_input_line(line) || line.empty()) break;
        sock.send_all(line);
        const std::size_t n = *sock.recv(data, sizeof data);
        if (n == 0) break;
        say("{}", std::string_view(data, n));
    }
    return 0;
}

}  // namespace

void add_timestamp(CLI::App& app, Runner& run) {
    auto o = std::make_shared<TimestampOptions>();
    CLI::App* cmd = app.add_subcommand(
        "timestamp",
        "Time-stamp server and client (TCP, or UDP with --udp): each line the client reads from "
        "standard input comes back as '[ctime] line'. Example: ferry timestamp server & echo hi | "
        "ferry timestamp client");
    cmd->require_subcommand(1);
    CLI::App* server = add_role(cmd, "server", "answer each message with the time and the message");
    server->add_option("host", o->host, "interface to listen at (default: every IPv4 interface)");
    add_port_option(server, o->port);
    server->add_flag("--udp", o->udp, "UDP instead of TCP");
    server->callback([o, &run] { run = [o] { return run_server(*o); }; });
    CLI::App* client =
        add_role(cmd, "client", "send each line of standard input, print each reply");
    client->add_option("host", o->host, "server host (default: localhost)");
    add_destination_port_option(client, o->port);
    client->add_flag("--udp", o->udp, "UDP instead of TCP");
    add_number(client, "--timeout", o->timeout, NumberKind::seconds, {kMillisecond, kDay},
               "seconds to wait for the connection and each reply")
        ->capture_default_str();
    client->callback([o, &run] {
        if (o->host.empty()) o->host = "localhost";
        run = [o] { return run_client(*o); };
    });
}

}  // namespace ferry::cli
