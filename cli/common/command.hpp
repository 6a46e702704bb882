// Internal to the ferry command: how each subcommand plugs into main, and the options they share.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <string>

#include "ferry/duration.hpp"
#include "ferry/socket.hpp"

namespace ferry::cli {

/// What main runs once the command line parsed: returns the exit code.
using Runner = std::function<int()>;

/// Each subcommand file defines one of these: it adds its CLI11 subcommand to
/// `app`, binds the options to a struct of its own, and sets `run` when chosen.
void add_resolve(CLI::App& app, Runner& run);
void add_udp_local(CLI::App& app, Runner& run);
void add_udp_remote(CLI::App& app, Runner& run);
void add_udp_broadcast(CLI::App& app, Runner& run);
void add_big_sender(CLI::App& app, Runner& run);
void add_tcp_sixteen(CLI::App& app, Runner& run);
void add_tcp_deadlock(CLI::App& app, Runner& run);
void add_timestamp(CLI::App& app, Runner& run);
void add_tour(CLI::App& app, Runner& run);
void add_chaos(CLI::App& app, Runner& run);
void add_connect(CLI::App& app, Runner& run);
void add_listen(CLI::App& app, Runner& run);
void add_bench(CLI::App& app, Runner& run);
void add_proxy(CLI::App& app, Runner& run);
void add_echo(CLI::App& app, Runner& run);
void add_ping(CLI::App& app, Runner& run);
void add_multicast(CLI::App& app, Runner& run);

/// A CLI11 check for a port: a number in 0..65535 or a service name.
CLI::Validator port_validator();

/// A CLI11 check for the port a client sends or connects to: port_validator()
/// and not 0, which means "any free port" only to a server that binds.
CLI::Validator destination_port_validator();

/// Adds `-p,--port` (number or service name) bound to `port`.
CLI::Option* add_port_option(CLI::App* cmd, std::string& port);

/// Adds `-p,--port` of a client: where it sends or connects, so never port 0.
CLI::Option* add_destination_port_option(CLI::App* cmd, std::string& port);

/// A program role: `server` or `client` as a sub-subcommand of `program`.
CLI::App* add_role(CLI::App* program, const std::string& role, const std::string& description);

/// Seconds given on the command line (`--timeout 2.5`) as a Duration;
/// saturated, so `--timeout 1e300` is practically never, not an overflow.
inline Duration seconds(double s) {
    return saturating_duration(s);
}

/// Duration as Python prints a float of seconds: 0.1, 0.2, 1.6, 2.0.
std::string seconds_text(Duration d);

/// A run-time failure that is not a socket error: main prints "ferry: <text>", exit 1.
class Failure : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

}  // namespace ferry::cli
