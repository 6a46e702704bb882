// ferry ping HOST: ICMP echo like iputils ping (same lines, same summary, numeric addresses as
// with `ping -n`), over the unprivileged ICMP datagram socket where the kernel allows it and a
// raw socket otherwise (ferry/icmp.hpp). One request per interval; replies are matched by
// sequence (and, on a raw socket, which sees every ICMP message of the host, by identifier).
#include <poll.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>

#include "common/command.hpp"
#include "common/numbers.hpp"
#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "ferry/address.hpp"
#include "ferry/error.hpp"
#include "ferry/icmp.hpp"
#include "ping/ping_stats.hpp"

namespace ferry::cli {
namespace {

using icmp::Mode;

constexpr std::size_t kTimestamp = sizeof(timeval);  // iputils puts its send time first
constexpr std::size_t kMaxSize4 = 65507;             // 65535 - 20 (IPv4) - 8 (ICMP)
constexpr std::size_t kMaxSize6 = 65527;             // 65535 - 8 (ICMPv6); no header in the length

struct PingOptions {
    std::string host;
    std::optional<std::uint64_t> count;
    double interval = 1.0;
    std::size_t size = 56;
    double wait = 10.0;
    std::optional<int> ttl;
    bool ipv4 = false;
    bool ipv6 = false;
    std::string mode;  // "", "datagram" or "raw"
    bool quiet = false;
    bool json = false;
};

/// The payload: iputils' layout, the send time then bytes counting up from 8.
std::string payload(std::size_t size) {
    std::string data(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        data[i] = static_cast<char>(i + (size >= kTimestamp ? 0 : 8));
    if (size >= kTimestamp) {
        timeval now{};
        ::gettimeofday(&now, nullptr);
        std::memcpy(data.data(), &now, sizeof now);
    }
    return data;
}

class Pinger {
  public:
    Pinger(const PingOptions& o, Address target, Socket sock, Mode mode)
        : o_(o), target_(std::move(target)), sock_(std::move(sock)), mode_(mode) {
        family_ = target_.family();
        // The raw socket sees every echo reply of the host: ours carry this identifier.
        // (A datagram socket's identifier is its port, set and filtered by the kernel.)
        id_ =
            static_cast<std::uint16_t>(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
        if (o_.ttl) {
            if (family_ == AF_INET6)
                sock_.set_option<int>(IPPROTO_IPV6, IPV6_UNICAST_HOPS, *o_.ttl);
            else
                sock_.set_option<int>(IPPROTO_IP, IP_TTL, *o_.ttl);
        }
        sock_.set_timeout(Duration::zero());
    }

    int run() {
        const std::string address = target_.host();
        if (!o_.json) {
            if (family_ == AF_INET6)
                say("PING {}({}) {} data bytes", o_.host, address, o_.size);
            else
                say("PING {} ({}) {}({}) bytes of data.", o_.host, address, o_.size, o_.size + 28);
        }
        start_ = Clock::now();
        last_event_ = start_;
        auto next_send = start_;
        std::optional<Clock::time_point> linger_until;
        for (;;) {
            const auto now = Clock::now();
            const bool all_sent = o_.count && stats_.transmitted() >= *o_.count;
            if (!all_sent && now >= next_send) {
                send_one();
                next_send += seconds(o_.interval);
                if (o_.count && stats_.transmitted() >= *o_.count)
                    linger_until = Clock::now() + seconds(o_.wait);
                continue;
            }
            if (all_sent && (everything_answered() || now >= *linger_until)) break;
            const auto until = all_sent ? *linger_until : next_send;
            const auto wait = std::max(Duration::zero(), until - now);
            const auto wake = wait_for_input(wait);
            if (wake == Wake::stop) break;
            if (wake == Wake::ready) receive_all();
        }
        const Duration elapsed = last_event_ - start_;
        if (o_.json) {
            say("{}", stats_.json(o_.host, address, icmp::mode_name(mode_), elapsed));
        } else {
            say("");
            say("--- {} ping statistics ---", o_.host);
            say("{}", stats_.summary_line(elapsed));
            // Without round trips iputils ends with an empty line where the rtt line would be.
            const auto rtt = stats_.rtt_line();
            say("{}", rtt.value_or(""));
        }
        return stats_.replies() > 0 ? 0 : 1;
    }

  private:
    enum class Wake { ready, stop, timeout };

    Wake wait_for_input(Duration wait) {
        pollfd fds[2] = {{sock_.fd(), POLLIN, 0}, {stop_.fd(), POLLIN, 0}};
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
        const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(ms, 60'000)));
        if (n < 0) {
            if (errno == EINTR) return Wake::timeout;
            throw_errno("poll");
        }
        if (fds[1].revents != 0) return Wake::stop;
        return fds[0].revents != 0 ? Wake::ready : Wake::timeout;
    }

    void send_one() {
        const auto sequence = static_cast<std::uint16_t>(stats_.transmitted() + 1);
        const std::string packet = icmp::echo_request(family_, id_, sequence, payload(o_.size));
        sent_at_[sequence] = Clock::now();
        last_event_ = sent_at_[sequence];
        stats_.sent();
        try {
            sock_.sendto(packet, target_);
        } catch (const Error& e) {
            // As ping: say it, count the request as lost, go on with the next one.
            std::fprintf(stderr, "ferry ping: %s\n", e.what());
        }
    }

    bool everything_answered() const {
        for (const auto& [sequence, at] : sent_at_)
            if (!stats_.answered(sequence)) return false;
        return true;
    }

    void receive_all() {
        while (const auto got = icmp::receive_reply(sock_, family_, mode_)) {
            if (got->kind == icmp::Received::Kind::other) continue;
            const icmp::EchoReply& r = got->reply;
            if (mode_ == Mode::raw && r.id != id_) continue;  // another ping's
            if (family_ == AF_INET6 || mode_ == Mode::raw)
                if (r.from.host() != target_.host()) continue;
            const auto sent = sent_at_.find(r.sequence);
            if (sent == sent_at_.end()) continue;  // nothing we sent
            if (got->kind == icmp::Received::Kind::bad_checksum) {
                if (!o_.json && !o_.quiet)
                    say("From {} icmp_seq={}: bad checksum, not counted", r.from.host(),
                        r.sequence);
                continue;
            }
            const auto now = Clock::now();
            last_event_ = now;
            const bool timed = o_.size >= kTimestamp;
            const bool first = stats_.received(
                r.sequence, timed ? std::optional<Duration>(now - sent->second) : std::nullopt);
            if (o_.json || o_.quiet) continue;
            std::string line = fmt::format("{} bytes from {}: icmp_seq={}", r.icmp_size,
                                           r.from.host(), r.sequence);
            if (r.ttl) line += fmt::format(" ttl={}", *r.ttl);
            if (timed) line += " time=" + ping::trip_time_text(now - sent->second);
            if (!first) line += " (DUP!)";
            say("{}", line);
        }
    }

    const PingOptions& o_;
    Address target_;
    Socket sock_;
    Mode mode_;
    int family_ = AF_INET;
    std::uint16_t id_ = 0;
    StopSignals stop_;
    ping::Stats stats_;
    std::map<std::uint16_t, Clock::time_point> sent_at_;
    Clock::time_point start_, last_event_;
};

int run_ping(const PingOptions& o) {
    ResolveHints hints;
    hints.family = o.ipv4 ? AF_INET : o.ipv6 ? AF_INET6 : AF_UNSPEC;
    hints.socktype = SOCK_DGRAM;  // any one type: only the address is used
    Address target = resolve(o.host, "0", hints).front().address;
    if (target.family() == AF_INET6 && o.size > kMaxSize6)
        throw CLI::ValidationError(fmt::format("-s {}: at most {} for IPv6", o.size, kMaxSize6));
    Mode mode = Mode::datagram;
    std::optional<Mode> wanted;
    if (o.mode == "datagram") wanted = Mode::datagram;
    if (o.mode == "raw") wanted = Mode::raw;
    Socket sock = icmp::open_socket(target.family(), wanted, mode);
    Pinger pinger(o, std::move(target), std::move(sock), mode);
    return pinger.run();
}

}  // namespace

void add_ping(CLI::App& app, Runner& run) {
    auto o = std::make_shared<PingOptions>();
    CLI::App* cmd = app.add_subcommand(
        "ping",
        "ICMP echo, like iputils ping (ping -n: addresses are never looked up backwards), over "
        "the unprivileged ICMP datagram socket when net.ipv4.ping_group_range allows it, else a "
        "raw socket (root). Example: ferry ping -c 3 127.0.0.1");
    cmd->add_option("host", o->host, "host name or address to ping")->required();
    add_number(cmd, "-c,--count", o->count, NumberKind::count, {1, 65535},
               "stop after this many requests (default: until Ctrl-C)");
    add_number(cmd, "-i,--interval", o->interval, NumberKind::seconds, {0.002, kHour},
               "seconds between requests (at least 0.002)")
        ->capture_default_str();
    add_number(cmd, "-s,--size", o->size, NumberKind::size, {0, kMaxSize4},
               "payload bytes (ICMP data; 16 or more carry a time)")
        ->capture_default_str();
    add_number(cmd, "-W,--timeout", o->wait, NumberKind::seconds, {kMillisecond, kHour},
               "seconds to wait for the replies still missing after the last request")
        ->capture_default_str();
    add_number(cmd, "-t,--ttl", o->ttl, NumberKind::count, {1, 255},
               "IP time to live (IPv6: hop limit) of the requests");
    auto* v4 = cmd->add_flag("-4", o->ipv4, "IPv4 only");
    cmd->add_flag("-6", o->ipv6, "IPv6 only")->excludes(v4);
    cmd->add_option("--mode", o->mode,
                    "datagram (unprivileged ICMP socket) or raw (CAP_NET_RAW); default: datagram "
                    "where permitted, else raw")
        ->check(CLI::IsMember({"datagram", "raw"}));
    cmd->add_flag("-q,--quiet", o->quiet, "print only the first line and the summary");
    cmd->add_flag("--json", o->json, "print only the summary, as one JSON object");
    cmd->footer(
        "Output as iputils ping's: one line per reply (bytes, from, icmp_seq, ttl, time; (DUP!) "
        "for a duplicate), then the summary (transmitted, received, duplicates, loss, rtt "
        "min/avg/max/mdev). A reply whose checksum is wrong is reported and not counted. Exit 0 "
        "when any reply came, 1 when none did or on a run-time error, 2 on a usage error.\n"
        "Examples:\n"
        "  ferry ping -c 3 -i 0.2 127.0.0.1\n"
        "  ferry ping -6 -c 1 ::1 --mode raw\n"
        "  ferry ping -c 100 -i 0.01 -q 10.0.0.2 --json");
    cmd->callback([o, &run] { run = [o] { return run_ping(*o); }; });
}

}  // namespace ferry::cli
