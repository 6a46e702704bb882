// The testkit's chaos servers: the table of behaviours and the set that runs them.
#include "ferry/testkit/chaos.hpp"

#include <array>
#include <cstring>

#include <fmt/core.h>

namespace ferry::testkit::chaos {
namespace {

constexpr std::array kBehaviours = {
    Behaviour{"reset", Transport::tcp, "accepts, then resets the connection (RST)"},
    Behaviour{"silent", Transport::tcp, "accepts, reads and discards, never answers"},
    Behaviour{"drip", Transport::tcp,
              "sends 'ferry chaos drip' lines forever, one byte every --delay ms"},
    Behaviour{"garbage", Transport::tcp,
              "sends random bytes (--seed) as fast as the client reads, endless unless --bytes"},
    Behaviour{"close", Transport::tcp, "accepts and closes at once (end of stream)"},
    Behaviour{"half", Transport::tcp,
              "answers one line, shuts down its sending side, reads until the client closes"},
    Behaviour{"http-html", Transport::tcp, "a well-formed HTTP/1.1 200 response, text/html"},
    Behaviour{"http-json", Transport::tcp, "a well-formed HTTP/1.1 200 response, application/json"},
    Behaviour{"http-nobody", Transport::tcp,
              "HTTP/1.1 headers with a Content-Length and no body; stays open"},
    Behaviour{"http-slow", Transport::tcp,
              "a valid HTTP/1.1 response, sent 16 bytes every --delay ms"},
    Behaviour{"udp-silent", Transport::udp, "reads datagrams, never answers"},
    Behaviour{"udp-late", Transport::udp, "echoes each datagram --late-ms late"},
    Behaviour{"udp-dup", Transport::udp, "echoes each datagram twice"},
    Behaviour{"udp-garbage", Transport::udp,
              "answers each datagram with as many random bytes (--seed)"},
    Behaviour{"udp-wrong-source", Transport::udp,
              "echoes each datagram from another socket, so from another port"},
};

long long milliseconds(Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

std::span<const Behaviour> behaviours() {
    return kBehaviours;
}

const Behaviour* find_behaviour(std::string_view name) {
    for (const Behaviour& b : kBehaviours)
        if (b.name == name) return &b;
    return nullptr;
}

namespace detail {

void warn(const Shared& shared, std::string_view text) {
    if (shared.settings.on_warning) shared.settings.on_warning(text);
}

std::string describe(const Behaviour& behaviour, const Settings& s) {
    const std::string_view name = behaviour.name;
    if (name == "drip")
        return fmt::format("sends 'ferry chaos drip' lines forever, one byte every {} ms",
                           milliseconds(s.delay));
    if (name == "garbage")
        return s.bytes ? fmt::format("sends {} random bytes, then end of stream", *s.bytes)
                       : std::string("sends random bytes as fast as the client reads, forever");
    if (name == "http-slow")
        return fmt::format("a valid HTTP/1.1 response, sent 16 bytes every {} ms",
                           milliseconds(s.delay));
    if (name == "http-nobody")
        return fmt::format("HTTP/1.1 headers with Content-Length: {} and no body; stays open",
                           kNoBodyLength);
    if (name == "udp-garbage") return "answers each datagram with as many random bytes";
    if (name == "udp-wrong-source") return "echoes each datagram from another socket";
    if (name == "udp-late")
        return fmt::format("echoes each datagram {} ms late", milliseconds(s.late));
    return std::string(behaviour.help);
}

RandomBytes::RandomBytes(std::uint64_t seed, std::uint64_t stream) {
    std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                      static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)};
    engine_.seed(seq);
}

void RandomBytes::fill(char* data, std::size_t size) {
    while (size > 0) {
        const std::uint64_t word = engine_();
        const std::size_t n = std::min(size, sizeof word);
        std::memcpy(data, &word, n);
        data += n;
        size -= n;
    }
}

}  // namespace detail

ServerSet::ServerSet(EventLoop& loop, const Settings& settings) : shared_{loop, settings} {}

// Servers go first: their connections unwatch themselves from the loop.
ServerSet::~ServerSet() {
    servers_.clear();
}

const Server& ServerSet::start(const Behaviour& behaviour, Socket bound) {
    servers_.push_back(behaviour.transport == Transport::tcp
                           ? detail::make_tcp_server(shared_, behaviour, std::move(bound))
                           : detail::make_udp_server(shared_, behaviour, std::move(bound)));
    return *servers_.back();
}

}  // namespace ferry::testkit::chaos
