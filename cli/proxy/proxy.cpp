// ferry proxy LISTEN UPSTREAM: a TCP or UDP relay that injects faults (Toxiproxy's toxics,
// plus loss, duplication, reordering and corruption for UDP), several routes on one event
// loop. This file is the command: options, checking every route and toxic before any socket
// is opened, the status line, the counters at exit. The engines are proxy_tcp.cpp and
// proxy_udp.cpp; the toxics proxy_toxics.cpp.
#include <fmt/core.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "common/command.hpp"
#include "ferry/address.hpp"
#include "ferry/error.hpp"
#include "ferry/event_loop.hpp"
#include "common/output.hpp"
#include "proxy/proxy.hpp"

namespace ferry::cli {
namespace {

using proxy::Protocol;
using proxy::Route;
using proxy::ToxicError;
using proxy::ToxicSpec;

struct ProxyOptions {
    std::string listen;
    std::string upstream;
    bool udp = false;
    std::vector<std::string> routes;
    std::vector<std::string> toxics;
    std::string config;
    std::optional<std::uint64_t> seed;
    double udp_idle = 60;
    double connect_timeout = 10;
    bool json = false;
    // Filled in by check(): every route resolved, every toxic parsed.
    std::vector<Route> checked;
};

/// A bad route or toxic: main prints it as one line and exits 2.
[[noreturn]] void usage(const std::string& text) {
    throw CLI::ValidationError(text);
}

/// Splits HOST:PORT or [V6]:PORT. An empty host (":8000") is every IPv4 interface.
std::pair<std::string, std::string> split_endpoint(const std::string& text) {
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            usage(fmt::format("'{}' is not [IPV6]:PORT", text));
        return {text.substr(1, close - 1), text.substr(close + 2)};
    }
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos) usage(fmt::format("'{}' is not HOST:PORT", text));
    std::string host = text.substr(0, colon);
    if (host.find(':') != std::string::npos)
        usage(fmt::format("'{}': write an IPv6 address in brackets, [{}]:PORT", text, host));
    return {std::move(host), text.substr(colon + 1)};
}

/// Checks a route's two ends: the ports parse, the hosts resolve.
Route make_route(const std::string& listen, const std::string& upstream, Protocol protocol) {
    Route route;
    route.protocol = protocol;
    const int socktype = protocol == Protocol::tcp ? SOCK_STREAM : SOCK_DGRAM;
    const char* proto = protocol == Protocol::tcp ? "tcp" : "udp";
    auto [lhost, lport] = split_endpoint(listen);
    auto [uhost, uport] = split_endpoint(upstream);
    try {
        parse_port(lport, proto);
        ResolveHints passive;
        passive.socktype = socktype;
        passive.passive = true;
        if (lhost.empty()) passive.family = AF_INET;
        resolve(lhost, lport, passive);
    } catch (const Error& e) {
        usage(fmt::format("listen address '{}': {}", listen, e.what()));
    }
    if (uhost.empty()) usage(fmt::format("upstream '{}' needs a host", upstream));
    try {
        if (parse_port(uport, proto) == 0) usage(fmt::format("upstream '{}': port 0", upstream));
        ResolveHints hints;
        hints.socktype = socktype;
        route.upstream = resolve(uhost, uport, hints).front().address;
    } catch (const Error& e) {
        usage(fmt::format("upstream '{}': {}", upstream, e.what()));
    }
    route.listen_host = std::move(lhost);
    route.listen_port = std::move(lport);
    return route;
}

void add_toxic(Route& route, ToxicSpec spec, const std::string& where) {
    if (!spec.applies_to(route.protocol)) {
        usage(fmt::format("{}: '{}' is a {} toxic, and this route is {}{}", where, spec.type,
                          spec.tcp ? "TCP" : "UDP", proxy::protocol_name(route.protocol),
                          route.protocol == Protocol::tcp ? " (-u makes routes UDP)" : ""));
    }
    route.toxics.push_back(std::move(spec));
}

std::vector<Route> routes_from_config(const std::string& path, bool udp) {
    std::ifstream in(path);
    if (!in) usage(fmt::format("--config {}: cannot be read", path));
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        usage(fmt::format("--config {}: {}", path, e.what()));
    }
    if (doc.is_object() && doc.size() == 1 && doc.contains("routes")) doc = doc["routes"];
    if (!doc.is_array())
        usage(
            fmt::format("--config {}: expected a list of routes, [{{\"listen\": ..., "
                        "\"upstream\": ..., \"toxics\": [...]}}]",
                        path));
    std::vector<Route> routes;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        const nlohmann::json& r = doc[i];
        const std::string where = fmt::format("--config {}: route {}", path, i + 1);
        if (!r.is_object()) usage(where + ": expected an object");
        std::string listen, upstream;
        Protocol protocol = udp ? Protocol::udp : Protocol::tcp;
        const nlohmann::json* toxics = nullptr;
        for (const auto& [key, value] : r.items()) {
            if (key == "listen" && value.is_string()) {
                listen = value.get<std::string>();
            } else if (key == "upstream" && value.is_string()) {
                upstream = value.get<std::string>();
            } else if (key == "protocol" && value.is_string() &&
                       (value == "tcp" || value == "udp")) {
                protocol = value == "tcp" ? Protocol::tcp : Protocol::udp;
            } else if (key == "toxics" && value.is_array()) {
                toxics = &value;
            } else if (key == "listen" || key == "upstream" || key == "protocol" ||
                       key == "toxics") {
                usage(fmt::format("{}: bad value for \"{}\"", where, key));
            } else {
                usage(
                    fmt::format("{}: unknown field \"{}\" (fields: listen, upstream, protocol, "
                                "toxics)",
                                where, key));
            }
        }
        if (listen.empty() || upstream.empty())
            usage(where + ": needs \"listen\" and \"upstream\"");
        Route route = make_route(listen, upstream, protocol);
        if (toxics) {
            for (std::size_t t = 0; t < toxics->size(); ++t) {
                const std::string at = fmt::format("{}, toxic {}", where, t + 1);
                try {
                    add_toxic(route, proxy::toxic_from_json((*toxics)[t]), at);
                } catch (const ToxicError& e) {
                    usage(fmt::format("{}: {}", at, e.what()));
                }
            }
        }
        routes.push_back(std::move(route));
    }
    return routes;
}

/// Everything a user can get wrong, found before a socket is opened.
void check(ProxyOptions& o) {
    const Protocol protocol = o.udp ? Protocol::udp : Protocol::tcp;
    std::vector<Route> routes;
    if (o.listen.empty() != o.upstream.empty())
        usage("give both LISTEN and UPSTREAM (or use --route LISTEN=UPSTREAM)");
    if (!o.listen.empty()) routes.push_back(make_route(o.listen, o.upstream, protocol));
    for (const std::string& r : o.routes) {
        const std::size_t eq = r.find('=');
        if (eq == std::string::npos) usage(fmt::format("--route '{}' is not LISTEN=UPSTREAM", r));
        routes.push_back(make_route(r.substr(0, eq), r.substr(eq + 1), protocol));
    }
    if (!o.config.empty())
        for (Route& r : routes_from_config(o.config, o.udp))
            routes.push_back(std::move(r));
    if (routes.empty()) usage("nothing to relay: give LISTEN UPSTREAM, --route or --config");
    for (const std::string& text : o.toxics) {
        ToxicSpec spec;
        try {
            spec = proxy::parse_toxic(text);
        } catch (const ToxicError& e) {
            usage(fmt::format("--toxic '{}': {}", text, e.what()));
        }
        for (Route& route : routes)
            add_toxic(route, spec, fmt::format("--toxic '{}'", text));
    }
    o.checked = std::move(routes);
}

std::string amount(std::uint64_t bytes) {
    if (bytes < 10'000) return fmt::format("{} B", bytes);
    if (bytes < 10'000'000) return fmt::format("{:.1f} kB", double(bytes) / 1e3);
    if (bytes < 10'000'000'000) return fmt::format("{:.1f} MB", double(bytes) / 1e6);
    return fmt::format("{:.1f} GB", double(bytes) / 1e9);
}

std::string status_of(const proxy::RouteRelay& relay, Protocol protocol) {
    const proxy::Counters& c = relay.counters();
    const std::string where =
        fmt::format("{} {}", proxy::protocol_name(protocol), relay.local_address().to_string());
    if (protocol == Protocol::tcp)
        return fmt::format("{}: {} connections ({} open, {} refused), {} up, {} down", where,
                           c.connections, c.active, c.refused, amount(c.bytes_up),
                           amount(c.bytes_down));
    return fmt::format(
        "{}: {} flows, datagrams {} up, {} down; {} dropped, {} duplicated, {} reordered, {} "
        "corrupted",
        where, c.connections, c.datagrams_up, c.datagrams_down, c.effects.dropped,
        c.effects.duplicated, c.effects.reordered, c.effects.corrupted);
}

/// A route's counters as JSON; the totals sum these key by key.
nlohmann::json counters_json(const proxy::Counters& c, Protocol protocol) {
    nlohmann::json j;
    if (protocol == Protocol::tcp) {
        j["connections"] = c.connections;
    } else {
        j["flows"] = c.connections;
        j["datagrams_up"] = c.datagrams_up;
        j["datagrams_down"] = c.datagrams_down;
        j["dropped"] = c.effects.dropped;
        j["duplicated"] = c.effects.duplicated;
        j["reordered"] = c.effects.reordered;
        j["corrupted"] = c.effects.corrupted;
    }
    j["refused"] = c.refused;
    j["bytes_up"] = c.bytes_up;
    j["bytes_down"] = c.bytes_down;
    return j;
}

int run_proxy(const ProxyOptions& o) {
    proxy::Settings settings;
    settings.udp_idle = seconds(o.udp_idle);
    settings.connect_timeout = seconds(o.connect_timeout);

    EventLoop loop;
    loop.on_signal(SIGINT, [&loop] { loop.stop(); });
    loop.on_signal(SIGTERM, [&loop] { loop.stop(); });
    proxy::Rng seeds(o.seed ? *o.seed : std::random_device{}());

    std::vector<std::unique_ptr<proxy::RouteRelay>> relays;
    for (const Route& route : o.checked)
        relays.push_back(route.protocol == Protocol::tcp
                             ? proxy::start_tcp_relay(loop, route, settings, seeds())
                             : proxy::start_udp_relay(loop, route, settings, seeds()));
    for (std::size_t i = 0; i < relays.size(); ++i)
        say("Listening at {} -> {}", relays[i]->local_address().to_string(),
            o.checked[i].upstream.to_string());

    if (::isatty(STDOUT_FILENO) == 1) {
        const auto second = std::chrono::seconds(1);
        loop.add_timer(
            second,
            [&] {
                std::string line;
                for (std::size_t i = 0; i < relays.size(); ++i)
                    line += (i ? "  |  " : "") + status_of(*relays[i], o.checked[i].protocol);
                say("{}", line);
            },
            second);
    }

    loop.run();

    nlohmann::json report;
    if (o.json) {
        nlohmann::json total = nlohmann::json::object();
        report["routes"] = nlohmann::json::array();
        for (std::size_t i = 0; i < relays.size(); ++i) {
            nlohmann::json r = counters_json(relays[i]->counters(), o.checked[i].protocol);
            for (const auto& [key, value] : r.items())
                total[key] = total.value(key, std::uint64_t{0}) + value.get<std::uint64_t>();
            r["protocol"] = proxy::protocol_name(o.checked[i].protocol);
            r["listen"] = relays[i]->local_address().to_string();
            r["upstream"] = o.checked[i].upstream.to_string();
            report["routes"].push_back(std::move(r));
        }
        report["total"] = std::move(total);
    }
    relays.clear();  // closes every connection and socket
    if (o.json) say("{}", report.dump());
    return 0;
}

const char* kDescription =
    "Relay TCP (or UDP with -u) from LISTEN to UPSTREAM, injecting faults: latency, bandwidth "
    "limits, slicing, resets, data limits, timeouts, slow closes; for UDP also loss (independent "
    "or bursty), duplication, reordering and corruption. Several routes run in one process.";

std::string footer() {
    return "TOXICS (--toxic TYPE:DIRECTION[:key=value,...], DIRECTION up = client->server, down = "
           "server->client, or both; every toxic also takes toxicity=F, the fraction of TCP "
           "connections or of UDP datagrams it applies to, default 1):\n" +
           proxy::toxic_help() +
           "  loss takes either probability=P, or the Gilbert-Elliott burst model: p = chance "
           "good->bad,\n"
           "  r = chance bad->good (per datagram), good/bad = loss rate in each state; long-run "
           "loss (r*good + p*bad)/(p+r).\n"
           "\nEXAMPLES\n"
           "  ferry proxy 127.0.0.1:8000 example.com:80 --toxic "
           "latency:down:latency=100,jitter=10\n"
           "  ferry proxy -u 127.0.0.1:5353 127.0.0.1:53 --toxic loss:both:probability=0.3\n"
           "  ferry proxy -u 127.0.0.1:9000 127.0.0.1:9001 --toxic "
           "loss:up:p=0.05,r=0.5,good=0,bad=0.8 --seed 7\n"
           "  ferry proxy 127.0.0.1:8000 127.0.0.1:80 --toxic bandwidth:down:rate=100 --toxic "
           "reset_peer:both:timeout=5000,toxicity=0.2\n"
           "  ferry proxy --route 127.0.0.1:8001=127.0.0.1:81 --route [::1]:8002=[::1]:82 --json\n"
           "  ferry proxy --config routes.json   (shape: see README, \"ferry proxy\")\n";
}

}  // namespace

void add_proxy(CLI::App& app, Runner& run) {
    auto o = std::make_shared<ProxyOptions>();
    CLI::App* cmd = app.add_subcommand("proxy", kDescription);
    cmd->add_option("listen", o->listen, "HOST:PORT or [V6]:PORT to listen on (port 0: any)");
    cmd->add_option("upstream", o->upstream, "HOST:PORT or [V6]:PORT to relay to");
    cmd->add_flag("-u,--udp", o->udp, "relay UDP datagrams instead of TCP");
    cmd->add_option("--route", o->routes, "another relay, LISTEN=UPSTREAM (repeatable)");
    cmd->add_option("--toxic", o->toxics,
                    "a fault on every route: TYPE:DIRECTION[:key=value,...] (repeatable; see "
                    "TOXICS below)");
    cmd->add_option("--config", o->config,
                    "JSON file: a list of routes, each {\"listen\", \"upstream\", \"protocol\", "
                    "\"toxics\"}");
    cmd->add_option("--seed", o->seed, "seed every random choice (reproducible runs)");
    cmd->add_option("--udp-idle", o->udp_idle,
                    "seconds of silence after which a UDP client's flow is dropped")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->add_option("--connect-timeout", o->connect_timeout,
                    "seconds to wait for the upstream to accept a TCP connection")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "print the counters as one JSON object at exit");
    cmd->footer(footer());
    cmd->callback([o, &run] {
        check(*o);
        run = [o] { return run_proxy(*o); };
    });
}

}  // namespace ferry::cli
