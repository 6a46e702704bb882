// ferry proxy LISTEN UPSTREAM: a TCP or UDP relay that injects faults (Toxiproxy's toxics,
// plus loss, duplication, reordering and corruption for UDP), several routes on one event
// loop, optionally driven at run time through Toxiproxy's HTTP API (--api). This file is the
// command: options, checking every route and toxic before any socket is opened, the status
// line, the counters at exit. The engine is the testkit's FaultProxy; the API is api.cpp.
#include <fmt/core.h>
#include <unistd.h>

#include <csignal>
#include <limits>
#include <memory>
#include <optional>

#include "common/command.hpp"
#include "common/input_file.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "ferry/address.hpp"
#include "ferry/error.hpp"
#include "ferry/event_loop.hpp"
#include "ferry/testkit/fault_proxy.hpp"
#include "proxy/api.hpp"
#include "proxy/toxiproxy_json.hpp"

namespace ferry::cli {
namespace {

using testkit::Protocol;
using testkit::ProxyConfig;
using testkit::Toxic;
using testkit::ToxicError;

constexpr const char* kDefaultApi = "127.0.0.1:8474";
/// /version answers Toxiproxy's API level, with ferry's own version as semver build metadata.
constexpr const char* kToxiproxyApiVersion = "2.12.0";

struct ProxyOptions {
    std::string listen;
    std::string upstream;
    bool udp = false;
    std::vector<std::string> routes;
    std::vector<std::string> toxics;
    std::string config;
    std::optional<std::uint64_t> seed;
    double udp_idle = 60;
    std::size_t udp_max_flows = 1024;
    std::optional<std::size_t> max_connections;  // unset: from the descriptor limit
    double idle_timeout = 0;                     // 0: never
    double connect_timeout = 10;
    bool json = false;
    bool no_splice = false;
    std::optional<std::string> api;  // set and empty: --api alone
    // Filled in by check(): every route and toxic checked, the API address resolved.
    std::vector<proxy::ProxyEntry> checked;
    std::optional<Address> api_address;
};

/// A bad route or toxic: main prints it as one line and exits 2.
[[noreturn]] void usage(const std::string& text) {
    throw CLI::ValidationError(text);
}

/// Checks a route's two ends before any socket exists: they parse, the ports
/// are ports, the hosts resolve.
ProxyConfig make_route(std::string name, const std::string& listen, const std::string& upstream,
                       Protocol protocol) {
    try {
        testkit::resolve_endpoint(listen, protocol, true);
    } catch (const std::exception& e) {
        usage(fmt::format("listen address '{}': {}", listen, e.what()));
    }
    try {
        testkit::resolve_endpoint(upstream, protocol, false);
    } catch (const std::exception& e) {
        usage(fmt::format("upstream '{}': {}", upstream, e.what()));
    }
    ProxyConfig c;
    c.name = std::move(name);
    c.listen = listen;
    c.upstream = upstream;
    c.protocol = protocol;
    return c;
}

void add_toxic(proxy::ProxyEntry& route, Toxic toxic, const std::string& where) {
    const Protocol protocol = route.config.protocol;
    if (!toxic.applies_to(protocol)) {
        usage(fmt::format("{}: '{}' is a {} toxic, and this route is {}{}", where, toxic.type,
                          toxic.tcp ? "TCP" : "UDP", testkit::protocol_name(protocol),
                          protocol == Protocol::tcp ? " (-u makes routes UDP)" : ""));
    }
    // The same toxic twice on a route (two --toxic latency:down): the names must differ.
    const std::string base = toxic.name;
    for (int n = 2;; ++n) {
        const bool taken = std::any_of(route.toxics.begin(), route.toxics.end(),
                                       [&](const Toxic& t) { return t.name == toxic.name; });
        if (!taken) break;
        toxic.name = fmt::format("{}_{}", base, n);
    }
    route.toxics.push_back(std::move(toxic));
}

/// The config file as JSON. A file that cannot be read is a run-time failure
/// (exit 1, input_file.hpp); one that is not JSON is a usage error (exit 2),
/// told as a sentence: `--config FILE: not JSON: at line 3, column 5: syntax
/// error while parsing ...`, without the parser's exception tag.
proxy::Json parse_config(const std::string& path) {
    const std::string text = read_input_file("--config", path);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        usage(
            fmt::format("--config {}: the file is empty (expected a JSON list of proxies)", path));
    try {
        return proxy::Json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        // "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error
        // while parsing ...": the reason is what follows "parse error".
        std::string why = e.what();
        if (const std::size_t at = why.find("parse error "); at != std::string::npos)
            why = why.substr(at + 12);
        usage(fmt::format("--config {}: not JSON: {}", path, why));
    }
}

/// Toxiproxy's config file (a list of {name, listen, upstream, enabled}) and
/// ferry's (entries may also have protocol and toxics, and no name).
std::vector<proxy::ProxyEntry> routes_from_config(const std::string& path, bool udp,
                                                  std::size_t first_number) {
    proxy::Json doc = parse_config(path);
    if (doc.is_object() && doc.size() == 1 && doc.contains("routes")) doc = doc["routes"];
    if (!doc.is_array())
        usage(fmt::format(
            "--config {}: expected a list of proxies, [{{\"name\": ..., \"listen\": ..., "
            "\"upstream\": ...}}]",
            path));
    std::vector<proxy::ProxyEntry> routes;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        const std::string where = fmt::format("--config {}: route {}", path, i + 1);
        proxy::Json entry = doc[i];
        if (udp && entry.is_object() && !entry.contains("protocol")) entry["protocol"] = "udp";
        proxy::ProxyEntry parsed;
        try {
            parsed = proxy::proxy_entry_from_json(entry, "", {},
                                                  fmt::format("route{}", first_number + i));
        } catch (const std::exception& e) {
            usage(fmt::format("{}, {}", where, e.what()));
        }
        proxy::ProxyEntry route;
        route.config = make_route(
            parsed.config.name, parsed.config.listen.empty() ? "127.0.0.1:0" : parsed.config.listen,
            parsed.config.upstream, parsed.config.protocol);
        route.config.enabled = parsed.config.enabled;
        for (std::size_t t = 0; t < parsed.toxics.size(); ++t)
            add_toxic(route, parsed.toxics[t], fmt::format("{}, toxic {}", where, t + 1));
        routes.push_back(std::move(route));
    }
    return routes;
}

/// `[HOST:]PORT` for --api; a bare port is on 127.0.0.1.
Address api_address(const std::string& text) {
    std::string spec = text.empty() ? kDefaultApi : text;
    if (spec.find(':') == std::string::npos) spec = "127.0.0.1:" + spec;
    try {
        return testkit::resolve_endpoint(spec, Protocol::tcp, true);
    } catch (const std::exception& e) {
        usage(fmt::format("--api '{}': {}", text, e.what()));
    }
}

/// Everything a user can get wrong, found before a socket is opened.
void check(ProxyOptions& o) {
    const Protocol protocol = o.udp ? Protocol::udp : Protocol::tcp;
    std::vector<proxy::ProxyEntry> routes;
    auto next_name = [&routes] { return fmt::format("route{}", routes.size() + 1); };
    if (o.listen.empty() != o.upstream.empty())
        usage("give both LISTEN and UPSTREAM (or use --route LISTEN=UPSTREAM)");
    if (!o.listen.empty())
        routes.push_back({make_route(next_name(), o.listen, o.upstream, protocol), {}});
    for (const std::string& r : o.routes) {
        const std::size_t eq = r.find('=');
        if (eq == std::string::npos) usage(fmt::format("--route '{}' is not LISTEN=UPSTREAM", r));
        routes.push_back(
            {make_route(next_name(), r.substr(0, eq), r.substr(eq + 1), protocol), {}});
    }
    if (!o.config.empty())
        for (proxy::ProxyEntry& r : routes_from_config(o.config, o.udp, routes.size() + 1))
            routes.push_back(std::move(r));
    if (o.api) o.api_address = api_address(*o.api);
    if (routes.empty() && !o.api)
        usage("nothing to relay: give LISTEN UPSTREAM, --route, --config or --api");
    for (const std::string& text : o.toxics) {
        Toxic toxic;
        try {
            toxic = testkit::parse_toxic(text);
        } catch (const ToxicError& e) {
            usage(fmt::format("--toxic '{}': {}", text, e.what()));
        }
        for (proxy::ProxyEntry& route : routes)
            add_toxic(route, toxic, fmt::format("--toxic '{}'", text));
    }
    o.checked = std::move(routes);
}

std::string amount(std::uint64_t bytes) {
    if (bytes < 10'000) return fmt::format("{} B", bytes);
    if (bytes < 10'000'000) return fmt::format("{:.1f} kB", double(bytes) / 1e3);
    if (bytes < 10'000'000'000) return fmt::format("{:.1f} MB", double(bytes) / 1e6);
    return fmt::format("{:.1f} GB", double(bytes) / 1e9);
}

std::string status_of(const testkit::ProxyState& p) {
    const testkit::Counters& c = p.counters;
    const std::string where =
        fmt::format("{} {}", testkit::protocol_name(p.config.protocol), p.config.listen);
    if (p.config.protocol == Protocol::tcp)
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
nlohmann::json counters_json(const testkit::Counters& c, Protocol protocol) {
    nlohmann::json j;
    if (protocol == Protocol::tcp) {
        j["connections"] = c.connections;
        j["shed"] = c.shed;
        j["idle_closed"] = c.idle_closed;
        j["spliced_up"] = c.spliced_up;
        j["spliced_down"] = c.spliced_down;
    } else {
        j["flows"] = c.connections;
        j["evicted"] = c.evicted;
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

nlohmann::json report_json(const std::vector<testkit::ProxyState>& proxies) {
    nlohmann::json report;
    nlohmann::json total = nlohmann::json::object();
    report["routes"] = nlohmann::json::array();
    for (const testkit::ProxyState& p : proxies) {
        nlohmann::json r = counters_json(p.counters, p.config.protocol);
        for (const auto& [key, value] : r.items())
            total[key] = total.value(key, std::uint64_t{0}) + value.get<std::uint64_t>();
        r["name"] = p.config.name;
        r["protocol"] = testkit::protocol_name(p.config.protocol);
        r["listen"] = p.config.listen;
        r["upstream"] = p.config.upstream;
        report["routes"].push_back(std::move(r));
    }
    report["total"] = std::move(total);
    return report;
}

int run_proxy(const ProxyOptions& o) {
    testkit::FaultProxyOptions options;
    options.udp_idle = seconds(o.udp_idle);
    options.udp_max_flows = o.udp_max_flows;
    options.max_connections = o.max_connections;
    if (o.idle_timeout > 0) options.idle_timeout = seconds(o.idle_timeout);
    options.connect_timeout = seconds(o.connect_timeout);
    options.seed = o.seed;
    options.splice = !o.no_splice;
    options.on_warning = [](std::string_view text) {
        fmt::print(stderr, "ferry proxy: {}\n", text);
    };

    EventLoop loop;
    loop.on_signal(SIGINT, [&loop] { loop.stop(); });
    loop.on_signal(SIGTERM, [&loop] { loop.stop(); });
    testkit::FaultProxy faults(loop, options);

    // With --json, standard output is the report alone (a script parses it
    // whole): the lines for people, and the port a script reads back, go to
    // standard error, as `ferry listen` does.
    const auto note = [&o](const std::string& line) {
        if (o.json) {
            fmt::print(stderr, "{}\n", line);
            std::fflush(stderr);
        } else {
            say("{}", line);
        }
    };

    std::vector<std::string> order;  // the command line's routes, reported in their order
    for (const proxy::ProxyEntry& route : o.checked) {
        const auto state = faults.create(route.config);
        for (const Toxic& t : route.toxics)
            faults.add_toxic(route.config.name, t);
        order.push_back(route.config.name);
        note(fmt::format("Listening at {} -> {}", state.config.listen, state.config.upstream));
    }

    std::unique_ptr<proxy::ApiServer> api;
    if (o.api_address) {
        api = std::make_unique<proxy::ApiServer>(
            faults, *o.api_address,
            fmt::format("{}+ferry.{}", kToxiproxyApiVersion, FERRY_VERSION));
        api->start();
        note(fmt::format("API listening at {}", api->address().to_string()));
    }

    // The routes of the command line first, in order, then the API's by name.
    auto every_proxy = [&] {
        std::vector<testkit::ProxyState> all;
        for (const std::string& name : order)
            if (faults.contains(name)) all.push_back(faults.get(name));
        for (testkit::ProxyState& p : faults.list())
            if (std::find(order.begin(), order.end(), p.config.name) == order.end())
                all.push_back(std::move(p));
        return all;
    };

    if (::isatty(o.json ? STDERR_FILENO : STDOUT_FILENO) == 1) {
        const auto second = std::chrono::seconds(1);
        loop.add_timer(
            second,
            [&] {
                std::string line;
                for (const testkit::ProxyState& p : every_proxy())
                    line += (line.empty() ? "" : "  |  ") + status_of(p);
                if (!line.empty()) note(line);
            },
            second);
    }

    loop.run();
    if (api) api->stop();

    const nlohmann::json report = o.json ? report_json(every_proxy()) : nlohmann::json();
    for (const testkit::ProxyState& p : faults.list())
        faults.remove(p.config.name);  // closes every connection and socket
    if (o.json) say("{}", report.dump());
    return 0;
}

const char* kDescription =
    "Relay TCP (or UDP with -u) from LISTEN to UPSTREAM, injecting faults: latency, bandwidth "
    "limits, slicing, resets, data limits, timeouts, slow closes; for UDP also loss (independent "
    "or bursty), duplication, reordering and corruption. Several routes run in one process. With "
    "--api it is a drop-in Toxiproxy server: proxies and toxics created, changed and removed at "
    "run time through Toxiproxy's HTTP API, by Toxiproxy's own clients.";

std::string footer() {
    return "TOXICS (--toxic TYPE:DIRECTION[:key=value,...], DIRECTION up (upstream) = "
           "client->server, down (downstream) = server->client, or both; every toxic also takes "
           "toxicity=F, the fraction of TCP connections or of UDP datagrams it applies to, "
           "default 1):\n" +
           testkit::toxic_help() +
           "  loss takes either probability=P, or the Gilbert-Elliott burst model: p = chance "
           "good->bad,\n"
           "  r = chance bad->good (per datagram), good/bad = loss rate in each state; long-run "
           "loss (r*good + p*bad)/(p+r).\n"
           "\nHTTP API (--api): Toxiproxy 2.x's endpoints, fields and status codes: GET/POST "
           "/proxies, POST /populate,\n"
           "  GET/POST/PATCH/DELETE /proxies/NAME, GET/POST /proxies/NAME/toxics,\n"
           "  GET/POST/PATCH/DELETE /proxies/NAME/toxics/TOXIC, POST /reset, GET /version, GET "
           "/metrics.\n"
           "  A proxy with \"protocol\": \"udp\" relays UDP with the UDP toxics. Routes of the "
           "command line are\n"
           "  named route1, route2, ...; clients whose User-Agent is a browser's are refused.\n"
           "\nEXAMPLES\n"
           "  ferry proxy 127.0.0.1:8000 example.com:80 --toxic "
           "latency:down:latency=100,jitter=10\n"
           "  ferry proxy -u 127.0.0.1:5353 127.0.0.1:53 --toxic loss:both:probability=0.3\n"
           "  ferry proxy -u 127.0.0.1:9000 127.0.0.1:9001 --toxic "
           "loss:up:p=0.05,r=0.5,good=0,bad=0.8 --seed 7\n"
           "  ferry proxy 127.0.0.1:8000 127.0.0.1:80 --toxic bandwidth:down:rate=100 --toxic "
           "reset_peer:both:timeout=5000,toxicity=0.2\n"
           "  ferry proxy --route 127.0.0.1:8001=127.0.0.1:81 --route [::1]:8002=[::1]:82 --json\n"
           "  ferry proxy --config toxiproxy.json --api     (Toxiproxy's config file and API, "
           "on 127.0.0.1:8474)\n"
           "  curl -X POST -d '{\"name\":\"db\",\"listen\":\"127.0.0.1:0\",\"upstream\":"
           "\"127.0.0.1:5432\"}' 127.0.0.1:8474/proxies\n";
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
                    "JSON file: Toxiproxy's list of proxies [{\"name\", \"listen\", \"upstream\", "
                    "\"enabled\"}]; ferry's entries may add \"protocol\" and \"toxics\"")
        ->type_name("FILE");  // what the option-walking tests look for
    cmd->add_option("--api", o->api,
                    "serve Toxiproxy's HTTP API at [HOST:]PORT (alone: 127.0.0.1:8474)")
        ->expected(0, 1);
    add_number(cmd, "--seed", o->seed, NumberKind::integer,
               {0, std::numeric_limits<std::uint64_t>::max()},
               "seed every random choice (reproducible runs)");
    add_number(cmd, "--udp-idle", o->udp_idle, NumberKind::seconds, {kMillisecond, kDay},
               "seconds of silence after which a UDP client's flow is dropped")
        ->capture_default_str();
    add_number(cmd, "--udp-max-flows", o->udp_max_flows, NumberKind::count,
               {std::size_t{1}, std::size_t{1} << 24},
               "UDP client flows per route (a socket each); a new client beyond it evicts "
               "the least recently used flow. Lowered to half of what the descriptor limit "
               "leaves after 64 when that is less")
        ->capture_default_str();
    add_number(cmd, "--max-connections", o->max_connections, NumberKind::count,
               {std::size_t{1}, std::size_t{1} << 24},
               "TCP connections per route at once; one more is closed at once, unserved "
               "(default: the smaller of 10000 and half of what the descriptor limit leaves "
               "after 64)");
    add_number(cmd, "--idle-timeout", o->idle_timeout, NumberKind::seconds, {0, kDay},
               "seconds without a byte either way before a TCP connection is closed "
               "(0 = never)")
        ->capture_default_str();
    add_number(cmd, "--connect-timeout", o->connect_timeout, NumberKind::seconds,
               {kMillisecond, kDay}, "seconds to wait for the upstream to accept a TCP connection")
        ->capture_default_str();
    cmd->add_flag("--no-splice", o->no_splice,
                  "copy every TCP byte through the proxy's buffers; by default a direction "
                  "without toxics moves with splice(2), zero copy (counted as spliced_up, "
                  "spliced_down)");
    cmd->add_flag("--json", o->json,
                  "print the counters as one JSON object at exit, alone on standard output "
                  "(the Listening lines go to standard error)");
    cmd->footer(footer());
    cmd->callback([o, &run] {
        check(*o);
        run = [o] { return run_proxy(*o); };
    });
}

}  // namespace ferry::cli
