// ferry/server/connection_policy.hpp: when a server connection reads, writes, shuts down, closes
// or is dropped, decided in one place for every server model, from its state and the time alone.
#pragma once

#include <cstddef>
#include <optional>

#include "ferry/server/stream_server.hpp"
#include "ferry/time.hpp"

namespace ferry {

/// What a server model records about one connection for its ConnectionPolicy.
/// The model owns it, updates the facts it observes (peer_done on end of
/// stream, last_activity when bytes move) and lets the policy keep the rest.
struct ConnectionState {
    /// The peer's end of stream has been read: no request will follow.
    bool peer_done = false;
    /// This side's writing half is shut down (set by ConnectionPolicy::settle
    /// when it answers shut_write): what the peer still sends is read and
    /// discarded until it closes.
    bool write_shut = false;
    /// When a byte last moved either way: the idle clock.
    Clock::time_point last_activity{};
    /// Since when the queued replies have stayed above the high-water mark:
    /// the stall clock, kept by settle(); nullopt while at or below the mark.
    std::optional<Clock::time_point> stalled_since;
};

/// What to do with a connection after its I/O (ConnectionPolicy::settle).
enum class ConnectionStep {
    serve,       ///< go on: read while wants_read(), send while wants_write()
    shut_write,  ///< shutdown(SHUT_WR) now: draining, and every reply is out
    close,       ///< close it: the peer is done and every reply is out
};

/// Which limit a connection has run out of (ConnectionPolicy::expiry).
enum class ConnectionExpiry {
    none,        ///< within every limit
    drain_over,  ///< the server is draining and drain_timeout has passed
    stalled,  ///< replies above the high-water mark for stalled_timeout: a client that never reads
    idle,     ///< no byte either way for idle_timeout (not applied while draining)
};

/// The life of a stream server's connection under ServerLimits, the same for
/// every model (blocking, event loop, io_uring), as pure decisions: a state
/// and a time go in, an action comes out; the model does the I/O and the
/// system calls the action names.
///
/// - A connection reads requests while its peer has not ended the stream,
///   the server is not draining, and its queued replies are at or below
///   output_high_water (backpressure: a peer that does not read its replies
///   stops being read). It sends while replies are queued.
/// - The peer's end of stream closes the connection once every reply is out
///   (a half-closed client still gets all its answers, as with nc -N).
/// - Draining (the server's stop): no new request is read; once a
///   connection's replies are out its writing side is shut down and the
///   peer's close awaited, reading and discarding what it still sends; at
///   drain_timeout whatever is left is dropped.
/// - Replies above the high-water mark for stalled_timeout drop the
///   connection (stalled); no byte either way for idle_timeout drops it (idle;
///   not while draining, which has its own bound).
///
/// Each model keeps one policy per draining scope: per connection in the
/// blocking models, per event loop or ring otherwise.
/// Thread-safety: none; a policy belongs to the thread that serves its connections.
class ConnectionPolicy {
  public:
    /// Reads output_high_water, stalled_timeout, idle_timeout and drain_timeout.
    explicit ConnectionPolicy(const ServerLimits& limits) noexcept;

    /// The server is stopping, as seen at `now`: drain from now until now +
    /// drain_timeout. A second call changes nothing.
    void start_draining(Clock::time_point now) noexcept;
    /// Whether start_draining() was called.
    [[nodiscard]] bool draining() const noexcept { return drain_deadline_.has_value(); }
    /// When draining ends, however far the connections got; nullopt before start_draining().
    [[nodiscard]] std::optional<Clock::time_point> drain_deadline() const noexcept {
        return drain_deadline_;
    }

    /// After I/O on a connection that has `queued` reply bytes not yet sent
    /// (a send the kernel still holds included), at `now`: starts or clears
    /// the stall clock, and says what to do. On shut_write it marks
    /// c.write_shut, and the model calls shutdown(SHUT_WR).
    ConnectionStep settle(ConnectionState& c, std::size_t queued,
                          Clock::time_point now) const noexcept;
    /// Whether to read: requests (see the class comment), or after
    /// write_shut the bytes to discard until the peer's close.
    [[nodiscard]] bool wants_read(const ConnectionState& c, std::size_t queued) const noexcept;
    /// Whether to send: replies are queued and the writing side is open.
    [[nodiscard]] bool wants_write(const ConnectionState& c, std::size_t queued) const noexcept;
    /// The limit the connection has run out of at `now`, if any; the drain
    /// first, then the stall, then idleness. The model drops the connection
    /// (and counts stalled and idle drops).
    [[nodiscard]] ConnectionExpiry expiry(const ConnectionState& c,
                                          Clock::time_point now) const noexcept;
    /// The earliest time at which expiry() can answer other than none while
    /// the state stays as it is (nullopt: never): how long a model may wait
    /// for I/O.
    [[nodiscard]] Deadline next_deadline(const ConnectionState& c) const noexcept;

  private:
    std::size_t high_water_;
    Duration stalled_timeout_;
    std::optional<Duration> idle_timeout_;
    Duration drain_timeout_;
    std::optional<Clock::time_point> drain_deadline_;
};

}  // namespace ferry
