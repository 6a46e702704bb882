// The io_uring server model (liburing): one thread submits accepts, receives
// and sends, and reacts to their completions instead of to readiness.
//
// Receives are multishot (Linux 6.0) and take their memory from a ring of
// provided buffers shared by every connection (see provided_buffers.hpp): a
// connection waiting for data holds no buffer. An echo is sent straight from
// the buffer it was received into, which goes back to the ring when the send
// completes; a short send keeps only its unsent tail. Bytes of a partial
// frame, replies queued behind a send in flight, and the replies of a handler
// that is not an echo are copied into the connection's own buffers.
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <algorithm>
#include <memory>
#include <unordered_map>

#include "ferry/server/connection_policy.hpp"
#include "provided_buffers.hpp"
#include "shared.hpp"

namespace ferry::detail {
namespace {

constexpr unsigned kRingEntries = 4096;
constexpr std::size_t kStreamBufferSize = 16 * 1024;
constexpr unsigned short kBufferGroup = 0;
constexpr long long kTickNanoseconds = 250'000'000;
/// A connection idle this long gives back the memory of its copies (partial
/// frames, queued replies): kept meanwhile, so a busy one does not allocate anew each time.
constexpr auto kReleaseAfter = std::chrono::seconds(1);

enum class OpKind : std::uint8_t { accept, recv, send, stop, tick, ignored };

struct UringConn;
struct Op {
    OpKind kind;
    UringConn* conn;
};

/// No provided buffer: a send carries the connection's `sending` outbox.
constexpr int kNoBuffer = -1;

struct UringConn {
    UringConn(Socket s, Clock::time_point now) : socket(std::move(s)) { state.last_activity = now; }
    Socket socket;
    Buffer in;  // the start of a frame not yet whole, kept between receives
    // Replies collect in `pending` while `sending` is in the kernel's hands:
    // the memory of a submitted send must not move until it completes.
    Outbox pending;
    Outbox sending;
    Op recv_op{OpKind::recv, this};
    Op send_op{OpKind::send, this};
    int send_buffer = kNoBuffer;       // the provided buffer a send in flight carries
    std::size_t send_buffer_size = 0;  // ... and how many of its bytes
    bool recv_armed = false;           // a multishot receive is in the kernel
    bool recv_cancelled = false;       // ... and was asked to end (backpressure, draining)
    bool send_in_flight = false;
    bool starved = false;  // its receive ended for want of a buffer (on the starved list)
    bool closing = false;
    ConnectionState state;
};

/// The ring's setup: a single issuer whose completions are processed only
/// when it waits for them (Linux 6.1), else the defaults.
void init_ring(io_uring& ring) {
    int rc = ::io_uring_queue_init(kRingEntries, &ring,
                                   IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
    if (rc == -EINVAL) rc = ::io_uring_queue_init(kRingEntries, &ring, 0);
    if (rc < 0) throw_errno(-rc, "io_uring_queue_init");
}

class UringWorker {
  public:
    explicit UringWorker(StreamServer::Shared& s)
        : s_(s),
          listener_(s.listeners.front()),
          ring_(make_ring()),
          acceptor_(listener_, s.acceptor_options()),
          io_(s.make_io()),
          policy_(s.limits),
          // A message gets one byte more room than the largest allowed, and
          // MSG_TRUNC makes a receive return a message's real length: a longer
          // message shows as more than the maximum, never as a shortened one.
          buffers_(ring_->get(), s.limits.uring_buffers,
                   io_.messages() ? io_.max_message() + 1 : kStreamBufferSize, kBufferGroup),
          recv_flags_(io_.messages() ? MSG_TRUNC : 0),
          echo_(s.handler->echo_span({}).has_value()) {
        is_tcp_ = listener_.family() != AF_UNIX;
    }
    // The ring goes first: the kernel lets go of every buffer and
    // connection a request in flight still names before they are freed.
    ~UringWorker() { ring_.reset(); }
    UringWorker(const UringWorker&) = delete;
    UringWorker& operator=(const UringWorker&) = delete;

    void run() {
        now_ = Clock::now();
        arm_accept();
        io_uring_prep_poll_add(next_sqe(&stop_op_), s_.stop.get(), POLLIN);
        arm_tick();
        while (!done_) {
            const int rc = ::io_uring_submit_and_wait(&ring(), 1);
            if (rc < 0 && rc != -EINTR) throw_errno(-rc, "io_uring_submit_and_wait");
            now_ = Clock::now();  // once per batch: every completion in it shares the time
            io_uring_cqe* cqe = nullptr;
            unsigned head = 0;
            unsigned seen = 0;
            io_uring_for_each_cqe(&ring(), head, cqe) {
                ++seen;
                complete(*static_cast<Op*>(io_uring_cqe_get_data(cqe)), *cqe);
            }
            ::io_uring_cq_advance(&ring(), seen);
            if (buffers_.publish() != 0) feed_starved();
        }
    }

  private:
    /// The io_uring, torn down after the buffers registered with it.
    struct Ring {
        Ring() { init_ring(ring); }
        ~Ring() { ::io_uring_queue_exit(&ring); }
        Ring(const Ring&) = delete;
        Ring& operator=(const Ring&) = delete;
        io_uring& get() noexcept { return ring; }
        io_uring ring{};
    };
    static std::unique_ptr<Ring> make_ring() { return std::make_unique<Ring>(); }
    io_uring& ring() noexcept { return ring_->get(); }

    io_uring_sqe* next_sqe(Op* op) {
        io_uring_sqe* sqe = ::io_uring_get_sqe(&ring());
        if (sqe == nullptr) {  // the submission queue is full: hand it to the kernel first
            ::io_uring_submit(&ring());
            sqe = ::io_uring_get_sqe(&ring());
            if (sqe == nullptr) throw_errno(EBUSY, "io_uring_get_sqe");
        }
        io_uring_sqe_set_data(sqe, op);
        return sqe;
    }

    /// One multishot accept: a completion per connection until it ends.
    void arm_accept() {
        accept_in_flight_ = true;
        accept_cancelled_ = false;
        io_uring_prep_multishot_accept(next_sqe(&accept_op_), listener_.fd(), nullptr, nullptr,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    void cancel_accept() {
        if (!accept_in_flight_ || accept_cancelled_) return;
        accept_cancelled_ = true;
        io_uring_prep_cancel(next_sqe(&ignored_op_), &accept_op_, 0);
    }
    void arm_tick() {
        tick_.tv_sec = 0;
        tick_.tv_nsec = kTickNanoseconds;
        io_uring_prep_timeout(next_sqe(&tick_op_), &tick_, 0, 0);
    }
    /// One multishot receive into the provided buffers: a completion each
    /// time bytes arrive, until end of stream, an error, a cancel, or no buffer.
    void arm_recv(UringConn& c) {
        if (c.recv_armed || c.closing) return;
        io_uring_sqe* sqe = next_sqe(&c.recv_op);
        io_uring_prep_recv_multishot(sqe, c.socket.fd(), nullptr, 0, recv_flags_);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = buffers_.group();
        c.recv_armed = true;
        c.recv_cancelled = false;
    }
    void cancel_recv(UringConn& c) {
        if (!c.recv_armed || c.recv_cancelled) return;
        c.recv_cancelled = true;
        io_uring_prep_cancel(next_sqe(&ignored_op_), &c.recv_op, 0);
    }
    void kick_send(UringConn& c) {
        if (c.send_in_flight || c.closing || !policy_.wants_write(c.state, queued(c))) return;
        if (c.sending.empty()) std::swap(c.sending, c.pending);
        if (c.sending.empty()) return;
        const std::string_view next = c.sending.next();
        io_uring_prep_send(next_sqe(&c.send_op), c.socket.fd(), next.data(), next.size(),
                           MSG_NOSIGNAL);
        c.send_in_flight = true;
    }
    /// Reply bytes not yet sent, those of a send in flight included.
    [[nodiscard]] static std::size_t queued(const UringConn& c) {
        return c.pending.size() + c.sending.size() + c.send_buffer_size;
    }

    /// Readies an accepted connection (a send buffer for the largest reply); false if that failed.
    bool prepared(const Socket& socket) const {
        try {
            io_.prepare(socket.fd());
            return true;
        } catch (const Error&) {
            return false;
        }
    }

    void complete(Op& op, const io_uring_cqe& cqe) {
        switch (op.kind) {
            case OpKind::accept:
                return on_accept(cqe);
            case OpKind::recv:
                return on_recv(*op.conn, cqe);
            case OpKind::send:
                return on_send(*op.conn, cqe.res);
            case OpKind::stop:
                return on_stop();
            case OpKind::tick:
                return on_tick();
            case OpKind::ignored:
                return;
        }
    }

    void on_accept(const io_uring_cqe& cqe) {
        const int res = cqe.res;
        if ((cqe.flags & IORING_CQE_F_MORE) == 0) accept_in_flight_ = false;
        if (policy_.draining()) {
            if (res >= 0) ::close(res);
            return;
        }
        if (res == -ECANCELED && accept_cancelled_) return resume_accepting();
        // Out of descriptors, the acceptor sheds what waits and pauses (the
        // multishot accept is cancelled): the next accept is submitted by
        // on_tick or close once it resumes.
        std::optional<Accepted> client = acceptor_.adopt(res);
        s_.count_shed(acceptor_, shed_);
        if (client) {
            Socket socket = std::move(client->socket);
            if (s_.stats->open.load(std::memory_order_relaxed) >= s_.limits.max_connections) {
                ++s_.stats->refused;
                refuse(std::move(socket), *s_.handler);
            } else if (!prepared(socket)) {
                // no room for its replies: this connection only is closed
            } else {
                ++s_.stats->accepted;
                ++s_.stats->open;
                if (is_tcp_) socket.set_no_delay(true);
                auto conn = std::make_unique<UringConn>(std::move(socket), now_);
                UringConn& c = *conn;
                conns_.emplace(&c, std::move(conn));
                arm_recv(c);
            }
        }
        if (acceptor_.paused()) cancel_accept();
        resume_accepting();
    }

    void resume_accepting() {
        if (!policy_.draining() && !accept_in_flight_ && !acceptor_.paused()) arm_accept();
    }

    void on_recv(UringConn& c, const io_uring_cqe& cqe) {
        const int res = cqe.res;
        if ((cqe.flags & IORING_CQE_F_MORE) == 0) c.recv_armed = false;
        const bool has_buffer = (cqe.flags & IORING_CQE_F_BUFFER) != 0;
        const unsigned id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
        if (c.closing) {
            if (has_buffer) buffers_.give_back(id);
            return release(c);
        }
        if (res < 0) return on_recv_failed(c, res);
        if (res > 0 && !has_buffer) return close(c);  // cannot happen with IOSQE_BUFFER_SELECT
        if (c.state.write_shut) {  // after our shutdown: discard until the client's close
            if (has_buffer) buffers_.give_back(id);
            if (res == 0) return close(c);
            return settle(c);
        }
        if (res == 0) {
            c.state.peer_done = true;
            return settle(c);
        }
        const auto n = static_cast<std::size_t>(res);
        c.state.last_activity = now_;
        s_.stats->bytes_in.fetch_add(n, std::memory_order_relaxed);
        bool kept = false;  // the buffer carries a send now, and comes back with its completion
        try {
            kept = handle(c, id, n);
        } catch (const Error& e) {
            buffers_.give_back(id);
            if (is_frame_error(e)) s_.dropped_for(e);
            return close(c);
        }
        if (!kept) buffers_.give_back(id);
        kick_send(c);
        settle(c);
    }

    void on_recv_failed(UringConn& c, int res) {
        if (res == -ENOBUFS) {  // the ring ran dry: again once a buffer comes back
            ++s_.stats->receives_starved;
            if (!c.starved) starved_.push_back(&c);
            c.starved = true;
            return;
        }
        if (res == -ECANCELED && c.recv_cancelled) return settle(c);
        if (res == -EINVAL)  // the one receive this model makes: the kernel lacks it
            throw_errno(EINVAL,
                        "io_uring multishot receive into provided buffers (Linux 6.0 or later)");
        close(c);
    }

    /// Receives that ran out of buffers start again, now that some came back.
    void feed_starved() {
        std::vector<UringConn*> starved;
        starved.swap(starved_);
        for (UringConn* c : starved) {
            c->starved = false;
            settle(*c);
        }
    }

    /// Hands `n` received bytes in buffer `id` to the handler; returns
    /// whether the buffer now carries a send (true) or may go back (false).
    bool handle(UringConn& c, unsigned id, std::size_t n) {
        const char* data = buffers_.data(id);
        if (echo_ && c.in.empty()) {
            if (io_.messages() && n > io_.max_message())
                io_.received(data, n, c.in);  // throws frame_too_large
            const EchoSpan span = *s_.handler->echo_span({data, n});
            // A message socket's message is echoed whole or dropped: that
            // check, and its error, are the general path's.
            if (!io_.messages() || span.bytes == n) return echo_in_place(c, id, n, span);
        }
        io_.received(data, n, c.in);
        s_.stats->messages.fetch_add(io_.handle(*s_.handler, c.in, c.pending),
                                     std::memory_order_relaxed);
        return false;
    }

    /// The echo of the whole messages at the front of buffer `id`: sent from
    /// the buffer itself when nothing else waits to go out on this
    /// connection, else queued behind what does. The bytes after them (a
    /// frame not yet whole) are kept in `c.in`.
    bool echo_in_place(UringConn& c, unsigned id, std::size_t n, const EchoSpan& span) {
        const char* data = buffers_.data(id);
        s_.stats->messages.fetch_add(span.messages, std::memory_order_relaxed);
        c.in.append(data + span.bytes, n - span.bytes);
        if (span.bytes == 0) return false;
        // At most half the ring carries sends, which last as long as a client
        // takes to read: the rest is always there for receives.
        const bool in_place = !c.send_in_flight && c.sending.empty() && c.pending.empty() &&
                              sends_from_buffers_ < buffers_.count() / 2;
        if (!in_place) {
            c.pending.bytes().append(data, span.bytes);
            if (io_.messages()) c.pending.end_message();
            return false;
        }
        io_uring_prep_send(next_sqe(&c.send_op), c.socket.fd(), data, span.bytes, MSG_NOSIGNAL);
        c.send_in_flight = true;
        c.send_buffer = static_cast<int>(id);
        c.send_buffer_size = span.bytes;
        ++sends_from_buffers_;
        return true;
    }

    void on_send(UringConn& c, int res) {
        c.send_in_flight = false;
        const int buffer = c.send_buffer;
        const std::size_t buffer_bytes = c.send_buffer_size;
        if (buffer != kNoBuffer) {
            c.send_buffer = kNoBuffer;
            c.send_buffer_size = 0;
            --sends_from_buffers_;
        }
        const auto give_back = [&] {
            if (buffer != kNoBuffer) buffers_.give_back(static_cast<unsigned>(buffer));
        };
        if (c.closing) {
            give_back();
            return release(c);
        }
        if (res < 0) {
            give_back();
            return close(c);
        }
        const auto n = static_cast<std::size_t>(res);
        if (buffer != kNoBuffer) {
            // A short send: the unsent tail moves to the connection (`sending`
            // is empty while a buffer is sent) and the buffer goes back now.
            // A message goes whole or not at all.
            const bool whole = n == buffer_bytes;
            if (!whole && !io_.messages())
                c.sending.bytes().append(buffers_.data(static_cast<unsigned>(buffer)) + n,
                                         buffer_bytes - n);
            give_back();
            if (!whole && io_.messages()) return close(c);
        } else {
            try {
                c.sending.sent(n);
            } catch (const Error&) {
                return close(c);
            }
        }
        s_.stats->bytes_out.fetch_add(n, std::memory_order_relaxed);
        c.state.last_activity = now_;
        kick_send(c);
        settle(c);
    }

    /// After any completion, what the policy says: close, shut down, or go
    /// on; and a receive armed exactly while the policy wants to read.
    void settle(UringConn& c) {
        switch (policy_.settle(c.state, queued(c), now_)) {
            case ConnectionStep::close:
                return close(c);
            case ConnectionStep::shut_write:
                ::shutdown(c.socket.fd(), SHUT_WR);
                break;
            case ConnectionStep::serve:
                break;
        }
        if (c.starved) return;  // fed once a buffer comes back
        if (policy_.wants_read(c.state, queued(c)))
            arm_recv(c);
        else
            cancel_recv(c);
    }

    void close(UringConn& c) {
        if (c.closing) return;
        c.closing = true;
        --s_.stats->open;
        acceptor_.connection_closed();
        resume_accepting();
        // The kernel may still use this connection's operations: cancel, and
        // free only once every one has completed.
        if (c.recv_armed) io_uring_prep_cancel(next_sqe(&ignored_op_), &c.recv_op, 0);
        if (c.send_in_flight) io_uring_prep_cancel(next_sqe(&ignored_op_), &c.send_op, 0);
        release(c);
    }

    void release(UringConn& c) {
        if (c.recv_armed || c.send_in_flight) return;
        if (c.starved) std::erase(starved_, &c);
        conns_.erase(&c);
        if (policy_.draining() && conns_.empty()) done_ = true;
    }

    void on_stop() {
        policy_.start_draining(now_);
        cancel_accept();
        if (conns_.empty()) {
            done_ = true;
            return;
        }
        std::vector<UringConn*> all;
        for (auto& [key, conn] : conns_)
            all.push_back(key);
        for (UringConn* c : all)
            settle(*c);
    }

    /// An idle connection gives back what its copies took (each buffer
    /// only if empty): it holds no buffer memory while it waits.
    static void release_memory(UringConn& c) {
        c.in.release();
        c.pending.release();
        if (!c.send_in_flight) c.sending.release();
    }

    void on_tick() {
        acceptor_.tick(now_);  // a pause ends within a tick of its time
        resume_accepting();
        std::vector<UringConn*> expired;
        for (auto& [key, conn] : conns_) {
            UringConn& c = *conn;
            if (c.closing) continue;
            const ConnectionExpiry why = policy_.expiry(c.state, now_);
            if (why == ConnectionExpiry::none) {
                if (now_ - c.state.last_activity >= kReleaseAfter) release_memory(c);
                continue;
            }
            if (why == ConnectionExpiry::stalled) ++s_.stats->dropped_stalled;
            if (why == ConnectionExpiry::idle) ++s_.stats->dropped_idle;
            expired.push_back(key);
        }
        for (UringConn* c : expired)
            close(*c);
        const auto drain_end = policy_.drain_deadline();
        if (drain_end && now_ >= *drain_end && conns_.empty()) done_ = true;
        if (!done_) arm_tick();
    }

    StreamServer::Shared& s_;
    Socket& listener_;
    std::unique_ptr<Ring> ring_;
    Acceptor acceptor_;
    std::uint64_t shed_ = 0;  // refusals already counted in the stats
    bool accept_in_flight_ = false;
    bool accept_cancelled_ = false;
    // The handler call and the message checks.
    ConnectionIo io_;
    ConnectionPolicy policy_;
    ProvidedBuffers buffers_;
    unsigned sends_from_buffers_ = 0;  // provided buffers carrying a send now
    int recv_flags_ = 0;
    bool echo_ = false;  // the handler is an echo: replies go out from the buffers
    bool is_tcp_ = true;
    std::unordered_map<UringConn*, std::unique_ptr<UringConn>> conns_;
    std::vector<UringConn*> starved_;  // receives waiting for a buffer to come back
    Op accept_op_{OpKind::accept, nullptr};
    Op stop_op_{OpKind::stop, nullptr};
    Op tick_op_{OpKind::tick, nullptr};
    Op ignored_op_{OpKind::ignored, nullptr};
    __kernel_timespec tick_{};
    Clock::time_point now_;  // when the completions being handled were reaped
    bool done_ = false;
};

}  // namespace

void run_uring(StreamServer::Shared& s) {
    UringWorker worker(s);
    worker.run();
}

}  // namespace ferry::detail
