// ferry chaos [NAME]: deliberately misbehaving TCP and UDP servers for testing clients, all on
// one event loop (the servers themselves are the testkit's, ferry/testkit/chaos.hpp).
#include <csignal>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "ferry/create.hpp"
#include "ferry/event_loop.hpp"
#include "ferry/testkit/chaos.hpp"

namespace ferry::cli {
namespace chaos = testkit::chaos;
namespace {

constexpr unsigned kMsPerHour = 3'600'000;

struct ChaosOptions {
    std::string name;  // empty: every server
    std::string host = "127.0.0.1";
    std::string port;  // NAME only; empty: --base-port
    unsigned base_port = 2000;
    unsigned delay_ms = 100;
    std::optional<std::uint64_t> bytes;
    unsigned late_ms = 500;
    std::size_t max_conns = 1000;
    std::optional<std::uint64_t> seed;
};

chaos::Settings settings(const ChaosOptions& o) {
    chaos::Settings s;
    s.delay = std::chrono::milliseconds(o.delay_ms);
    s.bytes = o.bytes;
    s.late = std::chrono::milliseconds(o.late_ms);
    s.max_conns = o.max_conns;
    s.seed =
        o.seed ? *o.seed : (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
    s.on_warning = [](std::string_view text) { fmt::print(stderr, "ferry chaos: {}\n", text); };
    return s;
}

Socket bind_server(const std::string& host, const std::string& port, chaos::Transport transport) {
    ServerOptions options;
    options.socktype = transport == chaos::Transport::tcp ? SOCK_STREAM : SOCK_DGRAM;
    return create_server(host, port, options);
}

/// The startup line: `2002 drip              sends 'ferry chaos drip' lines ...`.
std::string startup_line(const chaos::Behaviour& b, const chaos::Server& server) {
    return fmt::format("{} {:<17} {}", server.address().port(), b.name, server.description());
}

int run_chaos(const ChaosOptions& o) {
    EventLoop loop;
    // Before any socket exists, so a signal that comes once the ports are
    // printed always finds the loop ready to stop.
    loop.on_signal(SIGINT, [&loop] { loop.stop(); });
    loop.on_signal(SIGTERM, [&loop] { loop.stop(); });
    chaos::ServerSet servers(loop, settings(o));

    if (!o.name.empty()) {
        const chaos::Behaviour& b = *chaos::find_behaviour(o.name);
        const std::string port = o.port.empty() ? std::to_string(o.base_port) : o.port;
        const chaos::Server& server = servers.start(b, bind_server(o.host, port, b.transport));
        say("Listening at {}", server.address().to_string());
        say("{}", startup_line(b, server));
    } else {
        // Every port is bound before the first line: a port in use ends the
        // run with that one error and no half-printed list.
        std::vector<std::string> lines;
        unsigned next = o.base_port;
        for (const chaos::Behaviour& b : chaos::behaviours()) {
            const std::string port = o.base_port == 0 ? "0" : std::to_string(next++);
            lines.push_back(
                startup_line(b, servers.start(b, bind_server(o.host, port, b.transport))));
        }
        for (const std::string& line : lines)
            say("{}", line);
    }
    loop.run();
    return 0;  // the servers close their sockets on the way out
}

CLI::Validator behaviour_validator() {
    return CLI::Validator(
        [](std::string& name) -> std::string {
            if (chaos::find_behaviour(name)) return {};
            return "unknown chaos server '" + name + "' (ferry chaos --help lists them)";
        },
        "NAME", "chaos server");
}

std::string help_footer() {
    std::string text = "Servers, on consecutive ports from --base-port in this order:\n";
    for (const chaos::Behaviour& b : chaos::behaviours())
        text += fmt::format("  {:<17} {} {}\n", b.name,
                            b.transport == chaos::Transport::tcp ? "TCP" : "UDP", b.help);
    text +=
        "Each TCP server holds at most --max-conns connections; one more gets the line\n"
        "'ferry chaos: too many connections (max N)' and is closed. UDP servers echo the\n"
        "datagram, so a client's request ID comes back. Ctrl-C or SIGTERM stops them all.\n"
        "Examples:\n"
        "  ferry chaos                              every server, on 127.0.0.1:2000-2014\n"
        "  curl -v http://127.0.0.1:2009/           (http-slow) a response 16 bytes at a time\n"
        "  ferry udp-remote client 127.0.0.1 -p 2011 --request-ids --count 3   (udp-late)\n"
        "  ferry chaos drip -p 8080 --delay 500     one server, on port 8080\n"
        "  ferry chaos --base-port 0                every server on a port the kernel picks";
    return text;
}

}  // namespace

void add_chaos(CLI::App& app, Runner& run) {
    auto o = std::make_shared<ChaosOptions>();
    CLI::App* cmd = app.add_subcommand(
        "chaos",
        "Deliberately misbehaving TCP and UDP servers for testing clients: resets, silence, "
        "one byte at a time, random bytes, half-closes, HTTP without its body, late, duplicated "
        "or misdirected UDP echoes. Example: ferry chaos & curl -v http://127.0.0.1:2009/");
    cmd->footer(help_footer());
    auto* name = cmd->add_option("name", o->name, "run only this server (default: all of them)")
                     ->check(behaviour_validator());
    cmd->add_option("--host", o->host, "address to listen at")->capture_default_str();
    auto* port =
        add_port_option(cmd, o->port)
            ->description(
                "port of the one server NAME (number or service name; default: --base-port)");
    add_number(cmd, "--base-port", o->base_port, NumberKind::integer, {0, 65535},
               "port of the first server, the others on the next ones (0: each on a port the "
               "kernel picks)")
        ->capture_default_str()
        ->excludes(port);
    add_number(cmd, "--delay", o->delay_ms, NumberKind::milliseconds, {1, kMsPerHour},
               "drip: ms between bytes; http-slow: ms between chunks")
        ->capture_default_str();
    add_number(cmd, "--bytes", o->bytes, NumberKind::size, {0, kTiB},
               "garbage: send this many bytes, then end the stream");
    add_number(cmd, "--late-ms", o->late_ms, NumberKind::milliseconds, {0, kMsPerHour},
               "udp-late: ms before each echo")
        ->capture_default_str();
    add_number(cmd, "--max-conns", o->max_conns, NumberKind::count, {1, 1'000'000},
               "most connections each TCP server holds at once")
        ->capture_default_str();
    add_number(cmd, "--seed", o->seed, NumberKind::integer,
               {0, std::numeric_limits<std::uint64_t>::max()},
               "seed for the random bytes (reproducible runs)");
    cmd->callback([o, name, port, &run] {
        if (port->count() > 0 && name->count() == 0)
            throw CLI::ValidationError("--port is for one server: ferry chaos NAME -p PORT");
        const std::size_t last = o->base_port + chaos::behaviours().size() - 1;
        if (name->count() == 0 && o->base_port != 0 && last > 65535)
            throw CLI::ValidationError(fmt::format(
                "--base-port {} leaves no room for {} servers (the last would be on port {})",
                o->base_port, chaos::behaviours().size(), last));
        run = [o] { return run_chaos(*o); };
    });
}

}  // namespace ferry::cli
