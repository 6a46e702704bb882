// ferry listen [HOST] PORT: netcat's server. Waits for one client (-k: one
// after another), then standard input to it and it to standard output.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <fmt/core.h>

#include "common/command.hpp"
#include "common/stop_signals.hpp"
#include "common/unix_socket_file.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "netcat/relay.hpp"

namespace ferry::cli {
namespace {

struct ListenCommand {
    NetcatOptions net;
    std::string first;   // HOST, or the PORT when it is the only argument
    std::string second;  // PORT
    bool keep = false;
    // Filled in by check():
    std::string host;
    std::uint16_t port = 0;
};

/// Everything about the command line, before any socket is opened.
void check(ListenCommand& o) {
    check_netcat_options(o.net);
    if (!o.net.unix_path.empty()) {
        if (!o.first.empty() || !o.second.empty())
            throw CLI::ValidationError("-U PATH replaces [HOST] PORT: give one or the other");
        return;
    }
    if (o.first.empty() && o.second.empty())
        throw CLI::ValidationError("listen needs a PORT (0: any free port) or -U PATH");
    if (o.second.empty()) {
        o.port = checked_port(o.first, o.net);
    } else {
        o.host = strip_brackets(o.first);
        o.port = checked_port(o.second, o.net);
    }
}

/// Stderr, not stdout: standard output carries the peer's bytes and nothing else.
template <class... Args>
void note(fmt::format_string<Args...> format, Args&&... args) {
    fmt::print(stderr, format, std::forward<Args>(args)...);
    std::fputc('\n', stderr);
}

Socket open_listener(const ListenCommand& o, SocketFile& file) {
    if (!o.net.unix_path.empty()) {
        const Address address = Address::unix_path(o.net.unix_path);
        remove_stale_socket_file(o.net.unix_path, address, o.net.socktype());
        Socket s(AF_UNIX, o.net.socktype());
        s.bind(address);
        file.bound(o.net.unix_path);
        s.listen(o.keep ? SOMAXCONN : 1);
        return s;
    }
    ServerOptions options;
    options.family = o.net.family();
    options.socktype = o.net.socktype();
    options.backlog = o.keep ? SOMAXCONN : 1;
    // SO_REUSEADDR lets a restarted TCP server bind at once. On UDP it would
    // let two servers share the port, so a port in use would not be an error.
    options.reuse_address = !o.net.udp;
    return create_server(o.host, std::to_string(o.port), options);
}

/// Waits for a UDP peer: the first datagram's sender becomes the peer (the
/// socket is connected to it, so replies go there and only its datagrams are
/// read). The datagram itself is only peeked at: the relay reads it.
std::optional<Address> first_datagram(Socket& sock) {
    char byte = 0;
    const auto got = sock.recvfrom(&byte, 1, MSG_PEEK);
    if (!got) return std::nullopt;
    sock.connect(got->from);
    return got->from;
}

/// Unconnects a UDP socket (connect to AF_UNSPEC), so that the next
/// datagram's sender becomes the next peer. The kernel then also forgets a
/// port it picked itself (bind to port 0 sets no SOCK_BINDPORT_LOCK, see
/// __udp_disconnect): the socket is bound again to the address it printed.
void forget_peer(Socket& sock, const Address& bound) {
    sock.connect(Address());
    if (sock.local_address().port() != bound.port()) sock.bind(bound);
}

int run_listen(const ListenCommand& o) {
    keep_standard_streams_open();
    SocketFile file;  // declared first: removed after the socket is closed
    Socket listener = open_listener(o, file);
    listener.set_blocking(false);
    StopSignals stop;
    const Address bound = listener.local_address();
    note("Listening at {}", bound.to_string());

    Relay relay(o.net.relay_options(stop.fd()));
    for (;;) {
        if (stop.wait(listener, POLLIN) != StopSignals::Wake::ready) return 0;
        Socket accepted;
        Socket* session = &listener;
        std::string peer;
        if (o.net.udp) {
            std::optional<Address> from;
            try {
                from = first_datagram(listener);
            } catch (const Error& e) {
                // An ICMP error for the previous peer is reported once, here.
                if (!o.keep) throw;
                note("ferry: {}", e.what());
                continue;
            }
            if (!from) continue;
            peer = from->to_string();
            note("Datagram from {}: replies go there", peer);
        } else {
            auto client = listener.accept();
            if (!client) continue;  // the client left before we took it
            accepted = std::move(client->socket);
            session = &accepted;
            if (!o.keep) listener.close();  // one client: nobody else may queue up
            if (o.net.unix_path.empty()) {
                peer = client->peer.to_string();
                note("Connection from {}", peer);
            } else {
                peer = o.net.unix_path;
                note("Connection on {}", peer);
            }
        }

        RelayEnd end = RelayEnd::done;
        try {
            end = relay.run(*session, peer);
        } catch (const Error& e) {
            // A client's failure ends its session; with -k the next one is served.
            if (!o.keep) throw;
            note("ferry: {}", e.what());
        }
        if (end == RelayEnd::stopped) return 0;
        if (end == RelayEnd::idle) {
            if (!o.keep) throw Failure(idle_message(o.net, peer));
            note("ferry: {}", idle_message(o.net, peer));
        }
        if (!o.keep) return 0;
        if (o.net.udp) forget_peer(listener, bound);
    }
}

}  // namespace

void add_listen(CLI::App& app, Runner& run) {
    auto o = std::make_shared<ListenCommand>();
    CLI::App* cmd = app.add_subcommand(
        "listen",
        "Wait for a client at [HOST] PORT (netcat's server) and relay: standard input to it, it to "
        "standard output, until both directions are done. Example: ferry listen 127.0.0.1 5000");
    cmd->footer(
        "Prints 'Listening at ADDRESS' on stderr (port 0 picks a free port: read it there), then "
        "'Connection from PEER'; standard output carries the peer's bytes only.\n"
        "End of input: the writing side is shut down and what arrives is still printed until the "
        "client ends too (the half-close); -q S ends the session S seconds after end of input "
        "instead.\n"
        "Without -k: one client, then exit 0. With -k: one client after another; standard input "
        "goes to the client of the moment, and once it has ended every later client gets end of "
        "input at once. A client's failure is one line on stderr and the next is served.\n"
        "-u: the first datagram's sender becomes the peer and replies go there; UDP has no end "
        "of stream, so the session ends by -q, -w or Ctrl-C (with -k the next sender is served).\n"
        "-U PATH: a socket file left by a server that is gone is replaced; a live one or a file "
        "that is not a socket is left alone (exit 1). The file is removed on exit. With "
        "--seqpacket the socket is SOCK_SEQPACKET: each read of standard input (up to 64 KiB) is "
        "one message, each message received is written out whole, a longer one ends the session "
        "(exit 1), end of input is the half-close.\n"
        "Ctrl-C or SIGTERM: close and exit 0. Exit 1 on a run-time failure (port in use, reset "
        "by peer, standard output closed, -w idle), 2 on bad usage.\n"
        "Examples:\n"
        "  ferry listen 5000 > received          (every IPv4 interface)\n"
        "  true | ferry listen -k 127.0.0.1 0 > log   (a sink for one client after another, any "
        "free port)\n"
        "  ferry listen -U app.sock\n"
        "  ferry listen -U app.sock --seqpacket");
    cmd->add_option("host", o->first,
                    "interface to listen at: a name or numeric address ([::1] works too); default "
                    "every interface (IPv4, or '::' with -6). A lone argument is the PORT")
        ->type_name("HOST");
    cmd->add_option("port", o->second, "port number or service name, 0 for any free port")
        ->type_name("PORT");
    add_netcat_options(
        cmd, o->net,
        "idle timeout: end a session when no data moved either way for this many seconds "
        "(exit 1, or the next client with -k); waiting for a client is not bounded");
    cmd->add_flag("-k,--keep-open", o->keep, "keep listening: serve one client after another");
    cmd->callback([o, &run] {
        check(*o);
        run = [o] { return run_listen(*o); };
    });
}

}  // namespace ferry::cli
