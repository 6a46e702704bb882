// Internal to the ferry command: how each subcommand plugs into main.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace ferry::cli {

/// What main runs once the command line parsed: returns the exit code.
using Runner = std::function<int()>;

/// Each subcommand file defines one of these: it adds its CLI11 subcommand to
/// `app`, binds the options to a struct of its own, and sets `run` when chosen.
void add_resolve(CLI::App& app, Runner& run);

/// A CLI11 check for a port: a number in 0..65535 or a service name.
CLI::Validator port_validator();

}  // namespace ferry::cli
