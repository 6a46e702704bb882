// The ferry command: parses the command line, then runs the chosen subcommand.
#include <csignal>
#include <exception>
#include <string_view>

#include <fmt/core.h>

#include "common/command.hpp"
#include "common/option_table.hpp"
#include "common/output.hpp"

int main(int argc, char** argv) {
    // A write to a closed connection must be an error we report, not a death.
    // The library already sends with MSG_NOSIGNAL; this covers writes to
    // stdout when it is a pipe whose reader went away.
    std::signal(SIGPIPE, SIG_IGN);

    CLI::App app(
        "ferry: sockets toolkit, the classic client/server programs and the tools around them",
        "ferry");
    app.set_version_flag("--version", "ferry " FERRY_VERSION);
    app.require_subcommand(1);
    app.fallthrough(false);

    ferry::cli::Runner run;
    ferry::cli::add_udp_local(app, run);
    ferry::cli::add_udp_remote(app, run);
    ferry::cli::add_udp_broadcast(app, run);
    ferry::cli::add_big_sender(app, run);
    ferry::cli::add_tcp_sixteen(app, run);
    ferry::cli::add_tcp_deadlock(app, run);
    ferry::cli::add_timestamp(app, run);
    ferry::cli::add_tour(app, run);
    ferry::cli::add_resolve(app, run);
    ferry::cli::add_chaos(app, run);
    ferry::cli::add_connect(app, run);
    ferry::cli::add_listen(app, run);
    ferry::cli::add_bench(app, run);
    ferry::cli::add_proxy(app, run);
    ferry::cli::add_echo(app, run);
    ferry::cli::add_ping(app, run);
    ferry::cli::add_multicast(app, run);

    if (argc == 2 && std::string_view(argv[1]) == ferry::cli::kOptionTableFlag) {
        fmt::print("{}\n", ferry::cli::option_table(app).dump(2));
        return 0;
    }

    // CLI11 would report a mistyped command as "A subcommand is required".
    const auto known = [&app](const std::string& name) {
        for (const CLI::App* sub : app.get_subcommands({}))
            if (sub->check_name(name)) return true;
        return false;
    };
    if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
        fmt::print(stderr, "ferry: unknown command '{}' (ferry --help lists them)\n",
                   ferry::cli::one_line(argv[1]));
        return 2;
    }
    // Nothing escapes main: an exception that did would abort (exit 134) with
    // the runtime's message instead of one line of ours.
    try {
        try {
            app.parse(argc, argv);
        } catch (const CLI::CallForHelp& e) {
            return app.exit(e);
        } catch (const CLI::CallForAllHelp& e) {
            return app.exit(e);
        } catch (const CLI::CallForVersion& e) {
            return app.exit(e);
        } catch (const CLI::ParseError& e) {
            fmt::print(stderr, "ferry: {}\n", ferry::cli::one_line(e.what()));
            return 2;
        }
        // Parsing ran each command's checks; a failure there that is not a
        // usage error (a file that cannot be read) is a run-time one, as below.
        return run ? run() : 2;
    } catch (const std::exception& e) {
        fmt::print(stderr, "ferry: {}\n", ferry::cli::one_line(e.what()));
        return 1;
    } catch (...) {
        fmt::print(stderr, "ferry: an unexpected error (not a std::exception)\n");
        return 1;
    }
}
