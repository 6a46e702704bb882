// ferry tour: every classic program's server and client over loopback, one after another,
// then the socket kinds beyond them that run on one host (ping, multicast on lo, SOCK_SEQPACKET).
#include <stdlib.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <regex>

#include "common/child_process.hpp"
#include "common/command.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"

namespace ferry::cli {
namespace {

struct Step {
    std::string title;
    /// Arguments after "ferry"; "-p 0" is added unless `port` is false. None: a client alone.
    std::vector<std::string> server;
    /// "{port}" is replaced by the server's port, "{dir}" (here and in `server`) by a
    /// temporary directory of the step's own, for Unix socket paths.
    std::vector<std::string> client;
    std::string input;  // the client's standard input
    bool port = true;
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
        {"ping: three ICMP echoes to 127.0.0.1",
         {},
         {"ping", "-c", "3", "-i", "0.2", "127.0.0.1"},
         ""},
        {"multicast: a group joined on the loopback interface",
         {"multicast", "receiver", "239.255.0.1", "--interface", "lo"},
         {"multicast", "sender", "239.255.0.1", "--interface", "127.0.0.1", "-p", "{port}"},
         ""},
        {"echo over a Unix SOCK_SEQPACKET socket: 100 messages of 64 KiB, boundaries kept",
         {"echo", "server", "-U", "{dir}/echo.sock", "--seqpacket"},
         {"echo", "client", "-U", "{dir}/echo.sock", "--seqpacket", "--count", "100", "--size",
          "65536"},
         "",
         false},
    };
}

std::string joined(const std::vector<std::string>& args) {
    std::string text = "ferry";
    for (const std::string& a : args)
        text += " " + a;
    return text;
}

/// A directory of the step's own, removed with what the step left in it.
class StepDir {
  public:
    StepDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "ferry-tour-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw Failure("mkdtemp: cannot make a directory");
        path_ = pattern;
    }
    ~StepDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    StepDir(const StepDir&) = delete;
    StepDir& operator=(const StepDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    std::string path_;
};

std::vector<std::string> with_values(const std::vector<std::string>& args, const std::string& port,
                                     const std::string& dir) {
    std::vector<std::string> out;
    for (std::string a : args) {
        if (a == "{port}") a = port;
        if (const auto at = a.find("{dir}"); at != std::string::npos) a.replace(at, 5, dir);
        out.push_back(std::move(a));
    }
    return out;
}

void show_step(const std::string& self, const Step& step, const StopSignals& stop) {
    // A backstop against a child that hangs, not a measure: the slowest step
    // (1 GB through the tcp-deadlock server in 1 KiB chunks) takes 15 s on a quiet
    // machine and several times that in a sanitizer build sharing two cores.
    const auto deadline = Clock::now() + std::chrono::seconds(240);
    const StepDir dir;
    say("");
    say("=== {} ===", step.title);
    std::unique_ptr<ChildProcess> server;
    std::string port;
    if (!step.server.empty()) {
        std::vector<std::string> server_args = with_values(step.server, "", dir.path());
        if (step.port) server_args.insert(server_args.end(), {"-p", "0"});
        say("$ {} &", joined(server_args));
        server_args.insert(server_args.begin(), self);
        server = std::make_unique<ChildProcess>(server_args, std::string(), &stop);
        // Ready once it says where it listens: `Listening at 127.0.0.1:PORT`, or a path.
        static const std::regex with_port(R"(^Listening at .*:(\d+)$)");
        for (bool ready = false; !ready;) {
            const auto line = server->read_line(deadline);
            if (!line)
                throw Failure("the " + step.server.front() + " server exited before listening");
            say("  server| {}", *line);
            std::smatch m;
            if (std::regex_search(*line, m, with_port)) port = m[1];
            ready = line->rfind("Listening at ", 0) == 0;
        }
    }

    std::vector<std::string> client_args = with_values(step.client, port, dir.path());
    say("$ {}{}", joined(client_args), step.input.empty() ? "" : "  (input: hello, world)");
    client_args.insert(client_args.begin(), self);
    ChildProcess client(client_args, step.input, &stop);
    for (const std::string& line : client.read_rest(deadline))
        say("  client| {}", line);
    say("  client exit status {}", client.wait(deadline));
    if (!server) return;

    const int status = server->stop(SIGTERM, deadline);
    for (const std::string& line : server->read_rest(deadline))
        say("  server| {}", line);
    say("  server stopped by SIGTERM, exit status {}", status);
}

int run_tour() {
    const std::string self = self_executable();
    // Ctrl-C or SIGTERM in the middle: each step's children are killed and its
    // directory removed on the way out, then the tour ends by that signal.
    const StopSignals stop;
    say("A tour of the classic programs: each server on a port the kernel picks (-p 0),");
    say("its client against it, then SIGTERM to the server. Then ping, multicast and");
    say("SOCK_SEQPACKET. All traffic stays on this host: 127.0.0.0/8 and Unix sockets.");
    try {
        for (const Step& step : steps())
            show_step(self, step, stop);
    } catch (const Interrupted& e) {
        end_by_signal(e.signal());
    }
    return 0;
}

}  // namespace

void add_tour(CLI::App& app, Runner& run) {
    CLI::App* cmd = app.add_subcommand(
        "tour",
        "Run every classic program's server and client over loopback and show their "
        "transcripts, then ping 127.0.0.1, multicast on the loopback interface and echo over a "
        "Unix SOCK_SEQPACKET socket (the job `make demo` runs). Example: ferry tour");
    cmd->callback([&run] { run = [] { return run_tour(); }; });
}

}  // namespace ferry::cli
