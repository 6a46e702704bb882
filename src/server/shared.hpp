// Internal to the server models (not API): what they share, and the entry point of each.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>

#include <vector>

#include "ferry/acceptor.hpp"
#include "ferry/error.hpp"
#include "ferry/poller.hpp"
#include "ferry/server/connection_io.hpp"
#include "ferry/server/stream_server.hpp"
#include "ferry/socket.hpp"

namespace ferry {

struct StreamServer::Shared {
    Model model = Model::epoll;
    std::vector<Socket> listeners;  // one, or one per loop with SO_REUSEPORT
    int socktype = SOCK_STREAM;     // SOCK_SEQPACKET: messages, see ConnectionIo
    ServerLimits limits;
    const StreamHandler* handler;
    ServerStats* stats;
    Fd stop;  // eventfd: readable once stop() was called. Polled, never read, so
              // every thread and every forked child sees it.
    std::function<void(std::string_view)> on_warning;  // see StreamServer::on_warning

    [[nodiscard]] bool stopping() const noexcept {
        pollfd p{stop.get(), POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }

    /// The reads and replies of one connection (or one thread's connections) for this socktype.
    [[nodiscard]] ConnectionIo make_io() const {
        return socktype == SOCK_SEQPACKET ? ConnectionIo(limits.max_message) : ConnectionIo();
    }

    /// How every model accepts: non-blocking sockets, the owner's warnings.
    [[nodiscard]] AcceptorOptions acceptor_options() const {
        AcceptorOptions options;
        options.flags = SOCK_NONBLOCK;
        options.on_warning = on_warning;
        return options;
    }

    /// Adds what `acceptor` refused since the last call (`counted`) to stats->shed.
    void count_shed(const Acceptor& acceptor, std::uint64_t& counted) const noexcept {
        stats->shed.fetch_add(acceptor.refused() - counted, std::memory_order_relaxed);
        counted = acceptor.refused();
    }

    /// Counts a connection dropped for what it sent, and tells the handler why.
    void dropped_for(const Error& why) const noexcept {
        ++stats->dropped_bad_frame;
        handler->on_frame_error(why);
    }
};

namespace detail {

/// Whether `e` is about what the peer sent (a frame too large, malformed): the
/// connection is dropped for it and counted, rather than failing on its own.
inline bool is_frame_error(const Error& e) {
    return e.code() == make_error_code(Errc::frame_too_large) ||
           e.code() == make_error_code(Errc::bad_frame);
}

void run_iterative(StreamServer::Shared& s);
void run_thread_per_client(StreamServer::Shared& s);
void run_pool(StreamServer::Shared& s);
void run_fork(StreamServer::Shared& s);
void run_loops(StreamServer::Shared& s, Backend backend);
void run_uring(StreamServer::Shared& s);

/// Serves one connection to the end with blocking-style code (poll on the
/// socket and the stop signal): the body of the iterative, thread, pool and
/// fork models. Never throws: a failing connection is closed and counted.
void serve_blocking(Socket socket, StreamServer::Shared& s);

/// Tells a client there is no room (best effort, non-blocking) and closes it.
void refuse(Socket socket, const StreamHandler& handler);

}  // namespace detail
}  // namespace ferry
