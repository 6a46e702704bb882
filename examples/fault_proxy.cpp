// Embedding ferry's fault proxy in a program or a test: an echo server of our own, a proxy
// in front of it, and latency added to, then removed from, a connection that stays open.
//
//     $ ./example_fault_proxy
//     echo server at 127.0.0.1:40123, proxy "echo" at 127.0.0.1:40124
//     round trip: 0.1 ms
//     with latency_downstream (200 ms): 200.4 ms
//     without it again: 0.1 ms
//     proxied 15 bytes each way
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "ferry/create.hpp"
#include "ferry/testkit/fault_proxy.hpp"

namespace {

double milliseconds(ferry::Duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

/// One round trip of `text` through `sock`, timed.
double round_trip(ferry::Socket& sock, const std::string& text) {
    const auto start = ferry::Clock::now();
    sock.send_all(text);
    sock.recv_exact(text.size());
    return milliseconds(ferry::Clock::now() - start);
}

}  // namespace

int main() {
    using ferry::testkit::FaultProxy;

    // The service under test: echoes one connection, on a thread of its own.
    ferry::Socket listener = ferry::create_server("127.0.0.1", "0");
    const std::string upstream = listener.local_address().to_string();
    std::thread echo([&listener] {
        ferry::Socket conn = std::move(listener.accept()->socket);
        char buf[4096];
        while (const auto n = conn.recv(buf, sizeof buf)) {
            if (*n == 0) break;
            conn.send_all(buf, *n);
        }
    });

    // The fault proxy, on its own thread; call() runs each change there.
    ferry::testkit::FaultProxyThread proxy;
    const auto state = proxy.call([&](FaultProxy& f) {
        return f.create({.name = "echo", .listen = "127.0.0.1:0", .upstream = upstream});
    });
    std::printf("echo server at %s, proxy \"%s\" at %s\n", upstream.c_str(),
                state.config.name.c_str(), state.config.listen.c_str());

    const auto colon = state.config.listen.rfind(':');
    ferry::Socket client = ferry::create_connection(state.config.listen.substr(0, colon),
                                                    state.config.listen.substr(colon + 1));
    std::printf("round trip: %.1f ms\n", round_trip(client, "hello"));

    const auto toxic = proxy.call([](FaultProxy& f) {
        return f.add_toxic("echo", ferry::testkit::parse_toxic("latency:down:latency=200"));
    });
    std::printf("with %s (%g ms): %.1f ms\n", toxic.name.c_str(), toxic.get("latency"),
                round_trip(client, "hello"));

    proxy.call([&](FaultProxy& f) { f.remove_toxic("echo", toxic.name); });
    std::printf("without it again: %.1f ms\n", round_trip(client, "hello"));

    client.shutdown(ferry::Shutdown::write);
    char eof = 0;
    client.recv(&eof, 1);  // the echo server saw the end and closed
    echo.join();
    const auto counters = proxy.call([](FaultProxy& f) { return f.get("echo").counters; });
    std::printf("proxied %llu bytes each way\n",
                static_cast<unsigned long long>(counters.bytes_up));
    return counters.bytes_up == 15 && counters.bytes_down == 15 ? 0 : 1;
}
