// ferry resolve HOST [SERVICE]: what getaddrinfo and the services database say.
#include <fmt/core.h>

#include <memory>

#include "common/command.hpp"
#include "ferry/address.hpp"

namespace ferry::cli {
namespace {

struct ResolveOptions {
    std::string host;
    std::string service;
    bool ipv4 = false;
    bool ipv6 = false;
    std::string type;
    bool passive = false;
};

int run_resolve(const ResolveOptions& o) {
    ResolveHints hints;
    hints.family = o.ipv4 ? AF_INET : o.ipv6 ? AF_INET6 : AF_UNSPEC;
    hints.socktype = o.type == "stream" ? SOCK_STREAM : o.type == "dgram" ? SOCK_DGRAM : 0;
    hints.passive = o.passive;
    // getaddrinfo has no canonical name for "" (the any-address): asking is EAI_BADFLAGS.
    hints.canonical_name = !o.host.empty();
    const auto results = resolve(o.host, o.service, hints);
    if (!results.front().canonical_name.empty() && results.front().canonical_name != o.host)
        fmt::print("canonical name: {}\n", results.front().canonical_name);
    for (const Resolved& r : results)
        fmt::print("{:<5} {:<9} {:<4} {}\n", family_name(r.family), socktype_name(r.socktype),
                   protocol_name(r.protocol), r.address.to_string());
    return 0;
}

}  // namespace

void add_resolve(CLI::App& app, Runner& run) {
    auto o = std::make_shared<ResolveOptions>();
    CLI::App* cmd = app.add_subcommand(
        "resolve",
        "Print every address getaddrinfo returns for HOST and SERVICE: family, socket type, "
        "protocol and address. Example: ferry resolve localhost domain");
    cmd->add_option("host", o->host,
                    "host name or numeric address (\"\" = any interface with --passive)")
        ->required();
    cmd->add_option("service", o->service, "port number or service name (domain, http, ...)")
        ->check(port_validator());
    auto* v4 = cmd->add_flag("-4", o->ipv4, "IPv4 addresses only");
    cmd->add_flag("-6", o->ipv6, "IPv6 addresses only")->excludes(v4);
    cmd->add_option("-t,--type", o->type, "socket type: stream or dgram (default: every type)")
        ->check(CLI::IsMember({"stream", "dgram"}));
    cmd->add_flag("--passive", o->passive, "addresses to bind a server to (AI_PASSIVE)");
    cmd->callback([o, &run] {
        // "" is the any-address, which only a server binds (AI_PASSIVE), to a port.
        if (o->host.empty() && !o->passive)
            throw CLI::ValidationError(
                "HOST is empty: give a host name or address (\"\" means any interface, with "
                "--passive and a SERVICE)");
        if (o->host.empty() && o->service.empty())
            throw CLI::ValidationError(
                "HOST \"\" (any interface) needs a SERVICE: ferry resolve \"\" 80 --passive");
        run = [o] { return run_resolve(*o); };
    });
}

}  // namespace ferry::cli
