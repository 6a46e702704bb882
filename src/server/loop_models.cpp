// The event-loop server models: select, poll and epoll (one loop, or one per
// thread with SO_REUSEPORT listeners), all on ferry::EventLoop.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <utility>
#include <vector>

#include "ferry/event_loop.hpp"
#include "ferry/run_loops.hpp"
#include "ferry/server/connection_policy.hpp"
#include "shared.hpp"

namespace ferry::detail {
namespace {

constexpr unsigned kAcceptsPerWakeup = 64;
constexpr auto kSweepPeriod = std::chrono::milliseconds(250);
/// A connection idle this long gives its buffers back: idle connections cost
/// no buffer memory, busy ones never reallocate.
constexpr auto kReleaseAfter = std::chrono::seconds(1);
/// The loop's one read buffer for the raw echo: as large as the room a
/// Buffer read offers, so a read that returns less has drained the socket.
constexpr std::size_t kHotBuffer = Buffer::kReadSpill;

class LoopWorker {
  public:
    LoopWorker(StreamServer::Shared& s, Socket& listener, Backend backend)
        : s_(s),
          listener_(listener),
          loop_(backend),
          io_(s.make_io()),
          policy_(s.limits),
          raw_echo_(!io_.messages() && s.handler->echoes_input()),
          // Not value-initialised: only the bytes a read writes are ever looked at.
          hot_(new char[kHotBuffer]) {
        is_tcp_ = listener_.family() != AF_UNIX;
    }

    /// Sets the loop up; run_loops() then runs it on its thread.
    void start() {
        AcceptorOptions options = s_.acceptor_options();
        options.max_per_wakeup = kAcceptsPerWakeup;
        acceptor_.emplace(
            loop_, listener_, [this](Accepted client) { on_accept(std::move(client)); },
            std::move(options));
        loop_.watch(s_.stop.get(), events::readable, [this](std::uint32_t) { on_stop(); });
        loop_.add_timer(
            kSweepPeriod, [this] { sweep(); }, kSweepPeriod);
    }
    [[nodiscard]] EventLoop& loop() noexcept { return loop_; }

    /// Once the loop has returned: closes what is left and publishes the counts.
    void finish() {
        for (auto& c : conns_)
            if (c) close(*c);
        publish();
    }

  private:
    struct Conn {
        Socket socket;
        Buffer in;   // a partial frame (framed modes); never used by the raw echo
        Outbox out;  // replies the socket has not taken yet
        ConnectionState state;
    };

    void on_accept(Accepted client) {
        if (s_.stats->open.load(std::memory_order_relaxed) >= s_.limits.max_connections) {
            ++s_.stats->refused;
            refuse(std::move(client.socket), *s_.handler);
            return;
        }
        const int fd = client.socket.fd();
        try {
            io_.prepare(fd);
        } catch (const Error&) {
            return;  // no room for its replies: this connection only is closed
        }
        ++s_.stats->accepted;
        ++s_.stats->open;
        if (is_tcp_) client.socket.set_no_delay(true);
        if (static_cast<std::size_t>(fd) >= conns_.size())
            conns_.resize(static_cast<std::size_t>(fd) * 2 + 16);
        auto& slot = conns_[static_cast<std::size_t>(fd)];
        slot = std::make_unique<Conn>();
        slot->socket = std::move(client.socket);
        slot->state.last_activity = loop_.now();
        // A direct handler: one plain indirect call per event, no std::function.
        loop_.watch<&LoopWorker::on_ready>(fd, events::readable, this);
    }

    void on_ready(int fd, std::uint32_t ready) {
        Conn& c = *conns_[static_cast<std::size_t>(fd)];
        try {
            if (c.state.write_shut) {
                // After our close: wait for the client's, discarding what it still sends.
                const ssize_t n = ::recv(fd, hot_.get(), kHotBuffer, 0);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close(c);
                return;
            }
            if (raw_echo_) {
                echo_raw(c, fd, ready);
            } else {
                serve(c, fd, ready);
            }
            update(c);
        } catch (const Error& e) {
            if (is_frame_error(e)) s_.dropped_for(e);
            close(c);
        }
    }

    /// The raw echo's zero-state path: each read lands in the loop's one hot
    /// buffer and is sent straight back from it, as the simplest C loop does;
    /// only what the socket does not take is kept, in the connection's
    /// outbox, which then queues every later byte too so that the order holds.
    /// An idle connection holds no buffer at all.
    void echo_raw(Conn& c, int fd, std::uint32_t ready) {
        if ((ready & events::writable) && !c.out.empty()) flush(c);
        if ((ready & (events::readable | events::hangup | events::error)) == 0) return;
        for (unsigned i = 0; i < s_.limits.max_reads_per_wakeup; ++i) {
            if (!policy_.wants_read(c.state, c.out.size())) break;
            const ssize_t n = ::recv(fd, hot_.get(), kHotBuffer, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                throw_errno("recv");
            }
            if (n == 0) {
                c.state.peer_done = true;
                break;
            }
            const auto got = static_cast<std::size_t>(n);
            bytes_in_ += got;
            ++messages_;  // as EchoHandler counts a raw read: one message
            c.state.last_activity = loop_.now();
            if (c.out.empty()) {
                const std::size_t sent = send_some(fd, hot_.get(), got);
                if (sent < got) c.out.bytes().append(hot_.get() + sent, got - sent);
            } else {
                c.out.bytes().append(hot_.get(), got);
                flush(c);
            }
            // Less than the room offered: the socket is drained, and one more
            // read would only say EAGAIN (a system call per request).
            if (got < kHotBuffer) break;
        }
    }

    /// One send(2) of what the socket takes now: the bytes sent, 0 when it would block.
    std::size_t send_some(int fd, const char* data, std::size_t size) {
        for (;;) {
            const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
            if (n >= 0) {
                bytes_out_ += static_cast<std::size_t>(n);
                return static_cast<std::size_t>(n);
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            throw_errno("send");
        }
    }

    /// Framed modes and message sockets: reads go to the connection's own
    /// buffer, where a partial frame waits for the rest, and the handler cuts them.
    void serve(Conn& c, int fd, std::uint32_t ready) {
        if ((ready & (events::readable | events::hangup | events::error)) &&
            policy_.wants_read(c.state, c.out.size())) {
            for (unsigned i = 0; i < s_.limits.max_reads_per_wakeup; ++i) {
                const IoResult n = io_.read(fd, c.in);
                if (!n) break;
                if (*n == 0) {
                    c.state.peer_done = true;
                    break;
                }
                bytes_in_ += *n;
                messages_ += io_.handle(*s_.handler, c.in, c.out);
                c.state.last_activity = loop_.now();
                // Write now rather than wait for a writable event: the common
                // case (a reply that fits the socket buffer) costs no epoll round.
                flush(c);
                if (!policy_.wants_read(c.state, c.out.size())) break;
                // Less than the room offered: the socket is drained, and one
                // more read would only say EAGAIN (a system call per request).
                if (io_.drained_by(*n)) break;
            }
        }
        if ((ready & events::writable) && !c.out.empty()) flush(c);
    }

    void flush(Conn& c) {
        if (c.out.empty()) return;
        if (const IoResult n = c.out.write_to(c.socket.fd()); n && *n > 0) {
            bytes_out_ += *n;
            c.state.last_activity = loop_.now();
        }
    }

    /// After I/O, what the policy says: close, shut down, or the interest to watch for.
    void update(Conn& c) {
        switch (policy_.settle(c.state, c.out.size(), loop_.now())) {
            case ConnectionStep::close:
                return close(c);
            case ConnectionStep::shut_write:
                ::shutdown(c.socket.fd(), SHUT_WR);
                break;
            case ConnectionStep::serve:
                break;
        }
        const std::uint32_t interest =
            (policy_.wants_read(c.state, c.out.size()) ? events::readable : 0u) |
            (policy_.wants_write(c.state, c.out.size()) ? events::writable : 0u);
        loop_.modify(c.socket.fd(), interest);
    }

    void close(Conn& c) {
        const int fd = c.socket.fd();
        loop_.unwatch(fd);
        conns_[static_cast<std::size_t>(fd)].reset();
        --s_.stats->open;
        acceptor_->connection_closed();
        if (policy_.draining() && --live_ == 0) loop_.stop();
    }

    void on_stop() {
        policy_.start_draining(loop_.now());
        loop_.unwatch(s_.stop.get());
        acceptor_->stop();
        listener_.close();  // new clients are refused by the kernel from now on
        live_ = 0;
        for (auto& c : conns_)
            if (c) ++live_;
        if (live_ == 0) return loop_.stop();
        for (auto& c : conns_)
            if (c) update(*c);
    }

    /// Adds this loop's counts to the shared counters: a few times a second
    /// rather than three atomic operations per request.
    void publish() {
        s_.count_shed(acceptor_->acceptor(), shed_);
        s_.stats->bytes_in.fetch_add(std::exchange(bytes_in_, 0), std::memory_order_relaxed);
        s_.stats->bytes_out.fetch_add(std::exchange(bytes_out_, 0), std::memory_order_relaxed);
        s_.stats->messages.fetch_add(std::exchange(messages_, 0), std::memory_order_relaxed);
    }

    void sweep() {
        publish();
        const auto now = loop_.now();
        for (auto& slot : conns_) {
            if (!slot) continue;
            Conn& c = *slot;
            switch (policy_.expiry(c.state, now)) {
                case ConnectionExpiry::stalled:
                    ++s_.stats->dropped_stalled;
                    close(c);
                    break;
                case ConnectionExpiry::idle:
                    ++s_.stats->dropped_idle;
                    close(c);
                    break;
                case ConnectionExpiry::drain_over:
                    close(c);  // the last one stops the loop
                    break;
                case ConnectionExpiry::none:
                    if (now - c.state.last_activity >= kReleaseAfter) {
                        c.in.release();
                        c.out.release();
                    }
                    break;
            }
        }
    }

    StreamServer::Shared& s_;
    Socket& listener_;
    EventLoop loop_;
    std::optional<LoopAcceptor> acceptor_;  // from start() on
    std::uint64_t shed_ = 0;                // refusals already counted in the stats
    ConnectionIo io_;  // this loop's reads: every connection of a loop shares its read buffer
    ConnectionPolicy policy_;      // draining is this loop's: each loop sees the stop signal itself
    bool raw_echo_;                // the handler echoes its input: echo_raw() instead of serve()
    std::unique_ptr<char[]> hot_;  // the one read buffer of echo_raw() (kHotBuffer bytes)
    bool is_tcp_ = true;
    std::vector<std::unique_ptr<Conn>> conns_;  // indexed by descriptor
    std::size_t live_ = 0;                      // connections left while draining
    std::uint64_t bytes_in_ = 0;                // not yet published to the shared counters
    std::uint64_t bytes_out_ = 0;
    std::uint64_t messages_ = 0;
};

}  // namespace

void run_loops(StreamServer::Shared& s, Backend backend) {
    std::vector<std::unique_ptr<LoopWorker>> workers;
    std::vector<EventLoop*> loops;
    for (Socket& listener : s.listeners) {
        workers.push_back(std::make_unique<LoopWorker>(s, listener, backend));
        workers.back()->start();
        loops.push_back(&workers.back()->loop());
    }
    // A loop that fails stops the others: its error reaches run()'s caller,
    // after every connection is closed and counted.
    const auto finish_all = [&] {
        for (auto& w : workers)
            w->finish();
    };
    try {
        ferry::run_loops(loops);
    } catch (...) {
        finish_all();
        throw;
    }
    finish_all();
}

}  // namespace ferry::detail
