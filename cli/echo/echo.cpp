// ferry echo server|client: one echo service, served by any server model, over TCP, UDP or a Unix
// socket.
#include "echo/echo.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <latch>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "common/unix_socket_file.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {

Address echo_address(const EchoOptions& o, bool passive) {
    if (!o.unix_path.empty()) return Address::unix_path(o.unix_path);
    ResolveHints hints;
    hints.socktype = o.udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.passive = passive;
    return resolve(o.host, o.port, hints).front().address;
}

namespace {

ServerLimits limits_from(const EchoOptions& o) {
    ServerLimits limits;
    limits.max_connections = o.max_conns;
    if (o.idle_timeout > 0)
        limits.idle_timeout = seconds(o.idle_timeout);
    else
        limits.idle_timeout.reset();
    limits.output_high_water = o.high_water;
    limits.stalled_timeout = seconds(o.stalled_timeout);
    limits.drain_timeout = seconds(o.drain_timeout);
    limits.threads = o.threads.value_or(o.model == "pool" ? 4 : 1);
    limits.max_message = o.max_frame;
    return limits;
}

/// The echo service, plus one line on stderr for each client dropped for what
/// it sent (a frame or message over --max-frame, a malformed one).
class ReportingEcho final : public StreamHandler {
  public:
    ReportingEcho(Framing framing, std::size_t max_frame) : echo_(framing, max_frame) {}
    std::size_t on_data(Buffer& input, Buffer& output) const override {
        return echo_.on_data(input, output);
    }
    // A raw echo lets the event-loop models send straight from their read buffer.
    [[nodiscard]] bool echoes_input() const noexcept override { return echo_.echoes_input(); }
    // ... and the io_uring model send echoes from the buffer they arrived in.
    [[nodiscard]] std::optional<EchoSpan> echo_span(std::string_view input) const override {
        return echo_.echo_span(input);
    }
    // Called from any serving thread or forked child: one fprintf is one
    // locked write of the whole line, and it cannot throw.
    void on_frame_error(const Error& why) const noexcept override {
        std::fprintf(stderr, "ferry: dropped a client: %s\n", why.what());
    }

  private:
    EchoHandler echo_;
};

void print_summary(const ServerStats& st) {
    say("Stopped: {} connections accepted, {} refused, {} shed out of descriptors, {} dropped "
        "idle, {} dropped for not reading, {} dropped for bad frames; {} messages, {} bytes in, "
        "{} bytes out",
        st.accepted.load(), st.refused.load(), st.shed.load(), st.dropped_idle.load(),
        st.dropped_stalled.load(), st.dropped_bad_frame.load(), st.messages.load(),
        st.bytes_in.load(), st.bytes_out.load());
}

}  // namespace

int run_echo_server(const EchoOptions& o) {
    if (o.udp) return run_udp_echo_server(o);
    const Model model = *parse_model(o.model);
    const ReportingEcho handler(Framing::parse(o.framing), o.max_frame);
    // Signals are blocked before any thread starts, so they all inherit the
    // mask and only the watcher below ever sees SIGINT/SIGTERM.
    StopSignals stop;
    const Address address = echo_address(o, true);
    const int socktype = o.seqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
    SocketFile file;  // declared before the server: removed after its socket is closed
    remove_stale_socket_file(o.unix_path, address, socktype);
    StreamServer server(address, model, limits_from(o), handler, socktype);
    // Out of descriptors: one line a second with the count of clients refused,
    // from an accepting thread (one fprintf is one whole line, and never throws).
    server.on_warning([](std::string_view line) {
        std::fprintf(stderr, "ferry: %.*s\n", static_cast<int>(line.size()), line.data());
    });
    file.bound(o.unix_path);
    if (o.seqpacket)
        say("Listening at {} (model {}, seqpacket, messages up to {} bytes)",
            server.local_address().to_string(), model_name(model), o.max_frame);
    else
        say("Listening at {} (model {}, framing {})", server.local_address().to_string(),
            model_name(model), o.framing);

    // The server runs only once the watcher is parked in poll: the fork model's
    // children go on after fork(), and a thread caught starting (allocating)
    // would leave them a locked allocator.
    Fd done(::eventfd(0, EFD_CLOEXEC));
    std::latch parked(1);
    std::thread watcher([&] {
        pollfd fds[2] = {{stop.fd(), POLLIN, 0}, {done.get(), POLLIN, 0}};
        parked.count_down();
        while (::poll(fds, 2, -1) < 0 && errno == EINTR) {
        }
        if (fds[0].revents != 0) server.stop();
    });
    parked.wait();
    try {
        server.run();
    } catch (...) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(done.get(), &one, sizeof one);
        watcher.join();
        throw;
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(done.get(), &one, sizeof one);
    watcher.join();
    print_summary(server.stats());
    return 0;
}

namespace {

/// The largest message or frame: 2 GiB, beyond what one Buffer should hold.
constexpr std::uint64_t kMaxFrame = 2 * kGiB;

/// --framing as typed: raw, line, length or fixed:N with N a SIZE (fixed:64K
/// works), rewritten to what Framing::parse reads (fixed:65536). A bad N is a
/// usage error here, not a failure once the server runs.
CLI::Validator framing_validator() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            if (text == "raw" || text == "line" || text == "length") return {};
            constexpr std::string_view kFixed = "fixed:";
            if (text.compare(0, kFixed.size(), kFixed) != 0)
                return "'" + text + "' is not raw, line, fixed:N or length";
            const NumberReading n = read_number(
                std::string_view(text).substr(kFixed.size()),
                {.kind = NumberKind::size, .whole = true, .whole_min = 1, .whole_max = kMaxFrame});
            if (!n.value) return "in fixed:N, " + n.error;
            text = std::string(kFixed) + *n.value;
            return {};
        },
        "", "");
}

void add_endpoint_options(CLI::App* cmd, EchoOptions& o, bool client) {
    if (client)
        add_destination_port_option(cmd, o.port);
    else
        add_port_option(cmd, o.port);
    cmd->add_option("-U,--unix", o.unix_path,
                    "a Unix socket at PATH instead of TCP: a stream, or with --seqpacket messages")
        ->type_name("PATH");
    cmd->add_flag("--seqpacket", o.seqpacket,
                  "with -U: SOCK_SEQPACKET, the kernel keeps message boundaries. The server echoes "
                  "each message (1 byte to --max-frame) as exactly one message, with every "
                  "model; the client sends each message as one and checks that each echo is "
                  "exactly it");
    cmd->add_flag("-u,--udp", o.udp, "UDP: every datagram is one message");
    cmd->add_option("--framing", o.framing,
                    "raw, line, fixed:N (N bytes, a SIZE: fixed:512, fixed:4K) or length (32-bit "
                    "big-endian prefix). With --seqpacket only raw, others are refused: the "
                    "kernel already keeps each message whole")
        ->transform(framing_validator())
        ->capture_default_str();
    add_number(cmd, "--max-frame", o.max_frame, NumberKind::size, {1, kMaxFrame},
               "largest message in bytes. With --seqpacket it is the server's read buffer: a "
               "longer message drops the client with one line on stderr, and is never echoed cut "
               "short")
        ->capture_default_str();
}

/// The combinations of -U, -u, --seqpacket and --framing, checked before any socket is opened.
void check_transport(const EchoOptions& o) {
    if (o.seqpacket && o.udp)
        throw CLI::ValidationError(
            "--seqpacket is a Unix socket type (with -U PATH): it does not combine with -u");
    if (o.seqpacket && o.unix_path.empty())
        throw CLI::ValidationError(
            "--seqpacket needs -U PATH (SOCK_SEQPACKET is a Unix socket here)");
    if (o.seqpacket && o.framing != "raw")
        throw CLI::ValidationError("--framing " + o.framing +
                                   " with --seqpacket: the kernel keeps each message whole, so "
                                   "only raw applies");
    if (o.udp && !o.unix_path.empty())
        throw CLI::ValidationError("-U", "-U and -u cannot be combined");
}

}  // namespace

void add_echo(CLI::App& app, Runner& run) {
    auto o = std::make_shared<EchoOptions>();
    CLI::App* cmd = app.add_subcommand(
        "echo",
        "An echo service run by any server model, and a client that checks its answers. Example: "
        "ferry echo server --model epoll & ferry echo client --count 1000");
    cmd->require_subcommand(1);

    CLI::App* server =
        add_role(cmd, "server", "serve the echo service until SIGINT/SIGTERM, then drain");
    server->add_option("host", o->host, "address to listen at")->capture_default_str();
    add_endpoint_options(server, *o, false);
    server
        ->add_option("--model", o->model,
                     "iterative, thread, pool, fork, select, poll, epoll or uring "
                     "(UDP: iterative, select, poll or epoll; --seqpacket: every model)")
        ->check(CLI::IsMember(
            {"iterative", "thread", "pool", "fork", "select", "poll", "epoll", "uring"}))
        ->capture_default_str();
    add_number(server, "--threads", o->threads, NumberKind::count, {1, 256},
               "threads of the pool model (default 4); event loops of the epoll model, each with "
               "its own SO_REUSEPORT listener (default 1)")
        ->capture_default_str();
    add_number(server, "--max-conns", o->max_conns, NumberKind::count, {1, std::size_t{1} << 24},
               "connections at once; the next is told and closed")
        ->capture_default_str();
    add_number(server, "--idle-timeout", o->idle_timeout, NumberKind::seconds, {0, kDay},
               "seconds without a byte before a connection is dropped (0 = never)")
        ->capture_default_str();
    add_number(server, "--high-water", o->high_water, NumberKind::size, {1, kMaxFrame},
               "bytes of replies queued per connection before reading from it pauses")
        ->capture_default_str();
    add_number(
        server, "--stalled-timeout", o->stalled_timeout, NumberKind::seconds, {kMillisecond, kDay},
        "seconds a connection may stay above the high-water mark (a client that never reads)")
        ->capture_default_str();
    add_number(
        server, "--drain-timeout", o->drain_timeout, NumberKind::seconds, {kMillisecond, kDay},
        "seconds the graceful stop may take (the default keeps a stop signal within a second)")
        ->capture_default_str();
    server->callback([o, &run] {
        check_transport(*o);
        const Framing framing = Framing::parse(o->framing);  // checked: fixed:N has a number
        if (framing.kind == Framing::Kind::fixed && framing.fixed_size > o->max_frame)
            throw CLI::ValidationError(
                "--framing", fmt::format("fixed:{} is above --max-frame {} (raise --max-frame)",
                                         framing.fixed_size, o->max_frame));
        if (o->udp && !(o->model == "iterative" || o->model == "select" || o->model == "poll" ||
                        o->model == "epoll"))
            throw CLI::ValidationError(
                "--model",
                "model " + o->model +
                    " serves stream sockets only; UDP takes iterative, select, poll or epoll");
        run = [o] { return run_echo_server(*o); };
    });

    CLI::App* client = add_role(cmd, "client",
                                "send each line of standard input as a message and print its echo; "
                                "or with --count, send generated messages and check every echo");
    client->add_option("host", o->host, "server host")->capture_default_str();
    add_endpoint_options(client, *o, true);
    add_number(client, "--count", o->count, NumberKind::count, {1, 100'000'000},
               "messages to send and check");
    add_number(client, "--size", o->size, NumberKind::size, {1, 64 * kMiB},
               "bytes per generated message")
        ->capture_default_str();
    add_number(client, "--timeout", o->timeout, NumberKind::seconds, {kMillisecond, kDay},
               "seconds to wait for each echo")
        ->capture_default_str();
    client->add_flag(
        "--retry", o->retry,
        "UDP: retransmit with backoff and request IDs (ferry's reliable request/response)");
    add_number(client, "--seed", o->seed, NumberKind::integer,
               {0, std::numeric_limits<std::uint32_t>::max()}, "seed for the generated messages")
        ->capture_default_str();
    client->callback([o, &run] {
        check_transport(*o);
        if (o->retry && !o->udp) throw CLI::ValidationError("--retry", "--retry needs -u (UDP)");
        const Framing framing = Framing::parse(o->framing);  // checked: fixed:N has a number
        if (o->count && !o->udp && framing.kind == Framing::Kind::fixed &&
            o->size > framing.fixed_size)
            throw CLI::ValidationError(
                "--size", fmt::format("messages of {} bytes do not fit --framing fixed:{}", o->size,
                                      framing.fixed_size));
        run = [o] { return run_echo_client(*o); };
    });
}

}  // namespace ferry::cli
