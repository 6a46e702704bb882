// ferry tcp-deadlock server|client: the program that shows two TCP peers
// blocking each other, plus a stall detector and a client that cannot deadlock.
#include <poll.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "common/progress.hpp"
#include "common/stop_signals.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {
namespace {

constexpr std::string_view kMessage = "capitalize this!";  // 16 bytes, repeated
constexpr std::size_t kServerChunk = 1024;                 // the textbook server's recv size
constexpr std::size_t kClientRead = 42;                    // the textbook client's recv size
constexpr std::size_t kBatch = 64 * 1024;                  // a multiple of 16

struct TcpDeadlockOptions {
    std::string host;
    std::string port = "1060";
    std::uint64_t bytecount = 0;
    std::optional<double> stall_timeout;
    bool no_deadlock = false;
};

std::string repeated_message() {
    std::string batch;
    batch.reserve(kBatch);
    while (batch.size() < kBatch)
        batch += kMessage;
    return batch;
}

void upper_case(char* data, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (data[i] >= 'a' && data[i] <= 'z') data[i] = static_cast<char>(data[i] - 'a' + 'A');
}

[[noreturn]] void stalled(double seconds_stalled, std::uint64_t sent, std::uint64_t total,
                          std::uint64_t received, const char* blocked_in) {
    throw Failure(fmt::format(
        "stalled for {} s: sent {} of {} bytes, received {} bytes; the client is blocked in {} "
        "while the server is blocked sending replies that nobody reads (deadlock)",
        seconds_text(seconds(seconds_stalled)), sent, total, received, blocked_in));
}

// --- server ---------------------------------------------------------------

/// Echoes upper-cased until the client's end of stream. The socket is
/// non-blocking and every wait also wakes for a stop signal, so Ctrl-C or
/// SIGTERM stops the server even in the middle of a deadlock.
void serve_one(Accepted& client, const TcpDeadlockOptions& o, const StopSignals& stop) {
    Socket& sc = client.socket;
    sc.set_blocking(false);
    say("Processing up to {} bytes at a time from {}", kServerChunk, client.peer.to_string());
    Progress progress("bytes processed so far");
    std::uint64_t n = 0;
    char data[kServerChunk];
    for (std::uint64_t chunks = 1;; ++chunks) {
        // While bytes flow no call blocks: look for a stop now and then.
        if (chunks % 1024 == 0 && stop.requested()) break;
        const auto got = sc.recv(data, sizeof data);
        if (!got) {
            if (stop.wait(sc, POLLIN) != StopSignals::Wake::ready) break;
            continue;
        }
        if (*got == 0) break;
        upper_case(data, *got);
        // --stall-timeout: the time one reply may wait for room to be sent.
        const Deadline deadline =
            o.stall_timeout ? Deadline(Clock::now() + seconds(*o.stall_timeout)) : std::nullopt;
        for (std::size_t sent = 0; sent < *got;) {
            if (const auto k = sc.send(data + sent, *got - sent)) {
                sent += *k;
                continue;
            }
            const auto wake = stop.wait(sc, POLLOUT, deadline);
            if (wake == StopSignals::Wake::stop) {
                progress.finish(n);
                return;
            }
            if (wake == StopSignals::Wake::timeout) {
                progress.finish(n);
                say("  Stalled: blocked for {} s sending replies the client does not read",
                    seconds_text(seconds(*o.stall_timeout)));
                return;
            }
        }
        n += *got;
        progress.update(n);
    }
    progress.finish(n);
}

int run_server(const TcpDeadlockOptions& o) {
    Socket sock = create_server(o.host, o.port, {});
    StopSignals stop;
    say("Listening at {}", sock.local_address().to_string());
    while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
        auto client = sock.accept();
        try {
            serve_one(*client, o, stop);
        } catch (const Error& e) {
            fmt::print(stderr, "ferry: {}\n", e.what());
        }
        client->socket.close();
        say("  Socket closed");
    }
    return 0;
}

// --- client ---------------------------------------------------------------

/// The textbook client: send everything, then read everything. Blocks for
/// good once both sides' buffers fill, unless --stall-timeout is given.
int run_blocking_client(Socket& sock, const TcpDeadlockOptions& o, std::uint64_t total) {
    const std::string batch = repeated_message();
    if (o.stall_timeout) sock.set_timeout(seconds(*o.stall_timeout));
    Progress sending("bytes sent");
    std::uint64_t sent = 0;
    while (sent < total) {
        // Any offset into the batch continues the stream of 16-byte messages.
        const std::size_t offset = static_cast<std::size_t>(sent % kBatch);
        const std::size_t want =
            static_cast<std::size_t>(std::min<std::uint64_t>(kBatch - offset, total - sent));
        try {
            sent += *sock.send(batch.data() + offset, want);
        } catch (const TimeoutError&) {
            sending.finish(sent);
            stalled(*o.stall_timeout, sent, total, 0, "send()");
        }
        sending.update(sent);
    }
    sending.finish(sent);
    sock.shutdown(Shutdown::write);

    say("Receiving all the data the server sends back");
    Progress receiving("bytes received");
    std::uint64_t received = 0;
    char data[kClientRead];
    for (;;) {
        std::size_t n = 0;
        try {
            n = *sock.recv(data, sizeof data);
        } catch (const TimeoutError&) {
            receiving.finish(received);
            stalled(*o.stall_timeout, sent, total, received, "recv()");
        }
        if (received == 0) say("  The first data received says {}", py_repr_bytes({data, n}));
        if (n == 0) break;
        received += n;
        receiving.update(received);
    }
    receiving.finish(received);
    return 0;
}

/// --no-deadlock: read while writing, so any byte count completes.
int run_interleaved_client(Socket& sock, const TcpDeadlockOptions& o, std::uint64_t total) {
    const std::string batch = repeated_message();
    sock.set_blocking(false);
    const Duration stall = o.stall_timeout ? seconds(*o.stall_timeout) : Duration::max();
    std::uint64_t sent = 0;
    std::uint64_t received = 0;
    bool write_closed = false;
    bool first = true;
    Progress progress("bytes received");
    std::string data(kBatch, '\0');
    if (total == 0) {
        sock.shutdown(Shutdown::write);
        write_closed = true;
    }
    say("Sending and receiving at once (--no-deadlock)");
    for (;;) {
        pollfd p{sock.fd(), static_cast<short>(POLLIN | (write_closed ? 0 : POLLOUT)), 0};
        const int timeout_ms =
            stall == Duration::max()
                ? -1
                : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(stall).count());
        const int rc = ::poll(&p, 1, timeout_ms);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) throw_errno("poll");
        if (rc == 0) stalled(*o.stall_timeout, sent, total, received, "poll()");
        if (!write_closed && (p.revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            const std::size_t offset = static_cast<std::size_t>(sent % kBatch);
            const std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(kBatch - offset, total - sent));
            if (const auto n = sock.send(batch.data() + offset, want)) sent += *n;
            if (sent == total) {
                sock.shutdown(Shutdown::write);
                write_closed = true;
            }
        }
        if ((p.revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            // The first read is the textbook's 42 bytes, so its line matches.
            const auto n = sock.recv(data.data(), first ? kClientRead : data.size());
            if (!n) continue;
            if (first) say("  The first data received says {}", py_repr_bytes({data.data(), *n}));
            first = false;
            if (*n == 0) break;
            received += *n;
            progress.update(received);
        }
    }
    say("  {} bytes sent", sent);
    progress.finish(received);
    if (received != total) throw Failure(fmt::format("received {} of {} bytes", received, total));
    return 0;
}

int run_client(const TcpDeadlockOptions& o) {
    const std::uint64_t total = (o.bytecount + 15) / 16 * 16;
    say("Sending {} bytes of data, in chunks of 16 bytes", total);
    Socket sock = create_connection(o.host, o.port, {});
    return o.no_deadlock ? run_interleaved_client(sock, o, total)
                         : run_blocking_client(sock, o, total);
}

}  // namespace

void add_tcp_deadlock(CLI::App& app, Runner& run) {
    auto o = std::make_shared<TcpDeadlockOptions>();
    CLI::App* cmd = app.add_subcommand(
        "tcp-deadlock",
        "A TCP client that sends everything before reading to a server that echoes upper-cased: "
        "with a large count both block. Example: ferry tcp-deadlock server 127.0.0.1 & ferry "
        "tcp-deadlock client 127.0.0.1 1073741824 --stall-timeout 2");
    cmd->require_subcommand(1);
    CLI::App* server = add_role(cmd, "server", "echo 1024-byte chunks back upper-cased");
    server->add_option("host", o->host, "interface to listen at")->required();
    add_port_option(server, o->port);
    add_number(server, "--stall-timeout", o->stall_timeout, NumberKind::seconds,
               {kMillisecond, kDay},
               "drop a client whose replies cannot be sent for this many seconds");
    server->callback([o, &run] { run = [o] { return run_server(*o); }; });

    CLI::App* client = add_role(cmd, "client", "send BYTECOUNT bytes, then read the replies");
    client->add_option("host", o->host, "host to connect to")->required();
    add_number(client, "bytecount", o->bytecount, NumberKind::size, {0, kTiB},
               "bytes to send (rounded up to a multiple of 16)")
        ->required();
    add_destination_port_option(client, o->port);
    add_number(client, "--stall-timeout", o->stall_timeout, NumberKind::seconds,
               {kMillisecond, kDay},
               "report a stall and exit 1 when no byte moves for this many seconds");
    client->add_flag("--no-deadlock", o->no_deadlock, "read while writing: any count completes");
    client->callback([o, &run] { run = [o] { return run_client(*o); }; });
}

}  // namespace ferry::cli
