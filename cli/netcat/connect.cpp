// ferry connect HOST PORT: netcat's client. Standard input to the socket, the
// socket to standard output; -z reports which ports accept a connection.
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/command.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "netcat/relay.hpp"

namespace ferry::cli {
namespace {

constexpr double kScanDefaultWait = 1.0;  // -z without -w: seconds per connect
constexpr std::size_t kScanWindow = 256;  // connects in flight at once during -z

struct ConnectCommand {
    NetcatOptions net;
    std::string host_arg;
    std::string port_arg;
    bool scan = false;
    // Filled in by check():
    std::string host;
    std::uint16_t first_port = 0;
    std::uint16_t last_port = 0;
};

/// PORT or PORT-PORT for -z. Service names may contain '-' themselves
/// (`netbios-ns`), so the whole text is tried as one port first, then every
/// '-' as the separator.
std::pair<std::uint16_t, std::uint16_t> parse_port_range(const std::string& text) {
    std::optional<std::pair<std::uint16_t, std::uint16_t>> range;
    try {
        const std::uint16_t p = parse_port(text, "tcp");
        range.emplace(p, p);
    } catch (const Error&) {
        for (std::size_t dash = text.find('-'); dash != std::string::npos && !range;
             dash = text.find('-', dash + 1)) {
            try {
                range.emplace(parse_port(text.substr(0, dash), "tcp"),
                              parse_port(text.substr(dash + 1), "tcp"));
            } catch (const Error&) {
            }
        }
    }
    if (!range)
        throw CLI::ValidationError(fmt::format(
            "port '{}' is not PORT or FIRST-LAST (numbers in 1..65535 or tcp service names)",
            text));
    if (range->first == 0) throw CLI::ValidationError("-z: port 0 cannot be connected to");
    if (range->first > range->second)
        throw CLI::ValidationError(fmt::format("port range '{}' is empty: {} is above {}", text,
                                               range->first, range->second));
    return *range;
}

/// Everything about the command line, before any socket is opened.
void check(ConnectCommand& o) {
    check_netcat_options(o.net);
    if (!o.net.unix_path.empty()) {
        if (!o.host_arg.empty() || !o.port_arg.empty())
            throw CLI::ValidationError("-U PATH replaces HOST PORT: give one or the other");
        if (o.scan) throw CLI::ValidationError("-z scans TCP ports: it does not combine with -U");
        return;
    }
    if (o.host_arg.empty() && o.port_arg.empty())
        throw CLI::ValidationError("connect needs HOST and PORT (or -U PATH)");
    if (o.port_arg.empty()) throw CLI::ValidationError("connect needs a PORT after the HOST");
    o.host = strip_brackets(o.host_arg);
    if (o.scan) {
        if (o.net.udp)
            throw CLI::ValidationError("-z scans TCP ports: it does not combine with -u");
        if (o.net.quit) throw CLI::ValidationError("-q does not apply to -z (nothing is sent)");
        std::tie(o.first_port, o.last_port) = parse_port_range(o.port_arg);
        return;
    }
    o.first_port = o.last_port = checked_port(o.port_arg, o.net);
    if (o.first_port == 0) throw CLI::ValidationError("port 0 cannot be connected to");
}

// --- connect: the relay ---------------------------------------------------

/// The address connected to, for error messages. A peer that resets the
/// connection at once leaves getpeername(2) nothing to say (ENOTCONN): then
/// the host and port as given name it.
std::string peer_name(const Socket& sock, const ConnectCommand& o) {
    try {
        return sock.peer_address().to_string();
    } catch (const Error&) {
        if (o.host.find(':') != std::string::npos)
            return fmt::format("[{}]:{}", o.host, o.first_port);
        return fmt::format("{}:{}", o.host, o.first_port);
    }
}

int run_connect(const ConnectCommand& o) {
    keep_standard_streams_open();
    Socket sock;
    std::string peer;
    if (!o.net.unix_path.empty()) {
        const Address address = Address::unix_path(o.net.unix_path);
        sock = Socket(AF_UNIX, o.net.socktype());
        if (o.net.wait) sock.set_timeout(seconds(*o.net.wait));
        try {
            sock.connect(address);
        } catch (const Error& e) {
            // A listener of the other type answers EPROTOTYPE (unix_find_bsd).
            if (e.code() != std::errc::wrong_protocol_type) throw;
            throw Failure(fmt::format("{} (the server there is not SOCK_{}: {} --seqpacket?)",
                                      e.what(), socktype_name(o.net.socktype()),
                                      o.net.seqpacket ? "drop" : "add"));
        }
        peer = address.to_string();
    } else {
        ConnectOptions options;
        options.family = o.net.family();
        options.socktype = o.net.socktype();
        if (o.net.wait) options.timeout = seconds(*o.net.wait);
        sock = create_connection(o.host, std::to_string(o.first_port), options);
        peer = peer_name(sock, o);
    }
    Relay relay(o.net.relay_options(-1));
    if (relay.run(sock, peer) == RelayEnd::idle) throw Failure(idle_message(o.net, peer));
    return 0;
}

// --- connect -z: the port scan --------------------------------------------

struct Probe {
    Address address;
    Socket sock;
    std::string state;  // empty while the connect is in progress
};

std::string describe(const std::error_code& code) {
    if (code == std::errc::connection_refused) return "closed";
    if (code == std::errc::timed_out) return "timed out";
    return "failed: " + code.message();
}

/// Starts a non-blocking connect; the state is known at once when loopback
/// answers within the call, otherwise poll tells.
void start(Probe& p) {
    p.sock = Socket(p.address.family(), SOCK_STREAM | SOCK_NONBLOCK);
    try {
        if (p.sock.connect(p.address)) p.state = "open";
    } catch (const Error& e) {
        p.state = describe(e.code());
    }
}

/// Waits for every probe of a window until `deadline`; what has not answered by then timed out.
void finish(std::vector<Probe>& window, Clock::time_point deadline) {
    std::vector<pollfd> fds;
    std::vector<Probe*> waiting;
    for (;;) {
        fds.clear();
        waiting.clear();
        for (Probe& p : window) {
            if (!p.state.empty()) continue;
            fds.push_back({p.sock.fd(), POLLOUT, 0});
            waiting.push_back(&p);
        }
        if (waiting.empty()) return;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            for (Probe* p : waiting)
                p->state = "timed out";
            return;
        }
        const int rc = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
        if (rc < 0 && errno != EINTR) throw_errno("poll");
        for (std::size_t i = 0; rc > 0 && i < fds.size(); ++i) {
            if (fds[i].revents == 0) continue;
            try {
                waiting[i]->sock.finish_connect(waiting[i]->address);
                waiting[i]->state = "open";
            } catch (const Error& e) {
                waiting[i]->state = describe(e.code());
            }
        }
    }
}

int run_scan(const ConnectCommand& o) {
    ResolveHints hints;
    hints.family = o.net.family();
    hints.socktype = SOCK_STREAM;
    std::vector<Address> hosts;
    for (const Resolved& r : resolve(o.host, "", hints))
        if (std::find(hosts.begin(), hosts.end(), r.address) == hosts.end())
            hosts.push_back(r.address);

    const Duration limit = seconds(o.net.wait.value_or(kScanDefaultWait));
    bool any_open = false;
    std::vector<Probe> window;
    // Port by port, each of the host's addresses in the resolver's order.
    std::uint32_t port = o.first_port;
    std::size_t next_host = 0;
    while (port <= o.last_port) {
        window.clear();
        while (window.size() < kScanWindow && port <= o.last_port) {
            Address a = hosts[next_host];
            a.set_port(static_cast<std::uint16_t>(port));
            window.push_back({a, Socket(), {}});
            if (++next_host == hosts.size()) {
                next_host = 0;
                ++port;
            }
        }
        const Clock::time_point deadline = Clock::now() + limit;
        for (Probe& p : window)
            start(p);
        finish(window, deadline);
        for (Probe& p : window) {
            p.sock.close();
            any_open = any_open || p.state == "open";
            fmt::print("{} {}\n", p.address.to_string(), p.state);
        }
        std::fflush(stdout);
    }
    return any_open ? 0 : 1;
}

}  // namespace

void add_connect(CLI::App& app, Runner& run) {
    auto o = std::make_shared<ConnectCommand>();
    CLI::App* cmd = app.add_subcommand(
        "connect",
        "Connect to HOST PORT (netcat's client): standard input goes to the socket, the socket to "
        "standard output, until both directions are done. Example: printf 'GET / "
        "HTTP/1.0\\r\\n\\r\\n' "
        "| ferry connect localhost http");
    cmd->footer(
        "End of input: the writing side is shut down (the peer sees end of stream) and what "
        "arrives "
        "is still printed until the peer ends too (the half-close); -q S ends the session S "
        "seconds "
        "after end of input instead. UDP has no end of stream: its session ends by -q, -w or "
        "Ctrl-C.\n"
        "-w S bounds the connect (name resolution included) and ends a session in which no data "
        "moved either way for S seconds (one line on stderr, exit 1).\n"
        "-z HOST PORT[-PORT]: for each port, one line 'ADDRESS:PORT open|closed|timed out' (no "
        "data "
        "is sent; each connect waits -w seconds, default 1); exit 0 if any port is open.\n"
        "Exit: 0 when the session ended normally; 1 on a run-time failure (unknown host, refused, "
        "reset by peer, standard output closed, -w idle); 2 on bad usage.\n"
        "-U PATH --seqpacket: a Unix SOCK_SEQPACKET socket; each read of standard input (up to "
        "64 KiB) is one message, each message received is written out whole, a longer one is an "
        "error (exit 1), end of input is the half-close.\n"
        "Examples:\n"
        "  ferry listen 127.0.0.1 5000 > received &  ferry connect 127.0.0.1 5000 < file\n"
        "  ferry connect -z 127.0.0.1 8000-8100\n"
        "  ferry connect -U app.sock\n"
        "  ferry connect -U app.sock --seqpacket");
    cmd->add_option("host", o->host_arg, "host name or numeric address ([::1] works too)")
        ->type_name("HOST");
    cmd->add_option("port", o->port_arg,
                    "port number or service name; with -z, PORT or FIRST-LAST");
    add_netcat_options(cmd, o->net,
                       "connect timeout, and idle timeout: end the session when no data moved "
                       "either way for this many seconds (exit 1)");
    cmd->add_flag("-z,--zero-io", o->scan,
                  "report which ports accept a TCP connection, sending nothing");
    cmd->callback([o, &run] {
        check(*o);
        run = [o] { return o->scan ? run_scan(*o) : run_connect(*o); };
    });
}

}  // namespace ferry::cli
