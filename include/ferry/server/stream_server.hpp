// ferry/server/stream_server.hpp: one stream service (TCP or Unix; Unix SOCK_SEQPACKET for
// messages) run by any of eight server models.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "ferry/address.hpp"
#include "ferry/fd.hpp"
#include "ferry/server/stream_handler.hpp"

namespace ferry {

/// The ways a server can serve many clients (the textbook's three and their descendants).
enum class Model {
    iterative,  ///< one client at a time, start to finish
    thread,     ///< a thread per client
    pool,       ///< a fixed pool of threads, clients queue for one
    /// A process per client. The child goes on running the handler after fork(),
    /// so other threads of the process must hold no lock (the allocator's, stdio's)
    /// while run() accepts: start them, and let them settle, before run().
    fork,
    select,  ///< one thread multiplexing non-blocking sockets with select(2)
    poll,    ///< ... with poll(2)
    epoll,   ///< ... with epoll(7); with threads > 1, one loop per thread (SO_REUSEPORT)
    uring,   ///< io_uring (liburing): completions instead of readiness
};
/// "iterative", "thread", "pool", "fork", "select", "poll", "epoll" or "uring".
std::string_view model_name(Model model);
/// The Model model_name() names; nullopt for any other text.
std::optional<Model> parse_model(std::string_view name);

/// The bounds that keep one client from taking the server's memory or time.
struct ServerLimits {
    std::size_t max_connections =
        10000;  ///< the next one is told (StreamHandler::refusal) and closed
    std::optional<Duration> idle_timeout = std::chrono::seconds(300);  ///< no byte either way
    std::size_t output_high_water = 1
                                    << 20;  ///< reading pauses while more than this waits to go out
    /// A connection whose output stays above the high-water mark this long is
    /// dropped: a client that sends but never reads.
    Duration stalled_timeout = std::chrono::seconds(10);
    Duration drain_timeout = std::chrono::seconds(5);  ///< bound on the graceful stop
    unsigned threads = 4;                ///< pool size; loops for epoll (1 = a single loop)
    unsigned max_reads_per_wakeup = 16;  ///< fairness: one busy peer cannot starve the rest
    /// SOCK_SEQPACKET only: the largest message a client may send. Reads use
    /// a buffer this large (one per loop thread; one per connection in the
    /// iterative, thread, pool and fork models, touched only as far as
    /// messages fill it), and a longer message drops the connection
    /// (MSG_TRUNC: never echoed shortened). Each connection's send buffer is
    /// raised to take a reply this large (see fit_send_buffer).
    std::size_t max_message = 64 * 1024;
    /// uring model only: receives land in a ring of this many provided
    /// buffers (a power of two from 1 to 32768) shared by all connections,
    /// taken by a connection only while its bytes are handled or sent, so an
    /// idle connection holds none. Each is 16 KiB (max_message + 1 on
    /// SOCK_SEQPACKET) and costs memory once traffic has filled it. When the
    /// ring runs dry, a receive waits for a buffer to come back
    /// (ServerStats::receives_starved) and nothing is lost.
    unsigned uring_buffers = 64;
};

/// Counters, read at the end of a run (or from another thread: they are atomic).
struct ServerStats {
    /// Connections accepted.
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> refused{0};  ///< over max_connections
    /// Closed unserved for want of descriptors or memory (see Acceptor).
    std::atomic<std::uint64_t> shed{0};
    /// Dropped after ServerLimits::idle_timeout without a byte.
    std::atomic<std::uint64_t> dropped_idle{0};
    std::atomic<std::uint64_t> dropped_stalled{0};  ///< never read their replies
    /// Dropped for what they sent: a message too large or malformed.
    std::atomic<std::uint64_t> dropped_bad_frame{0};
    std::atomic<std::uint64_t> messages{0};  ///< handled by the StreamHandler
    /// Bytes read from clients.
    std::atomic<std::uint64_t> bytes_in{0};
    /// Bytes written to clients.
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> open{0};  ///< connections open now
    /// uring model: receives that found every provided buffer taken and were
    /// started again once one came back (see ServerLimits::uring_buffers).
    std::atomic<std::uint64_t> receives_starved{0};
};

/// A listening stream socket (TCP or Unix) served by one Model.
///
/// The constructor binds and listens (backlog 4096, SO_REUSEADDR; with
/// epoll and threads > 1, one SO_REUSEPORT listener per loop on TCP).
/// `socktype` SOCK_SEQPACKET (Unix addresses only) serves messages instead
/// of a byte stream, with every model: each message read is handed to the
/// handler alone and each reply goes out as one message (see StreamHandler,
/// ConnectionIo, ServerLimits::max_message).
/// run() serves until stop() and returns once the server has drained: no
/// new connection is accepted, every message already read gets its reply,
/// then each connection's writing side is shut down and its close awaited,
/// at most limits.drain_timeout.
///
/// Errors: the constructor throws Error for bind/listen (`bind to
/// 127.0.0.1:1060: Address already in use`), and Error(EINVAL) for a
/// socktype other than SOCK_STREAM and SOCK_SEQPACKET or SOCK_SEQPACKET on
/// an IP address; the uring model throws Error
/// when io_uring is unavailable (`io_uring_queue_init: Operation not
/// permitted`), or when the library was built without liburing (`the io_uring
/// model is not built in`). A failing connection is closed and counted, never fatal.
/// Thread-safety: stop() may be called from any thread or a signal handler
/// (it writes to an eventfd); the rest from one thread.
class StreamServer {
  public:
    /// Binds and listens at `address`; run() then serves with `model`, calling `handler`.
    StreamServer(const Address& address, Model model, ServerLimits limits,
                 const StreamHandler& handler, int socktype = SOCK_STREAM);
    ~StreamServer();
    StreamServer(const StreamServer&) = delete;
    StreamServer& operator=(const StreamServer&) = delete;

    /// The address bound (the port the kernel chose for port 0).
    [[nodiscard]] Address local_address() const;
    /// Where the server's warnings go, one line each: connections refused for
    /// want of descriptors, at most one line a second per listener with the
    /// count (see Acceptor; a server out of descriptors closes what it cannot
    /// serve and pauses accepting, it never spins). Set it before run(). It is
    /// called on an accepting thread (one per loop with epoll and threads > 1),
    /// so it must be thread-safe; it must not throw. Unset: silence.
    void on_warning(std::function<void(std::string_view)> fn);
    /// Serves until stop(), then drains (see above).
    void run();
    /// Asks run() to stop: from any thread, or a signal handler.
    void stop() noexcept;
    /// Live counters; with the fork model they include the children's work.
    [[nodiscard]] const ServerStats& stats() const noexcept { return *stats_; }

    struct Shared;  // what every model reads: listeners, limits, handler, stats, stop signal

  private:
    struct StatsMapping {
        void operator()(ServerStats* stats) const noexcept;
    };
    // In a shared anonymous mapping, so that forked children count into it too.
    std::unique_ptr<ServerStats, StatsMapping> stats_;
    std::unique_ptr<Shared> shared_;
};

}  // namespace ferry
