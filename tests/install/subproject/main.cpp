// A program on the library alone, built as a subproject without liburing: a
// loopback round trip works, and the io_uring server model says it is not built
// in. Exits 0 only when both hold.
#include <cstdio>
#include <string>
#include <thread>

#include "ferry/ferry.hpp"
#include "ferry/server/stream_handler.hpp"
#include "ferry/server/stream_server.hpp"

namespace {

bool round_trip() {
    ferry::Socket server = ferry::create_server("127.0.0.1", "0");
    const ferry::Address where = server.local_address();
    std::thread echo([&server] {
        ferry::Accepted peer = *server.accept();
        peer.socket.send_all(peer.socket.recv_exact(5));
    });
    ferry::Socket client = ferry::create_connection(where.host(), std::to_string(where.port()));
    client.send_all("hello");
    const std::string back = client.recv_exact(5);
    echo.join();
    return back == "hello";
}

/// The uring model's answer in a library built without it.
std::string uring_failure() {
    const ferry::EchoHandler echo(ferry::Framing{}, 1024);
    ferry::StreamServer server(ferry::Address::ip("127.0.0.1", 0), ferry::Model::uring,
                               ferry::ServerLimits{}, echo);
    try {
        server.run();
    } catch (const ferry::Error& e) {
        return e.what();
    }
    return "run() returned";
}

}  // namespace

int main() {
    const bool echoed = round_trip();
    const std::string failure = uring_failure();
    std::printf("round trip: %s\nuring model: %s\n", echoed ? "ok" : "FAILED", failure.c_str());
    return echoed && failure.find("not built in") != std::string::npos ? 0 : 1;
}
