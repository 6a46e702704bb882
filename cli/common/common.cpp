// Internal to the ferry command: the option helpers the subcommands share.
#include <fmt/core.h>

#include <cmath>

#include "common/command.hpp"
#include "ferry/address.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {

CLI::Validator port_validator() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            try {
                parse_port(text);
                return {};
            } catch (const Error&) {
                return "port '" + text + "' is not a number in 0..65535 or a known service";
            }
        },
        "PORT", "port");
}

CLI::Validator destination_port_validator() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            try {
                if (parse_port(text) != 0) return {};
            } catch (const Error&) {
                return "port '" + text + "' is not a number in 1..65535 or a known service";
            }
            return "0 cannot be connected or sent to (port 0 means any free port only to a "
                   "server that binds)";
        },
        "PORT", "destination port");
}

CLI::Option* add_port_option(CLI::App* cmd, std::string& port) {
    return cmd->add_option("-p,--port", port, "port number or service name")
        ->check(port_validator())
        ->capture_default_str();
}

CLI::Option* add_destination_port_option(CLI::App* cmd, std::string& port) {
    return cmd->add_option("-p,--port", port, "port number or service name")
        ->check(destination_port_validator())
        ->capture_default_str();
}

CLI::App* add_role(CLI::App* program, const std::string& role, const std::string& description) {
    return program->add_subcommand(role, description);
}

std::string seconds_text(Duration d) {
    const double s = std::chrono::duration<double>(d).count();
    // Python's repr of a float: shortest round-trip form, always with a point.
    std::string text = fmt::format("{}", s);
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
}

}  // namespace ferry::cli
