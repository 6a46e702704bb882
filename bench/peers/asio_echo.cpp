// Asio echo peer for bench/compare: one io_context, one thread, a 64 KiB
// buffer per session (the shape that does best; the Asio example's 1 KiB
// buffer is selectable with a second argument for comparison).
// Usage: asio_echo PORT [BUFFER_BYTES]
#include <asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

using asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket socket, std::size_t size) : socket_(std::move(socket)), data_(size) {}
    void start() { read(); }

  private:
    void read() {
        auto self = shared_from_this();
        socket_.async_read_some(asio::buffer(data_),
                                [this, self](std::error_code ec, std::size_t n) {
                                    if (!ec) write(n);
                                });
    }
    void write(std::size_t n) {
        auto self = shared_from_this();
        asio::async_write(socket_, asio::buffer(data_, n),
                          [this, self](std::error_code ec, std::size_t) {
                              if (!ec) read();
                          });
    }
    tcp::socket socket_;
    std::vector<char> data_;
};

int main(int argc, char** argv) {
    const unsigned short port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
    const std::size_t size = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 65536;
    asio::io_context io;
    tcp::acceptor acceptor(io);
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(4096);
    std::printf("Listening at 127.0.0.1:%u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    std::function<void()> accept = [&] {
        acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
            if (!ec) {
                socket.set_option(tcp::no_delay(true));
                std::make_shared<Session>(std::move(socket), size)->start();
            }
            accept();
        });
    };
    accept();
    io.run();
}
