// ferry multicast sender|receiver GROUP: IPv4 and IPv6 multicast, any-source or source-specific.
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "ferry/address.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {
namespace {

constexpr std::size_t kMaxBytes = 65535;
constexpr int kMaxDrained = 1024;

struct MulticastOptions {
    std::string group;
    std::string port = "1060";
    std::string interface;  // a name or an address; empty: the routing table's choice
    // receiver
    std::vector<std::string> sources;
    // sender
    std::string bind;  // the source address; empty: the kernel's choice
    std::string message = "Multicast datagram!";
    unsigned count = 1;
    int ttl = 1;
    bool loop = true;
    double interval = 1.0;
    // Filled in by check():
    Address group_address;
    std::vector<Address> source_addresses;
    std::optional<Address> bind_address;
    MulticastInterface on;
};

/// A numeric address, or a usage error that names the option it came from.
Address numeric(const std::string& text, const std::string& what) {
    try {
        return Address::ip(text, 0);
    } catch (const Error&) {
        throw CLI::ValidationError(
            fmt::format("{} '{}' is not a numeric IPv4 or IPv6 address", what, text));
    }
}

/// Link-local and interface-local IPv6 groups (ff02::/16, ff01::/16) exist only on
/// one link: their address means nothing without an interface, and the kernel
/// refuses to bind one without a scope (EINVAL).
bool needs_interface(const Address& group) {
    if (group.family() != AF_INET6) return false;
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, group.data(), sizeof sin6);
    return IN6_IS_ADDR_MC_LINKLOCAL(&sin6.sin6_addr) || IN6_IS_ADDR_MC_NODELOCAL(&sin6.sin6_addr);
}

/// Everything about the command line, before any socket is opened.
void check(MulticastOptions& o) {
    o.group_address = numeric(o.group, "GROUP");
    if (!is_multicast_group(o.group_address))
        throw CLI::ValidationError(fmt::format(
            "{} is not a multicast group (IPv4: 224.0.0.0/4, IPv6: ff00::/8)", o.group));
    o.group_address.set_port(parse_port(o.port, "udp"));

    o.source_addresses.clear();
    for (const std::string& text : o.sources) {
        const Address source = numeric(text, "--source");
        if (source.family() != o.group_address.family())
            throw CLI::ValidationError(fmt::format(
                "--source {} is not of the same family as the group {}", text, o.group));
        if (is_multicast_group(source))
            throw CLI::ValidationError(
                fmt::format("--source {} is a multicast group, not a sender's address", text));
        o.source_addresses.push_back(source);
    }

    o.bind_address.reset();
    if (!o.bind.empty()) {
        Address bind = numeric(o.bind, "--bind");
        if (bind.family() != o.group_address.family())
            throw CLI::ValidationError(fmt::format(
                "--bind {} is not of the same family as the group {}", o.bind, o.group));
        try {
            (void)MulticastInterface::with_address(bind).index();
        } catch (const Error&) {
            throw CLI::ValidationError(
                fmt::format("--bind {}: no interface of this host has that address", o.bind));
        }
        o.bind_address = bind;
    }

    o.on = MulticastInterface::parse(o.interface);
    if (!o.on.is_any()) {
        try {
            (void)o.on.index();
        } catch (const Error&) {
            throw CLI::ValidationError(
                o.on.ipv4_address() != nullptr || o.interface.find(':') != std::string::npos
                    ? fmt::format("--interface {}: no interface of this host has that address",
                                  o.interface)
                    : fmt::format("--interface {}: no such interface (ip link lists them)",
                                  o.interface));
        }
    } else if (needs_interface(o.group_address)) {
        throw CLI::ValidationError(fmt::format(
            "{} is a link-local group: say on which link with --interface NAME", o.group));
    }
}

/// The address the receiver binds: the group itself, so that datagrams sent to
/// the same port for other groups, or as unicast, do not reach it. A link-local
/// IPv6 group is bound with the interface as its scope.
Address receiver_address(const MulticastOptions& o) {
    if (!needs_interface(o.group_address)) return o.group_address;
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, o.group_address.data(), sizeof sin6);
    sin6.sin6_scope_id = o.on.index();
    return Address(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
}

int run_receiver(const MulticastOptions& o) {
    StopSignals stop;
    Socket sock(o.group_address.family(), SOCK_DGRAM);
    // Several receivers of one group on one host each bind the same group and port.
    sock.set_reuse_address(true);
    // Binding the group keeps other groups out. Linux would still hand this
    // socket the group arriving on an interface where only *other* sockets of
    // the host joined it (IP_MULTICAST_ALL defaults to 1, ip(7)).
    sock.set_multicast_all(false);
    sock.bind(receiver_address(o));
    if (o.source_addresses.empty()) {
        sock.join_group(o.group_address, o.on);
    } else {
        for (const Address& source : o.source_addresses)
            sock.join_source_group(o.group_address, source, o.on);
    }
    // Nothing to leave on the way out: closing the socket drops its memberships.
    say("Listening at {}", sock.local_address().to_string());
    std::string buffer(kMaxBytes, '\0');
    const auto print = [&buffer](const Received& got) {
        say("The client at {} says {}", got.from.to_string(),
            py_repr(std::string_view(buffer.data(), got.size)));
    };
    while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready)
        print(*sock.recvfrom(buffer.data(), buffer.size()));
    // What arrived before the stop is still printed (a sender that finished just
    // before the SIGTERM sees its datagrams reported), but only what is queued
    // now, and a bounded number, so that a flood cannot delay the exit.
    sock.set_blocking(false);
    for (int i = 0; i < kMaxDrained; ++i) {
        const auto got = sock.recvfrom(buffer.data(), buffer.size());
        if (!got) break;
        print(*got);
    }
    return 0;
}

int run_sender(const MulticastOptions& o) {
    Socket sock(o.group_address.family(), SOCK_DGRAM);
    if (o.bind_address) sock.bind(*o.bind_address);
    sock.set_multicast_ttl(o.ttl);
    sock.set_multicast_loop(o.loop);
    if (!o.on.is_any()) sock.set_multicast_interface(o.on);
    for (unsigned i = 0; i < o.count; ++i) {
        if (i > 0) std::this_thread::sleep_for(seconds(o.interval));
        sock.sendto(o.message, o.group_address);
        say("Sent {} to {}", py_repr(o.message), o.group_address.to_string());
    }
    return 0;
}

}  // namespace

void add_multicast(CLI::App& app, Runner& run) {
    auto o = std::make_shared<MulticastOptions>();
    CLI::App* cmd = app.add_subcommand(
        "multicast",
        "IP multicast, IPv4 and IPv6: the receiver joins GROUP (IP_ADD_MEMBERSHIP, "
        "IPV6_JOIN_GROUP; with --source, only that sender: IP_ADD_SOURCE_MEMBERSHIP, "
        "MCAST_JOIN_SOURCE_GROUP), binds GROUP:PORT with SO_REUSEADDR so several receivers of "
        "one host share the port, prints 'Listening at GROUP:PORT' once joined, then every "
        "datagram and its sender, until Ctrl-C or SIGTERM (exit 0). The sender sends --count "
        "datagrams to GROUP:PORT with the TTL, loopback and outgoing interface asked for.\n"
        "Without --interface the kernel picks the interface its routing table gives for the "
        "group (no route: 'No such device' / 'Network is unreachable'); link-local IPv6 "
        "groups (ff02::/16) always need --interface. Exit 2 on bad usage (a group that is not "
        "multicast, --ttl outside 0..255, an unknown interface), 1 on a run-time failure.\n"
        "Examples:\n"
        "  ferry multicast receiver 239.1.2.3 --interface eth0 &\n"
        "  ferry multicast sender 239.1.2.3 --interface eth0 --count 3 --interval 0.5\n"
        "  ferry multicast receiver 232.1.2.3 --source 10.0.0.7 --interface eth0   "
        "(source-specific)\n"
        "  ferry multicast sender 239.1.2.3 --ttl 0 --interface 10.0.0.1   (to this host's "
        "members; sent from 10.0.0.1)\n"
        "  ferry multicast receiver ff02::1:3 --interface eth0 -p 5000\n"
        "  ferry multicast sender ff0e::1:3 --interface eth0 --bind fd00::7 -p 5000\n"
        "  ferry multicast receiver 239.255.0.1 --interface lo -p 0 &   (on loopback alone)\n"
        "  ferry multicast sender 239.255.0.1 --interface lo -p PORT");
    cmd->require_subcommand(1);

    const auto common = [o](CLI::App* role, const std::string& interface_help) {
        role->add_option("group", o->group,
                         "multicast group: IPv4 224.0.0.0/4 (239.0.0.0/8 for local use, "
                         "232.0.0.0/8 source-specific) or IPv6 ff00::/8")
            ->type_name("GROUP")
            ->required();
        // The receiver binds the port (0: any); the sender sends to it.
        if (role->get_name() == "sender")
            add_destination_port_option(role, o->port);
        else
            add_port_option(role, o->port);
        role->add_option("-i,--interface", o->interface, interface_help)
            ->type_name("NAME_OR_ADDRESS");
    };

    CLI::App* receiver =
        add_role(cmd, "receiver", "join GROUP and print every datagram sent to it");
    common(receiver,
           "interface to join on: a name (eth0) or one of its addresses; default: the "
           "interface of the route to the group");
    receiver
        ->add_option("-s,--source", o->sources,
                     "source-specific: receive only what this address sends (repeat for "
                     "several sources)")
        ->type_name("ADDRESS");
    receiver->callback([o, &run] {
        check(*o);
        run = [o] { return run_receiver(*o); };
    });

    CLI::App* sender = add_role(cmd, "sender", "send datagrams to GROUP");
    common(sender,
           "interface to send by (IP_MULTICAST_IF, IPV6_MULTICAST_IF): a name, or one of its "
           "addresses (IPv4: also the source address); default: the route to the group");
    sender
        ->add_option("-b,--bind", o->bind,
                     "source address: bind the socket to this address of the host first "
                     "(with IPv6, the only way to choose the source)")
        ->type_name("ADDRESS");
    sender->add_option("-m,--message", o->message, "the text of each datagram")
        ->capture_default_str();
    add_number(sender, "-c,--count", o->count, NumberKind::count, {1, 1'000'000'000},
               "how many datagrams to send")
        ->capture_default_str();
    add_number(sender, "--ttl", o->ttl, NumberKind::count, {0, 255},
               "routers a datagram may cross (IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS): 1 keeps it "
               "on this network, 0 on this host, but Linux holds a TTL-0 datagram back only when "
               "this host has joined the group on that interface itself (IPv6: and --loop)")
        ->capture_default_str();
    sender->add_flag("--loop,!--no-loop", o->loop,
                     "whether members of the group on this host get a copy (IP_MULTICAST_LOOP; "
                     "default: on)");
    add_number(sender, "--interval", o->interval, NumberKind::seconds, {0, kDay},
               "seconds between datagrams")
        ->capture_default_str();
    sender->callback([o, &run] {
        check(*o);
        run = [o] { return run_sender(*o); };
    });
}

}  // namespace ferry::cli
