// A loopback round trip with the ferry library: the README's example, run by `make demo`.
#include <cstdio>
#include <thread>

#include "ferry/ferry.hpp"

int main() {
    // Port 0: the kernel picks a free port, and local_address() tells which.
    ferry::Socket server = ferry::create_server("127.0.0.1", "0");
    const ferry::Address where = server.local_address();
    std::printf("server listening on %s\n", where.to_string().c_str());

    std::thread echo([&server] {
        ferry::Accepted client = *server.accept();
        const std::string message = client.socket.recv_exact(16);
        client.socket.send_all(message);
    });

    ferry::ConnectOptions options;
    options.timeout = std::chrono::seconds(2);
    ferry::Socket client =
        ferry::create_connection(where.host(), std::to_string(where.port()), options);
    client.send_all("Hi there, server");
    std::printf("client %s got back: %s\n", client.local_address().to_string().c_str(),
                client.recv_exact(16).c_str());
    echo.join();
    return 0;
}
