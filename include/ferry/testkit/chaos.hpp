// ferry/testkit/chaos.hpp: deliberately misbehaving TCP and UDP servers (resets, silence, one
// byte at a time, random bytes, broken HTTP, late or duplicated UDP echoes) on one EventLoop,
// for testing how a client copes. `ferry chaos` is this plus a command line.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/event_loop.hpp"
#include "ferry/fd.hpp"
#include "ferry/socket.hpp"

/// The chaos servers: deliberately misbehaving TCP and UDP servers for testing clients.
namespace ferry::testkit::chaos {

/// What the servers of one ServerSet share.
struct Settings {
    Duration delay = std::chrono::milliseconds(100);  ///< drip: between bytes; http-slow: chunks
    std::optional<std::uint64_t> bytes;  ///< garbage: bytes per connection (none: endless)
    Duration late = std::chrono::milliseconds(500);  ///< udp-late: how late each echo is
    std::size_t max_conns = 1000;                    ///< each TCP server, at once
    std::uint64_t seed = 0;                          ///< for the random bytes
    /// Told what went wrong that a client did not cause (an accept failure, a
    /// refused connection over max_conns; out of descriptors, at most one line
    /// a second with the count of connections refused, see ferry::Acceptor),
    /// one line at a time; the servers keep running. Unset: nothing is said.
    std::function<void(std::string_view)> on_warning;
};

/// Whether a behaviour serves TCP connections or UDP datagrams.
enum class Transport { tcp, udp };

/// One misbehaviour: its name on the command line and what it does.
struct Behaviour {
    /// Its name on the command line: `reset`, `drip`, `udp-late`, ...
    std::string_view name;
    /// TCP or UDP.
    Transport transport;
    std::string_view help;  ///< for --help, in terms of the options
};

/// Every behaviour, in the order of their ports.
std::span<const Behaviour> behaviours();
/// nullptr when there is no behaviour of that name.
const Behaviour* find_behaviour(std::string_view name);

/// A running server: owns its sockets and every connection it accepted.
/// Destroying it closes all of them and cancels its timers (the loop must
/// outlive it).
class Server {
  public:
    virtual ~Server() = default;
    /// Where it listens (the port the kernel chose for port 0).
    [[nodiscard]] virtual Address address() const = 0;
    /// What it does with these settings, for the startup line.
    [[nodiscard]] virtual std::string description() const = 0;
};

namespace detail {

/// The body length http-nobody announces (and never sends).
inline constexpr std::size_t kNoBodyLength = 1024;

/// What every server of one run shares.
struct Shared {
    EventLoop& loop;
    Settings settings;
    std::uint64_t streams = 0;  ///< random streams handed out so far
};

std::unique_ptr<Server> make_tcp_server(Shared& shared, const Behaviour& behaviour,
                                        Socket listener);
std::unique_ptr<Server> make_udp_server(Shared& shared, const Behaviour& behaviour, Socket bound);

/// Passes one warning line to the settings' on_warning, if set.
void warn(const Shared& shared, std::string_view text);

/// The startup line's text for `behaviour` with these settings.
std::string describe(const Behaviour& behaviour, const Settings& settings);

/// Pseudo-random bytes: one generator per stream (a garbage connection, the
/// udp-garbage server), seeded from --seed and the stream's number, so two
/// runs with the same seed send the same bytes, connection for connection.
class RandomBytes {
  public:
    RandomBytes(std::uint64_t seed, std::uint64_t stream);
    void fill(char* data, std::size_t size);

  private:
    std::mt19937_64 engine_;
};

}  // namespace detail

/// A set of chaos servers on one loop, e.g. in a test:
///
///     ferry::EventLoop loop;
///     ferry::testkit::chaos::ServerSet servers(loop, {});
///     auto& drip = servers.start(*find_behaviour("drip"), ferry::create_server("127.0.0.1", "0"));
///     // connect to drip.address(), run the loop on a thread of its own ...
///
/// Errors: start() throws ferry::Error when a server cannot watch its socket.
/// Thread-safety: none; everything runs on the loop's thread.
class ServerSet {
  public:
    /// Servers on `loop` (which must outlive the set), sharing `settings`.
    ServerSet(EventLoop& loop, const Settings& settings);
    ~ServerSet();
    ServerSet(const ServerSet&) = delete;
    ServerSet& operator=(const ServerSet&) = delete;

    /// Starts `behaviour` on `bound`: a listening stream socket for a TCP
    /// behaviour, a bound datagram socket for a UDP one.
    const Server& start(const Behaviour& behaviour, Socket bound);

  private:
    detail::Shared shared_;
    std::vector<std::unique_ptr<Server>> servers_;
};

}  // namespace ferry::testkit::chaos
