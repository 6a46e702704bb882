// ferry udp-remote server|client: a lossy UDP server, and a client that retries with backoff.
#include <cerrno>
#include <limits>
#include <memory>
#include <optional>
#include <random>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "ferry/reliable_udp.hpp"

namespace ferry::cli {
namespace {

constexpr std::size_t kMaxBytes = 65535;

struct UdpRemoteOptions {
    std::string host;
    std::string port = "1060";
    // server
    double drop = 0.5;
    std::optional<std::uint32_t> seed;
    // client: the textbook's numbers by default
    double initial_wait = 0.1;
    double factor = 2.0;
    double max_wait = 2.0;
    std::optional<double> cap;
    double jitter = 0.0;
    std::optional<unsigned> tries;
    std::optional<double> budget;
    bool adaptive = false;
    unsigned count = 1;
    // both
    bool request_ids = false;
};

int run_server(const UdpRemoteOptions& o) {
    ServerOptions server;
    server.socktype = SOCK_DGRAM;
    if (o.host.empty()) server.family = AF_INET;  // the textbook's '' is the IPv4 any-address
    Socket sock = create_server(o.host, o.port, server);
    StopSignals stop;
    std::mt19937 random(o.seed ? *o.seed : std::random_device{}());
    std::bernoulli_distribution dropped(o.drop);
    say("Listening at {}", sock.local_address().to_string());

    std::string buffer(kMaxBytes, '\0');
    while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
        const auto got = *sock.recvfrom(buffer.data(), buffer.size());
        if (dropped(random)) {
            say("Pretending to drop packet from {}", got.from.to_string());
            continue;
        }
        std::string_view data(buffer.data(), got.size);
        std::optional<std::uint32_t> id;
        if (o.request_ids) {
            const auto split = split_request_id(data);
            if (!split) {
                say("Ignoring a datagram without a request ID from {}", got.from.to_string());
                continue;
            }
            id = split->first;
            data = split->second;
        }
        say("The client at {} says {}", got.from.to_string(), py_repr(data));
        const std::string reply = fmt::format("Your data was {} bytes long", data.size());
        sock.sendto(id ? with_request_id(*id, reply) : reply, got.from);
    }
    return 0;
}

RetryPolicy retry_policy(const UdpRemoteOptions& o) {
    RetryPolicy policy;
    policy.initial_wait = seconds(o.initial_wait);
    policy.factor = o.factor;
    policy.max_wait = seconds(o.max_wait);
    if (o.cap) policy.cap = seconds(*o.cap);
    policy.jitter = o.jitter;
    policy.max_tries = o.tries;
    if (o.budget) policy.budget = seconds(*o.budget);
    policy.adaptive = o.adaptive;
    policy.request_ids = o.request_ids;
    if (o.seed) policy.seed = *o.seed;
    return policy;
}

int run_client(const UdpRemoteOptions& o) {
    const RetryPolicy policy = retry_policy(o);

    ConnectOptions connect;
    connect.socktype = SOCK_DGRAM;
    Socket sock = create_connection(o.host, o.port, connect);
    say("Client socket name is {}", sock.local_address().to_string());
    const Address server = sock.peer_address();
    ReliableUdpClient client(std::move(sock), server, policy);

    for (unsigned i = 0; i < o.count; ++i) {
        std::string reply;
        try {
            reply = client.request("This is another message", [](const RetryEvent& e) {
                say("Waiting up to {} seconds for a reply", seconds_text(e.wait));
            });
        } catch (const TimeoutError&) {
            throw Failure("I think the server is down");
        } catch (const Error& e) {
            if (e.code() != std::error_code(ECONNREFUSED, std::system_category())) throw;
            // The kernel turned an ICMP port-unreachable into an error on this connected socket.
            throw Failure(std::string(e.what()) + " (no server is listening on that UDP port)");
        }
        say("The server says {}", py_repr(reply));
    }
    if (o.adaptive && client.rtt().has_samples())
        say("Smoothed round trip {} s, variation {} s, next first wait {} s",
            seconds_text(client.rtt().srtt()), seconds_text(client.rtt().rttvar()),
            seconds_text(client.rtt().rto()));
    return 0;
}

}  // namespace

void add_udp_remote(CLI::App& app, Runner& run) {
    auto o = std::make_shared<UdpRemoteOptions>();
    CLI::App* cmd = app.add_subcommand(
        "udp-remote",
        "UDP server that pretends to drop datagrams, and a client that retransmits with "
        "exponential "
        "backoff. Example: ferry udp-remote server --drop 0.5 & ferry udp-remote client 127.0.0.1");
    cmd->require_subcommand(1);

    CLI::App* server = add_role(cmd, "server", "answer datagrams, pretending to drop some");
    server->add_option("interface", o->host, "address to bind (default: every IPv4 interface)");
    add_port_option(server, o->port);
    add_number(server, "--drop", o->drop, NumberKind::probability, {0, 1},
               "chance of pretending to drop each datagram")
        ->capture_default_str();
    add_number(server, "--seed", o->seed, NumberKind::integer,
               {0, std::numeric_limits<std::uint32_t>::max()},
               "seed for the drops (reproducible runs)");
    server->add_flag("--request-ids", o->request_ids,
                     "expect a 4-byte request ID before each datagram and echo it in the reply");
    server->callback([o, &run] { run = [o] { return run_server(*o); }; });

    CLI::App* client =
        add_role(cmd, "client", "send a datagram, retrying with backoff until answered");
    client->add_option("host", o->host, "server host name or address")->required();
    add_destination_port_option(client, o->port);
    add_number(client, "--initial-wait", o->initial_wait, NumberKind::seconds, {kMillisecond, kDay},
               "seconds to wait for the first reply")
        ->capture_default_str();
    add_number(client, "--factor", o->factor, NumberKind::factor, {1, 100},
               "the wait is multiplied by this after each silence")
        ->capture_default_str();
    add_number(client, "--max-wait", o->max_wait, NumberKind::seconds, {kMillisecond, kDay},
               "give up once the next wait would exceed this")
        ->capture_default_str();
    add_number(client, "--cap", o->cap, NumberKind::seconds, {kMillisecond, kDay},
               "cap each wait at this many seconds (then --tries or --budget ends it)");
    add_number(client, "--jitter", o->jitter, NumberKind::fraction, {0, 0.99},
               "randomise each wait by +/- this fraction (0..1)")
        ->capture_default_str();
    add_number(client, "--tries", o->tries, NumberKind::count, {1, 255},
               "give up after this many sends (1..255)");
    add_number(client, "--budget", o->budget, NumberKind::seconds, {kMillisecond, kDay},
               "give up after this many seconds in all");
    client->add_flag("--adaptive", o->adaptive,
                     "start each request's wait from the measured round trips (RFC 6298)");
    client->add_flag("--request-ids", o->request_ids,
                     "prefix a 4-byte request ID (the server must run with --request-ids)");
    add_number(client, "--count", o->count, NumberKind::count, {1, 1'000'000},
               "number of requests, one after another")
        ->capture_default_str();
    add_number(client, "--seed", o->seed, NumberKind::integer,
               {0, std::numeric_limits<std::uint32_t>::max()}, "seed for the jitter");
    client->callback([o, &run] {
        try {
            retry_policy(*o)
                .validate();  // a bad combination is a usage error, found before any socket
        } catch (const Error& e) {
            throw CLI::ValidationError(e.what());
        }
        run = [o] { return run_client(*o); };
    });
}

}  // namespace ferry::cli
