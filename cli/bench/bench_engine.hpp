// Internal to the ferry command: the load generator behind `ferry bench` (connections and loop).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench/histogram.hpp"
#include "ferry/socket.hpp"

namespace ferry::cli {

/// Bytes of sockperf's message header: the least --size with --sockperf.
inline constexpr std::size_t kSockperfHeader = 14;

/// What to run. The caller has checked every value (bench.cpp does).
struct BenchConfig {
    std::string host;
    std::string port;
    bool udp = false;
    std::size_t connections = 1;
    std::size_t size = 64;     ///< bytes per request (and per reply)
    std::size_t pipeline = 1;  ///< requests in flight per connection (UDP: always 1)
    double rate = 0;           ///< open loop: total requests per second; 0: closed loop
    Duration duration{};       ///< measured window (with `requests`: the time limit)
    Duration warmup{};         ///< before the window, not counted
    std::optional<std::uint64_t> requests;  ///< stop after this many replies
    Duration udp_timeout{};                 ///< a datagram unanswered this long is lost
    Duration connect_timeout{};             ///< for connecting every connection
    Duration drain{};                       ///< after sending stops, how long replies are awaited
    unsigned threads = 1;
    /// Every request starts with sockperf's 14-byte message header (sequence
    /// number, ping-pong request flags, message size), so that `sockperf
    /// server` answers it; needs size >= kSockperfHeader. UDP: the sequence
    /// number carries the request's tag.
    bool sockperf = false;
    std::optional<int> server_pid;  ///< read its CPU time from /proc/PID/stat
    /// Once connected, SIGINT and SIGTERM end the run early, as its end would
    /// (sending stops, the requests in flight drain, for 0.25 s at most) and
    /// the result is returned. Before that they act as usual: a slow connect
    /// stays interruptible.
    bool stop_on_signals = false;
};

/// One second of the measured window (the last one may be shorter).
struct BenchInterval {
    double start = 0;  ///< seconds since the window opened
    double end = 0;
    std::uint64_t replies = 0;
    std::int64_t p50_ns = 0;
    std::int64_t p99_ns = 0;
    std::int64_t max_ns = 0;
};

struct BenchResult {
    std::string address;  ///< the address connected to, `127.0.0.1:5000`
    std::size_t connected = 0;
    double seconds = 0;      ///< the measured window
    std::uint64_t sent = 0;  ///< requests sent in the window
    std::uint64_t replies = 0;
    std::uint64_t lost = 0;  ///< no reply: UDP timeout, connection closed, or none by the end
    std::uint64_t lost_on_close = 0;    ///< of `lost`: in flight on a connection that closed
    std::uint64_t lost_at_end = 0;      ///< of `lost`: still unanswered when the run ended
    std::uint64_t errors = 0;           ///< socket errors (reset, refused, ...)
    std::uint64_t stray = 0;            ///< UDP datagrams that answer no request in flight
    std::uint64_t behind_schedule = 0;  ///< --rate: due in the window but never sent
    std::size_t closed_by_peer = 0;     ///< connections the server closed or reset
    std::string first_error;            ///< the first socket error, as text
    Histogram latency;                  ///< round trips of the window's requests
    std::vector<BenchInterval> intervals;
    double client_cpu_seconds = 0;  ///< this process, over the window
    std::optional<double> server_cpu_seconds;
    std::string server_cpu_note;
    bool interrupted =
        false;  ///< ended early by SIGINT or SIGTERM  ///< why server_cpu_seconds is missing
};

/// Connects every connection (TCP_NODELAY, non-blocking) before anything is
/// timed, then drives them: warm-up, measured window, drain. `on_interval` is
/// called (from any of the bench threads, one call at a time) after each full
/// second of the window, for a live progress line.
///
/// Throws Failure (`connect to 127.0.0.1:5000: Connection refused (0 of 4
/// connected)`) when a connection cannot be made in the connect timeout, or
/// when the descriptor limit cannot hold the connections; for UDP, when a
/// socket is refused (ICMP port unreachable) before any datagram came back
/// (`recv from 127.0.0.1:5000: Connection refused (no server is listening on
/// that UDP port)`); Error from the system calls otherwise. Lost requests and
/// closed connections are reported in the result, not thrown.
BenchResult run_bench(const BenchConfig& config,
                      const std::function<void(const BenchInterval&)>& on_interval);

}  // namespace ferry::cli
