// ferry echo server -u: the datagram echo, every datagram one message, on a blocking loop or an
// event loop.
#include <memory>

#include "common/output.hpp"
#include "common/stop_signals.hpp"
#include "echo/echo.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "ferry/event_loop.hpp"

namespace ferry::cli {
namespace {

constexpr std::size_t kMaxDatagram = 65535;
constexpr int kDatagramsPerWakeup = 64;

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

}  // namespace

int run_udp_echo_server(const EchoOptions& o) {
    StopSignals stop;
    ServerOptions options;
    options.socktype = SOCK_DGRAM;
    Socket sock = create_server(o.host, o.port, options);
    sock.set_blocking(false);
    say("Listening at {} (model {}, UDP)", sock.local_address().to_string(), o.model);
    std::string buffer(kMaxDatagram, '\0');
    UdpCounters counters;

    if (o.model == "iterative") {
        while (stop.wait(sock, POLLIN) == StopSignals::Wake::ready) {
            try {
                echo_one(sock, buffer, o.max_frame, counters);
            } catch (const Error&) {
                // An ICMP error queued by an earlier sendto (port unreachable): not this datagram's
                // fault.
            }
        }
    } else {
        EventLoop loop(*parse_backend(o.model));
        loop.watch(stop.fd(), events::readable, [&](std::uint32_t) { loop.stop(); });
        loop.watch(sock.fd(), events::readable, [&](std::uint32_t) {
            for (int i = 0; i < kDatagramsPerWakeup; ++i) {
                try {
                    if (!echo_one(sock, buffer, o.max_frame, counters)) break;
                } catch (const Error&) {
                }
            }
        });
        loop.run();
        loop.unwatch(sock.fd());
        loop.unwatch(stop.fd());
    }
    say("Stopped: {} datagrams echoed ({} bytes), {} over the maximum dropped", counters.echoed,
        counters.bytes, counters.too_large);
    return 0;
}

}  // namespace ferry::cli
