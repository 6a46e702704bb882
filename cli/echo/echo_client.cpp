// ferry echo client: messages out, echoes back, each one checked.
#include <poll.h>

#include <random>
#include <vector>

#include "common/command.hpp"
#include "common/input_file.hpp"
#include "common/output.hpp"
#include "echo/echo.hpp"
#include "ferry/byte_order.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"
#include "ferry/framing.hpp"
#include "ferry/reliable_udp.hpp"
#include "ferry/server/message_io.hpp"

namespace ferry::cli {
namespace {

/// The bytes one message puts on the wire under `framing` (an echo returns the same bytes).
std::string encode(const Framing& framing, std::string_view message) {
    switch (framing.kind) {
        case Framing::Kind::raw:
            return std::string(message);
        case Framing::Kind::line:
            return std::string(message) + "\n";
        case Framing::Kind::fixed: {
            if (message.size() > framing.fixed_size)
                throw Failure(fmt::format("a message of {} bytes does not fit framing fixed:{}",
                                          message.size(), framing.fixed_size));
            std::string wire(message);
            wire.resize(framing.fixed_size, ' ');
            return wire;
        }
        case Framing::Kind::length:
            return encode_length_prefixed(message);
    }
    return {};
}

/// The message inside an echoed wire form, for printing.
std::string_view decode(const Framing& framing, std::string_view wire) {
    if (framing.kind == Framing::Kind::line) return wire.substr(0, wire.size() - 1);
    if (framing.kind == Framing::Kind::length) return wire.substr(4);
    return wire;
}

/// Runs `step`, in which the socket's own --timeout may pass: then a Failure
/// that says what did not happen in time ("no echo from 127.0.0.1:1060 within
/// 5 s"), where TimeoutError would read "Connection timed out", like an errno.
template <class Step>
auto within_timeout(const EchoOptions& o, const std::string& what_failed, Step&& step) {
    try {
        return step();
    } catch (const TimeoutError&) {
        throw Failure(fmt::format("{} within {} s (--timeout)", what_failed, o.timeout));
    }
}

std::string generated(std::mt19937& random, std::size_t size, bool printable) {
    std::string message(size, '\0');
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> letter('a', 'z');
    for (char& c : message)
        c = static_cast<char>(printable ? letter(random) : byte(random));
    return message;
}

/// Connects to the Unix socket of -U with `socktype`; a server of the other
/// type there answers EPROTOTYPE, which gets a hint about --seqpacket.
Socket connect_unix(const EchoOptions& o, int socktype) {
    Socket s(AF_UNIX, socktype);
    s.set_timeout(seconds(o.timeout));
    try {
        s.connect(Address::unix_path(o.unix_path));
    } catch (const Error& e) {
        if (e.code() != std::errc::wrong_protocol_type) throw;
        throw Failure(fmt::format("{} (the server there is not SOCK_{}: {} --seqpacket?)", e.what(),
                                  socktype_name(socktype),
                                  socktype == SOCK_STREAM ? "add" : "drop"));
    }
    return s;
}

Socket connect_stream(const EchoOptions& o) {
    if (!o.unix_path.empty()) return connect_unix(o, SOCK_STREAM);
    ConnectOptions connect;
    connect.timeout = seconds(o.timeout);
    connect.socktype = o.udp ? SOCK_DGRAM : SOCK_STREAM;
    return within_timeout(o, fmt::format("no connection to {} port {}", o.host, o.port),
                          [&] { return create_connection(o.host, o.port, connect); });
}

int run_stream_client(const EchoOptions& o, const Framing& framing) {
    Socket sock = connect_stream(o);
    const std::string server = o.unix_path.empty() ? sock.peer_address().to_string() : o.unix_path;
    // One message out, its echo back.
    const auto exchange = [&](const std::string& wire) {
        within_timeout(o, fmt::format("{} took no data (it does not read)", server),
                       [&] { sock.send_all(wire); });
        return within_timeout(o, "no echo from " + server,
                              [&] { return sock.recv_exact(wire.size()); });
    };
    if (!o.count) {
        std::string line;
        while (read_input_line(line)) {
            const std::string wire = encode(framing, line);
            say("{}", decode(framing, exchange(wire)));
        }
        return 0;
    }
    std::mt19937 random(o.seed);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < *o.count; ++i) {
        const std::string wire =
            encode(framing, generated(random, o.size, framing.kind == Framing::Kind::line));
        if (exchange(wire) != wire) ++wrong;
    }
    if (wrong != 0)
        throw Failure(fmt::format("{} of {} echoes differed from what was sent", wrong, *o.count));
    say("Echoed {} of {} messages correctly ({} bytes each, framing {})", *o.count, *o.count,
        o.size, framing.to_string());
    return 0;
}

/// One message's echo over SOCK_SEQPACKET: exactly one message back, of at
/// most `room` bytes (a longer one is Error(Errc::frame_too_large)); waits
/// until the socket's timeout. The server closing first is a Failure.
std::string receive_echo(Socket& sock, std::vector<char>& area, const std::string& server) {
    const Deadline deadline = sock.deadline_from_now();
    for (;;) {
        if (const IoResult n =
                recv_message(sock.fd(), area.data(), area.size(), "recv from " + server)) {
            if (*n == 0) throw Failure(fmt::format("{} closed the connection", server));
            return std::string(area.data(), *n);
        }
        if (!sock.wait(POLLIN, deadline)) throw TimeoutError("recv from " + server);
    }
}

/// --seqpacket: each message is one send, each echo one receive, and an echo
/// must be that message exactly: the kernel keeps the boundaries, so there is
/// no framing to add.
int run_message_client(const EchoOptions& o) {
    Socket sock = connect_unix(o, SOCK_SEQPACKET);
    const std::string server = o.unix_path;
    const auto send_one = [&](std::string_view message) {
        fit_send_buffer(sock.fd(), message.size());
        const IoResult n =
            within_timeout(o, fmt::format("{} took no message (it does not read)", server),
                           [&] { return sock.send(message); });
        // A message socket sends a message whole or not at all.
        if (!n || *n != message.size())
            throw Failure(fmt::format("send to {}: a {}-byte message was not sent whole", server,
                                      message.size()));
    };
    std::vector<char> area;
    if (!o.count) {
        std::string line;
        while (read_input_line(line)) {
            if (line.empty())
                throw Failure(
                    "an empty line cannot be sent over --seqpacket: an empty message reads as "
                    "end of stream");
            send_one(line);
            // Room for one byte more than was sent: a longer echo shows as longer.
            area.resize(line.size() + 1);
            say("{}", within_timeout(o, "no echo from " + server,
                                     [&] { return receive_echo(sock, area, server); }));
        }
        return 0;
    }
    std::mt19937 random(o.seed);
    area.resize(o.size + 1);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < *o.count; ++i) {
        const std::string message = generated(random, o.size, false);
        send_one(message);
        try {
            if (within_timeout(o, "no echo from " + server,
                               [&] { return receive_echo(sock, area, server); }) != message)
                ++wrong;
        } catch (const Error& e) {
            if (e.code() != make_error_code(Errc::frame_too_large)) throw;
            ++wrong;  // an echo longer than the message
        }
    }
    if (wrong != 0)
        throw Failure(
            fmt::format("{} of {} echoes were not exactly the message sent", wrong, *o.count));
    say("Echoed {} of {} messages correctly ({} bytes each, one message each way, seqpacket)",
        *o.count, *o.count, o.size);
    return 0;
}

int run_datagram_client(const EchoOptions& o) {
    ConnectOptions connect;
    connect.socktype = SOCK_DGRAM;
    Socket sock = create_connection(o.host, o.port, connect);
    const Address server = sock.peer_address();
    std::optional<ReliableUdpClient> reliable;
    std::uint64_t retransmissions = 0;
    if (o.retry) {
        RetryPolicy policy;
        policy.cap = std::chrono::seconds(1);
        policy.max_tries = 20;
        policy.budget = seconds(o.timeout);
        policy.request_ids = true;
        policy.adaptive = true;
        reliable.emplace(std::move(sock), server, policy);
    } else {
        sock.set_timeout(seconds(o.timeout));
    }
    std::string buffer(65535, '\0');
    // One request and its answer: the reliable client retries; the plain one
    // waits once and reports a loss as an empty answer.
    const auto exchange = [&](const std::string& payload) -> std::optional<std::string> {
        if (reliable)
            return reliable->request(payload, [&](const RetryEvent& e) {
                if (e.attempt > 1) ++retransmissions;
            });
        sock.send(payload);
        try {
            const std::size_t n = *sock.recv(buffer.data(), buffer.size());
            return buffer.substr(0, n);
        } catch (const TimeoutError&) {
            return std::nullopt;
        }
    };
    if (!o.count) {
        std::string line;
        while (read_input_line(line)) {
            const auto echo = exchange(line);
            if (!echo)
                throw Failure(
                    fmt::format("no echo from {} within {} s", server.to_string(), o.timeout));
            say("{}", *echo);
        }
        return 0;
    }
    std::mt19937 random(o.seed);
    std::size_t lost = 0;
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < *o.count; ++i) {
        const std::string payload = generated(random, o.size, false);
        const auto echo = exchange(payload);
        if (!echo)
            ++lost;
        else if (*echo != payload)
            ++wrong;
    }
    say("Echoed {} of {} datagrams correctly ({} bytes each), {} lost, {} wrong, {} "
        "retransmissions",
        *o.count - lost - wrong, *o.count, o.size, lost, wrong, retransmissions);
    if (wrong != 0) throw Failure(fmt::format("{} echoes differed from their request", wrong));
    return lost == 0 ? 0 : 1;
}

}  // namespace

int run_echo_client(const EchoOptions& o) {
    if (o.udp) return run_datagram_client(o);
    if (o.seqpacket) return run_message_client(o);
    return run_stream_client(o, Framing::parse(o.framing));
}

}  // namespace ferry::cli
