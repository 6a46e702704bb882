// ferry echo server -u: the datagram echo, every datagram one message, on a blocking loop or an
// event loop.
//
// The event-loop models answer in batches: one recvmmsg takes every datagram waiting (up to
// kBatchSize) and one sendmmsg sends them back from the same buffers. While datagrams keep
// coming the loop does not go back to epoll_wait: the next receive waits, inside the kernel, up
// to kLinger for the next datagram (SO_RCVTIMEO on a blocking socket), so a client on this host
// that sends again as soon as it is answered costs two system calls per datagram, and several
// clients share them. Only a receive that finds nothing within kLinger, or the end of a
// kStint of answering, returns to the loop.
#include <sys/time.h>

#include <cerrno>

#include <chrono>
#include <memory>
#include <system_error>

#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "echo/echo.hpp"
#include "ferry/create.hpp"
#include "ferry/datagram_batch.hpp"
#include "ferry/error.hpp"
#include "ferry/event_loop.hpp"
#include "ferry/time.hpp"

namespace ferry::cli {
namespace {

constexpr std::size_t kMaxDatagram = 65535;
constexpr std::size_t kBatchSize = 64;
// How long a receive waits for the next datagram before the loop goes back to epoll_wait: a
// round trip on this host takes tens of microseconds, so a flow that keeps sending is caught;
// an idle socket costs one wait of this length once.
constexpr std::chrono::microseconds kLinger{1000};
// How long one wakeup may go on answering before the loop looks at its other descriptors (the
// stop signal) again. Bounded by time, not by a count of batches: a lone client's batches are
// one datagram each, and a count of them would cost it an epoll_wait every few hundred
// microseconds; this costs one in about a thousand datagrams and delays a stop by 50 ms (plus
// one linger) at most.
constexpr std::chrono::milliseconds kStint{50};

struct UdpCounters {
    std::uint64_t echoed = 0;
    std::uint64_t too_large = 0;
    std::uint64_t bytes = 0;
};

/// Echoes one waiting datagram; false when none was waiting.
bool echo_one(Socket& sock, std::string& buffer, std::size_t max_frame, UdpCounters& counters) {
    const auto got = sock.recvfrom(buffer.data(), buffer.size());
    if (!got) return false;
    if (got->size > max_frame) {
        ++counters.too_large;
        return true;
    }
    // A full send buffer drops the echo, as the network could have: UDP promises no more.
    sock.sendto(buffer.data(), got->size, got->from, MSG_DONTWAIT);
    ++counters.echoed;
    counters.bytes += got->size;
    return true;
}

bool nothing_came(const std::error_code& ec) {
    // Socket's codes are errno values in the system category, compared as such: comparing with
    // std::errc goes through the category's virtual equivalent(), and this runs per batch.
    if (ec.category() != std::system_category()) return false;
    const int e = ec.value();
    return e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT;
}

/// Sends a received batch back to its senders in place, but for the datagrams over the maximum.
void echo_batch(Socket& sock, DatagramBatch& batch, std::size_t max_frame, UdpCounters& counters) {
    for (std::size_t i = 0; i < batch.size();) {
        if (batch.truncated(i) || batch.datagram(i).size() > max_frame) {
            ++counters.too_large;
            batch.erase(i);
        } else {
            ++i;
        }
    }
    std::size_t next = 0;
    while (next < batch.size()) {
        std::error_code ec;
        const std::size_t sent = sock.sendmmsg(batch, next, MSG_DONTWAIT, ec);
        // A full send buffer drops the rest, as the network could have: UDP promises no more.
        if (nothing_came(ec)) return;
        if (ec) {
            // This datagram's send failed (an ICMP error queued by an earlier one): skip it.
            ++next;
            continue;
        }
        for (std::size_t i = next; i < next + sent; ++i) {
            ++counters.echoed;
            counters.bytes += batch.datagram(i).size();
        }
        next += sent;
    }
}

/// Answers batches until none comes within kLinger, or for kStint.
void echo_while_busy(Socket& sock, DatagramBatch& batch, std::size_t max_frame,
                     UdpCounters& counters) {
    const auto until = Clock::now() + kStint;
    // The clock is read every kClockEvery batches: a batch takes microseconds, the stint 50 ms.
    constexpr unsigned kClockEvery = 16;
    for (unsigned round = 0; round == 0 || round % kClockEvery != 0 || Clock::now() < until;
         ++round) {
        const bool first = round == 0;
        std::error_code ec;
        // The first receive takes what woke the loop; the next ones linger for more.
        sock.recvmmsg(batch, first ? MSG_DONTWAIT : 0, ec);
        if (nothing_came(ec)) return;
        if (ec) continue;  // an error queued by an earlier send: not this datagram's fault
        echo_batch(sock, batch, max_frame, counters);
    }
}

}  // namespace

int run_udp_echo_server(const EchoOptions& o) {
    StopSignals stop;
    ServerOptions options;
    options.socktype = SOCK_DGRAM;
    Socket sock = create_server(o.host, o.port, options);
    sock.set_blocking(false);
    say("Listening at {} (model {}, UDP)", sock.local_address().to_string(), o.model);
    UdpCounters counters;

    if (o.model == "iterative") {
        std::string buffer(kMaxDatagram, '\0');
        while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
            try {
                echo_one(sock, buffer, o.max_frame, counters);
            } catch (const Error&) {
                // An ICMP error queued by an earlier sendto (port unreachable): not this datagram's
                // fault.
            }
        }
    } else {
        // Blocking, so that a receive without MSG_DONTWAIT lingers up to SO_RCVTIMEO.
        sock.set_blocking(true);
        const auto linger_us = static_cast<suseconds_t>(kLinger.count());
        sock.set_option(SOL_SOCKET, SO_RCVTIMEO, timeval{0, linger_us});
        DatagramBatch batch(kBatchSize, kMaxDatagram);
        EventLoop loop(*parse_backend(o.model));
        loop.watch(stop.fd(), events::readable, [&](std::uint32_t) { loop.stop(); });
        loop.watch(sock.fd(), events::readable,
                   [&](std::uint32_t) { echo_while_busy(sock, batch, o.max_frame, counters); });
        loop.run();
        loop.unwatch(sock.fd());
        loop.unwatch(stop.fd());
    }
    say("Stopped: {} datagrams echoed ({} bytes), {} over the maximum dropped", counters.echoed,
        counters.bytes, counters.too_large);
    return 0;
}

}  // namespace ferry::cli
