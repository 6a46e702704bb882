// ferry tour: every classic program's server and client over loopback, one after another.
#include <csignal>
#include <memory>
#include <regex>

#include "common/child_process.hpp"
#include "common/command.hpp"
#include "common/output.hpp"

namespace ferry::cli {
namespace {

struct Step {
    std::string title;
    std::vector<std::string> server;  // arguments after "ferry"; "-p 0" is added
    std::vector<std::string> client;  // "{port}" is replaced by the server's port
    std::string input;                // the client's standard input
};

std::vector<Step> steps() {
    return {
        {"udp-local: one datagram and its answer",
         {"udp-local", "server"},
         {"udp-local", "client", "-p", "{port}"},
         ""},
        {"udp-remote: a server that drops half the datagrams, a client that backs off",
         {"udp-remote", "server", "127.0.0.1", "--seed", "7"},
         {"udp-remote", "client", "127.0.0.1", "-p", "{port}"},
         ""},
        {"udp-broadcast: a datagram to the whole loopback network",
         {"udp-broadcast", "server", "0.0.0.0"},
         {"udp-broadcast", "client", "127.255.255.255", "-p", "{port}"},
         ""},
        {"big-sender: 65000 bytes in one datagram, fragmentation forbidden",
         {"big-sender", "server", "127.0.0.1"},
         {"big-sender", "client", "127.0.0.1", "-p", "{port}", "--size", "65000"},
         ""},
        {"tcp-sixteen: exactly sixteen octets each way",
         {"tcp-sixteen", "server", "127.0.0.1"},
         {"tcp-sixteen", "client", "127.0.0.1", "-p", "{port}"},
         ""},
        {"tcp-deadlock: a small count completes",
         {"tcp-deadlock", "server", "127.0.0.1"},
         {"tcp-deadlock", "client", "127.0.0.1", "1600", "-p", "{port}"},
         ""},
        {"tcp-deadlock: 1 GB deadlocks, and --stall-timeout says so",
         {"tcp-deadlock", "server", "127.0.0.1"},
         {"tcp-deadlock", "client", "127.0.0.1", "1073741824", "-p", "{port}", "--stall-timeout",
          "1"},
         ""},
        {"tcp-deadlock: 1 GB with --no-deadlock completes",
         {"tcp-deadlock", "server", "127.0.0.1"},
         {"tcp-deadlock", "client", "127.0.0.1", "1073741824", "-p", "{port}", "--no-deadlock"},
         ""},
        {"timestamp over TCP",
         {"timestamp", "server", "127.0.0.1"},
         {"timestamp", "client", "127.0.0.1", "-p", "{port}"},
         "hello\nworld\n"},
        {"timestamp over UDP",
         {"timestamp", "server", "127.0.0.1", "--udp"},
         {"timestamp", "client", "127.0.0.1", "-p", "{port}", "--udp"},
         "hello\nworld\n"},
    };
}

std::string joined(const std::vector<std::string>& args) {
    std::string text = "ferry";
    for (const std::string& a : args)
        text += " " + a;
    return text;
}

void show_step(const std::string& self, const Step& step) {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    say("");
    say("=== {} ===", step.title);
    std::vector<std::string> server_args = step.server;
    server_args.insert(server_args.end(), {"-p", "0"});
    say("$ {} &", joined(server_args));
    server_args.insert(server_args.begin(), self);
    ChildProcess server(server_args);

    static const std::regex listening(R"(Listening at .*:(\d+)$)");
    std::string port;
    while (port.empty()) {
        const auto line = server.read_line(deadline);
        if (!line) throw Failure("the " + step.server.front() + " server exited before listening");
        say("  server| {}", *line);
        std::smatch m;
        if (std::regex_search(*line, m, listening)) port = m[1];
    }

    std::vector<std::string> client_args;
    for (const std::string& a : step.client)
        client_args.push_back(a == "{port}" ? port : a);
    say("$ {}{}", joined(client_args), step.input.empty() ? "" : "  (input: hello, world)");
    client_args.insert(client_args.begin(), self);
    ChildProcess client(client_args, step.input);
    for (const std::string& line : client.read_rest(deadline))
        say("  client| {}", line);
    say("  client exit status {}", client.wait(deadline));

    const int status = server.stop(SIGTERM, deadline);
    for (const std::string& line : server.read_rest(deadline))
        say("  server| {}", line);
    say("  server stopped by SIGTERM, exit status {}", status);
}

int run_tour() {
    const std::string self = self_executable();
    say("A tour of the classic programs: each server on a port the kernel picks (-p 0),");
    say("its client against it, then SIGTERM to the server. All traffic stays on 127.0.0.0/8.");
    for (const Step& step : steps())
        show_step(self, step);
    return 0;
}

}  // namespace

void add_tour(CLI::App& app, Runner& run) {
    CLI::App* cmd = app.add_subcommand(
        "tour",
        "Run every classic program's server and client over loopback and show their "
        "transcripts (the job `make demo` runs). Example: ferry tour");
    cmd->callback([&run] { run = [] { return run_tour(); }; });
}

}  // namespace ferry::cli
