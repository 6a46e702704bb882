// ferry bench HOST PORT: a load generator for any TCP or UDP echo server.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <memory>
#include <optional>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench/bench_engine.hpp"
#include "common/command.hpp"
#include "common/numbers.hpp"
#include "ferry/address.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {
namespace {

constexpr std::size_t kMaxSize = 16 * kMiB;
constexpr std::size_t kMaxUdpSize = 65507;  // 65535 - 8 (UDP header) - 20 (IPv4 header)
constexpr double kRequestsTimeLimit = 600;  // seconds, when --requests is given without --duration
constexpr double kTcpDrain = 2;             // seconds to wait for the last replies
constexpr int kPidMax = 4'194'304;          // PID_MAX_LIMIT: no process ID is larger

struct BenchOptions {
    std::string host;
    std::string port;
    std::size_t connections = 1;
    std::size_t size = 64;
    std::size_t pipeline = 1;
    double duration = 10;
    double warmup = 1;
    std::optional<double> rate;
    bool udp = false;
    double udp_timeout_ms = 200;
    std::optional<std::uint64_t> requests;
    bool json = false;
    std::optional<int> server_pid;
    double connect_timeout = 10;
    unsigned threads = 1;
    bool sockperf = false;
    bool duration_given = false;
};

BenchConfig config_of(const BenchOptions& o) {
    BenchConfig c;
    c.host = o.host;
    c.port = o.port;
    c.udp = o.udp;
    c.connections = o.connections;
    c.size = o.size;
    c.pipeline = o.pipeline;
    c.rate = o.rate.value_or(0);
    c.duration = seconds(o.requests && !o.duration_given ? kRequestsTimeLimit : o.duration);
    c.warmup = seconds(o.warmup);
    c.requests = o.requests;
    c.udp_timeout = seconds(o.udp_timeout_ms / 1000);
    c.connect_timeout = seconds(o.connect_timeout);
    // UDP requests end by themselves (a reply or the timeout); TCP ones are
    // awaited a little, then counted as lost.
    c.drain = o.udp ? c.udp_timeout + seconds(1) : seconds(kTcpDrain);
    c.threads = o.threads;
    c.sockperf = o.sockperf;
    c.server_pid = o.server_pid;
    c.stop_on_signals = true;
    return c;
}

/// Latency as a person reads it: 18.4 µs, 2.31 ms, 1.204 s.
std::string latency_text(std::int64_t ns) {
    if (ns < 1'000'000) return fmt::format("{:.1f} µs", static_cast<double>(ns) / 1e3);
    if (ns < 1'000'000'000) return fmt::format("{:.2f} ms", static_cast<double>(ns) / 1e6);
    return fmt::format("{:.3f} s", static_cast<double>(ns) / 1e9);
}

/// `value` to `decimals` places, as the nearest double: JSON then shows 77.823,
/// where multiplying by 0.001 would give 77.82300000000001.
double rounded(double value, int decimals) {
    const double scale = std::pow(10.0, decimals);
    return std::round(value * scale) / scale;
}
double us(std::int64_t ns) {
    return rounded(static_cast<double>(ns) / 1e3, 3);
}

struct Figures {
    double rps = 0;
    double mbps = 0;
    std::optional<double> client_us, client_percent, server_us, server_percent;
};

Figures figures_of(const BenchOptions& o, const BenchResult& r) {
    Figures f;
    if (r.seconds > 0) {
        f.rps = static_cast<double>(r.replies) / r.seconds;
        f.mbps = f.rps * static_cast<double>(o.size) / 1e6;
    }
    if (r.replies > 0) {
        f.client_us = r.client_cpu_seconds * 1e6 / static_cast<double>(r.replies);
        if (r.server_cpu_seconds)
            f.server_us = *r.server_cpu_seconds * 1e6 / static_cast<double>(r.replies);
    }
    if (r.seconds > 0) {
        f.client_percent = r.client_cpu_seconds / r.seconds * 100;
        if (r.server_cpu_seconds) f.server_percent = *r.server_cpu_seconds / r.seconds * 100;
    }
    return f;
}

std::string mode_text(const BenchOptions& o) {
    if (o.rate)
        return fmt::format("open loop at {} requests/s (at most {} in flight per {})", *o.rate,
                           o.pipeline, o.udp ? "socket" : "connection");
    return fmt::format("closed loop, {} in flight per {}", o.pipeline,
                       o.udp ? "socket" : "connection");
}

std::vector<std::string> notes_of(const BenchOptions& o, const BenchResult& r) {
    std::vector<std::string> notes;
    if (r.interrupted)
        notes.push_back(fmt::format(
            "interrupted (SIGINT or SIGTERM): the figures cover the {:.3f} s measured until then",
            r.seconds));
    if (r.closed_by_peer > 0)
        notes.push_back(fmt::format(
            "the server closed {} of {} connections during the run; {} requests in flight on them "
            "are counted as lost{}",
            r.closed_by_peer, r.connected, r.lost_on_close,
            r.closed_by_peer == r.connected ? " (no connection was left: the run ended early)"
                                            : ""));
    if (r.lost_at_end > 0)
        notes.push_back(fmt::format(
            "{} requests were still unanswered when the run ended; they are counted as lost",
            r.lost_at_end));
    if (o.udp && r.lost > 0)
        notes.push_back(
            fmt::format("a datagram unanswered after {} ms is counted as lost", o.udp_timeout_ms));
    if (r.stray > 0)
        notes.push_back(fmt::format(
            "{} {} answered no request in flight{}", r.stray, o.udp ? "datagrams" : "reads",
            o.udp ? " (late replies to requests already counted as lost)"
                  : " (more bytes came back than were sent: is it an echo server?)"));
    if (r.behind_schedule > 0)
        notes.push_back(
            fmt::format("{} requests due in the window were never sent: every connection was full "
                        "(raise -c or --pipeline)",
                        r.behind_schedule));
    if (!r.first_error.empty()) notes.push_back("first error: " + r.first_error);
    if (!r.server_cpu_note.empty()) notes.push_back("server CPU unknown: " + r.server_cpu_note);
    return notes;
}

void print_table(const BenchOptions& o, const BenchResult& r) {
    const Figures f = figures_of(o, r);
    fmt::print("ferry bench: {} over {}, {} {}, {}-byte requests, {}\n", r.address,
               o.udp ? "UDP" : "TCP", r.connected,
               o.udp ? (r.connected == 1 ? "socket" : "sockets")
                     : (r.connected == 1 ? "connection" : "connections"),
               o.size, mode_text(o));
    fmt::print("measured {:.3f} s after {} s of warm-up\n\n", r.seconds, o.warmup);
    fmt::print("  {:<22}{:>14.1f}\n", "requests/s", f.rps);
    fmt::print("  {:<22}{:>14.3f}   payload echoed per second, one way (1 MB = 10^6 bytes)\n",
               "MB/s", f.mbps);
    fmt::print("  {:<22}{:>14}\n", "sent", r.sent);
    fmt::print("  {:<22}{:>14}\n", "replies", r.replies);
    fmt::print("  {:<22}{:>14}\n", "lost", r.lost);
    fmt::print("  {:<22}{:>14}\n", "errors", r.errors);
    const std::pair<const char*, std::int64_t> rows[] = {
        {"p50", r.latency.percentile(50)}, {"p90", r.latency.percentile(90)},
        {"p99", r.latency.percentile(99)}, {"p99.9", r.latency.percentile(99.9)},
        {"max", r.latency.max()},
    };
    for (const auto& [name, ns] : rows)
        fmt::print("  {:<22}{:>14}\n", fmt::format("round-trip {}", name), latency_text(ns));
    if (f.client_us)
        fmt::print("  {:<22}{:>14}   {:.0f} % of one CPU\n", "client CPU/request",
                   fmt::format("{:.2f} µs", *f.client_us), f.client_percent.value_or(0));
    if (f.server_us)
        fmt::print("  {:<22}{:>14}   {:.0f} % of one CPU, pid {}\n", "server CPU/request",
                   fmt::format("{:.2f} µs", *f.server_us), f.server_percent.value_or(0),
                   *o.server_pid);
    const auto notes = notes_of(o, r);
    if (!notes.empty()) fmt::print("\n");
    for (const auto& note : notes)
        fmt::print("note: {}\n", note);
    std::fflush(stdout);
}

nlohmann::ordered_json optional_number(const std::optional<double>& value, int decimals) {
    return value ? nlohmann::ordered_json(rounded(*value, decimals))
                 : nlohmann::ordered_json(nullptr);
}

void print_json(const BenchOptions& o, const BenchResult& r, std::time_t started) {
    using json = nlohmann::ordered_json;
    const Figures f = figures_of(o, r);
    char when[64];
    tm utc{};
    ::gmtime_r(&started, &utc);
    const std::size_t n = std::strftime(when, sizeof when, "%a, %d %b %Y %H:%M:%S GMT", &utc);

    json start;
    start["version"] = "ferry " FERRY_VERSION;
    start["timestamp"] = {{"time", std::string(when, n)}, {"timesecs", started}};
    start["connecting_to"] = {{"host", o.host}, {"port", parse_port(o.port)}};
    start["connected"] = {{"address", r.address}, {"connections", r.connected}};
    start["test_start"] = {
        {"protocol", o.udp ? "UDP" : "TCP"},
        {"connections", o.connections},
        {"size", o.size},
        {"mode", o.rate ? "open-loop" : "closed-loop"},
        {"pipeline", o.pipeline},
        {"sockperf", o.sockperf},
        {"rate", o.rate ? json(*o.rate) : json(nullptr)},
        {"duration", o.requests && !o.duration_given ? json(nullptr) : json(o.duration)},
        {"warmup", o.warmup},
        {"requests", o.requests ? json(*o.requests) : json(nullptr)},
        {"udp_timeout_ms", o.udp ? json(o.udp_timeout_ms) : json(nullptr)},
        {"threads", o.threads},
        {"server_pid", o.server_pid ? json(*o.server_pid) : json(nullptr)},
    };

    json intervals = json::array();
    for (const BenchInterval& i : r.intervals) {
        const double length = i.end - i.start;
        const double rps = length > 0 ? static_cast<double>(i.replies) / length : 0;
        intervals.push_back({
            {"start", rounded(i.start, 3)},
            {"end", rounded(i.end, 3)},
            {"seconds", rounded(length, 3)},
            {"requests", i.replies},
            {"rps", rounded(rps, 1)},
            {"MBps", rounded(rps * static_cast<double>(o.size) / 1e6, 3)},
            {"p50_us", us(i.p50_ns)},
            {"p99_us", us(i.p99_ns)},
            {"max_us", us(i.max_ns)},
        });
    }

    json end;
    end["seconds"] = rounded(r.seconds, 6);
    end["sent"] = r.sent;
    end["replies"] = r.replies;
    end["lost"] = r.lost;
    end["lost_on_close"] = r.lost_on_close;
    end["lost_at_end"] = r.lost_at_end;
    end["errors"] = r.errors;
    end["stray"] = r.stray;
    end["behind_schedule"] = r.behind_schedule;
    end["connections_closed"] = r.closed_by_peer;
    end["interrupted"] = r.interrupted;
    end["first_error"] = r.first_error.empty() ? json(nullptr) : json(r.first_error);
    end["bytes"] = r.replies * o.size;
    end["rps"] = rounded(f.rps, 1);
    end["MBps"] = rounded(f.mbps, 3);
    end["round_trip_us"] = {
        {"min", us(r.latency.min())},          {"mean", rounded(r.latency.mean() / 1e3, 3)},
        {"p50", us(r.latency.percentile(50))}, {"p90", us(r.latency.percentile(90))},
        {"p99", us(r.latency.percentile(99))}, {"p99.9", us(r.latency.percentile(99.9))},
        {"max", us(r.latency.max())},
    };
    end["cpu"] = {
        {"client_us_per_request", optional_number(f.client_us, 3)},
        {"client_percent", optional_number(f.client_percent, 1)},
        {"server_us_per_request", optional_number(f.server_us, 3)},
        {"server_percent", optional_number(f.server_percent, 1)},
    };
    end["notes"] = notes_of(o, r);

    json out;
    out["start"] = std::move(start);
    out["intervals"] = std::move(intervals);
    out["end"] = std::move(end);
    fmt::print("{}\n", out.dump(2));
    std::fflush(stdout);
}

int run_bench_command(const BenchOptions& o) {
    const BenchConfig config = config_of(o);
    const std::time_t started = std::time(nullptr);
    // The live line: on a terminal only, redrawn after each second, erased at the end.
    // The progress line is for a person at a terminal; with --json it goes to
    // standard error, so that standard output is the JSON alone.
    FILE* const terminal = o.json ? stderr : stdout;
    const bool live = ::isatty(::fileno(terminal)) == 1;
    const auto progress = [&](const BenchInterval& i) {
        if (!live) return;
        const double length = i.end - i.start;
        fmt::print(terminal, "\r  {:.0f} s  {:.0f} requests/s  round-trip p99 {}\x1b[K", i.end,
                   length > 0 ? static_cast<double>(i.replies) / length : 0.0,
                   latency_text(i.p99_ns));
        std::fflush(terminal);
    };
    const BenchResult result = run_bench(config, progress);
    if (live) {
        fmt::print(terminal, "\r\x1b[K");
        std::fflush(terminal);
    }
    if (o.json)
        print_json(o, result, started);
    else
        print_table(o, result);
    if (result.replies == 0) {
        fmt::print(stderr, "ferry: bench: no reply from {} in the measured window\n",
                   result.address);
        return 1;
    }
    return 0;
}

void validate(BenchOptions& o, const CLI::App& cmd) {
    o.duration_given = cmd.count("--duration") > 0;
    if (o.udp) {
        if (o.size > kMaxUdpSize)
            throw CLI::ValidationError(fmt::format(
                "--size {} is too large for one UDP datagram (at most {})", o.size, kMaxUdpSize));
        if (o.pipeline > 1)
            throw CLI::ValidationError(
                "--pipeline is for TCP: with -u each socket has one datagram in flight "
                "(use -c for more)");
    } else if (cmd.count("--udp-timeout") > 0) {
        throw CLI::ValidationError("--udp-timeout applies to -u (UDP) only");
    }
    if (o.sockperf && o.size < kSockperfHeader)
        throw CLI::ValidationError(fmt::format(
            "--size {} is too small for --sockperf: sockperf's header alone is {} bytes", o.size,
            kSockperfHeader));
    if (o.threads > o.connections)
        throw CLI::ValidationError(fmt::format(
            "--threads {} is more than the {} connections to share", o.threads, o.connections));
    if (o.server_pid) {
        struct stat st {};
        if (*o.server_pid <= 0 || ::stat(fmt::format("/proc/{}", *o.server_pid).c_str(), &st) != 0)
            throw CLI::ValidationError(
                fmt::format("--server-pid {}: no such process", *o.server_pid));
    }
}

}  // namespace

void add_bench(CLI::App& app, Runner& run) {
    auto o = std::make_shared<BenchOptions>();
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "Load generator for a TCP or UDP echo server (any server that sends back the bytes it "
        "receives): requests/s, MB/s, round-trip latency percentiles, CPU per request.\n"
        "Every connection is made before the measurement starts; each sends --size bytes and "
        "waits for all of them to come back before sending the next (closed loop), or keeps "
        "--pipeline requests in flight, or follows a fixed --rate (open loop).\n"
        "Example: ferry bench 127.0.0.1 5000 -c 100 --duration 10 --server-pid 1234\n"
        "         ferry bench 127.0.0.1 5000 -u --rate 20000 --json");
    cmd->add_option("host", o->host, "server host name or address")->required();
    cmd->add_option("port", o->port, "server port (number or service name)")
        ->required()
        ->check(destination_port_validator());
    add_number(cmd, "-c,--connections", o->connections, NumberKind::count, {1, 1'000'000},
               "connections (UDP: sockets) at once; the descriptor limit is raised to the hard "
               "limit for them")
        ->capture_default_str();
    add_number(cmd, "-s,--size", o->size, NumberKind::size, {1, kMaxSize},
               "bytes per request (the reply is as long)")
        ->capture_default_str();
    add_number(cmd, "--pipeline", o->pipeline, NumberKind::count, {1, 65536},
               "requests in flight per connection (TCP); with --rate, the most a connection may "
               "have in flight")
        ->capture_default_str();
    add_number(cmd, "-d,--duration", o->duration, NumberKind::seconds, {kMillisecond, kDay},
               "seconds measured (with --requests: a time limit, default 600)")
        ->capture_default_str();
    add_number(cmd, "--warmup", o->warmup, NumberKind::seconds, {0, kHour},
               "seconds of load before the measurement, not counted")
        ->capture_default_str();
    add_number(cmd, "--rate", o->rate, NumberKind::rate, {0.001, 1e9},
               "open loop: this many requests per second in all (2.5k, 1M), each sent at its "
               "scheduled time whether or not earlier ones were answered; latency counts from "
               "the scheduled time, so a stalled server cannot hide its stall (no coordinated "
               "omission)");
    cmd->add_flag("-u,--udp", o->udp,
                  "UDP: one datagram per request, one in flight per socket; a datagram "
                  "unanswered after --udp-timeout is lost and the socket moves on");
    add_number(cmd, "--udp-timeout", o->udp_timeout_ms, NumberKind::milliseconds,
               {kMillisecond, 10 * kMinute * 1000},
               "milliseconds after which an unanswered datagram is counted as lost")
        ->capture_default_str();
    add_number(cmd, "-n,--requests", o->requests, NumberKind::count, {1, std::uint64_t{1} << 53},
               "stop after this many replies instead of after --duration");
    cmd->add_flag("--sockperf", o->sockperf,
                  "start every request with sockperf's message header (a ping-pong request of "
                  "--size bytes, at least 14), so that `sockperf server` answers it as it "
                  "answers sockperf itself; any echo server answers these requests too");
    cmd->add_flag("--json", o->json,
                  "print iperf3-shaped JSON: start (parameters), intervals (one per second), "
                  "end (totals, round-trip percentiles, CPU)");
    add_number(cmd, "--server-pid", o->server_pid, NumberKind::integer, {1, kPidMax},
               "also report the server's CPU per request: utime+stime of all its threads from "
               "/proc/PID/stat over the measured window");
    add_number(cmd, "--connect-timeout", o->connect_timeout, NumberKind::seconds,
               {kMillisecond, kHour}, "seconds to make every connection before giving up")
        ->capture_default_str();
    add_number(cmd, "-t,--threads", o->threads, NumberKind::count, {1, 256},
               "threads, each with its own epoll and share of the connections")
        ->capture_default_str();
    cmd->footer(
        "Reports requests/s, MB/s (payload bytes echoed per second, one way), the round-trip "
        "latency p50/p90/p99/p99.9/max, requests sent, replies, lost (UDP timeouts, requests in "
        "flight on a connection the server closed, and requests unanswered at the end), errors, "
        "and the CPU per request of this client and (--server-pid) of the server. Once "
        "connected, Ctrl-C or SIGTERM ends the run early and still prints the report. Exit code "
        "0 when the run completed, even with losses; 1 when nothing connected or no reply came; "
        "2 for bad usage.");
    cmd->callback([o, cmd, &run] {
        validate(*o, *cmd);
        run = [o] { return run_bench_command(*o); };
    });
}

}  // namespace ferry::cli
