// The io_uring server model (liburing): one thread submits accepts, receives
// and sends, and reacts to their completions instead of to readiness.
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>

#include <memory>
#include <unordered_map>

#include "ferry/server/connection_policy.hpp"
#include "shared.hpp"

namespace ferry::detail {
namespace {

constexpr unsigned kRingEntries = 4096;
constexpr std::size_t kRecvSize = 64 * 1024;
constexpr long long kTickNanoseconds = 250'000'000;

enum class OpKind : std::uint8_t { accept, recv, send, stop, tick, ignored };

struct UringConn;
struct Op {
    OpKind kind;
    UringConn* conn;
};

struct UringConn {
    explicit UringConn(Socket s) : socket(std::move(s)) { state.last_activity = Clock::now(); }
    Socket socket;
    Buffer in;
    // Replies collect in `pending` while `sending` is in the kernel's hands:
    // the memory of a submitted send must not move until it completes.
    Outbox pending;
    Outbox sending;
    std::unique_ptr<char[]> receive_area;  // the target of the one receive in flight
    Op recv_op{OpKind::recv, this};
    Op send_op{OpKind::send, this};
    bool recv_in_flight = false;
    bool send_in_flight = false;
    bool closing = false;
    ConnectionState state;
};

class UringWorker {
  public:
    explicit UringWorker(StreamServer::Shared& s)
        : s_(s),
          listener_(s.listeners.front()),
          acceptor_(listener_, s.acceptor_options()),
          io_(s.make_io()),
          policy_(s.limits) {
        const int rc = ::io_uring_queue_init(kRingEntries, &ring_, 0);
        if (rc < 0) throw_errno(-rc, "io_uring_queue_init");
        is_tcp_ = listener_.family() != AF_UNIX;
        // A message gets one byte more room than the largest allowed, and
        // MSG_TRUNC makes a receive return a message's real length: a longer
        // message shows as more than the maximum, never as a shortened one.
        if (io_.messages()) {
            recv_size_ = io_.max_message() + 1;
            recv_flags_ = MSG_TRUNC;
        }
    }
    ~UringWorker() { ::io_uring_queue_exit(&ring_); }
    UringWorker(const UringWorker&) = delete;
    UringWorker& operator=(const UringWorker&) = delete;

    void run() {
        arm_accept();
        io_uring_prep_poll_add(next_sqe(&stop_op_), s_.stop.get(), POLLIN);
        arm_tick();
        while (!done_) {
            const int rc = ::io_uring_submit_and_wait(&ring_, 1);
            if (rc < 0 && rc != -EINTR) throw_errno(-rc, "io_uring_submit_and_wait");
            io_uring_cqe* cqe = nullptr;
            unsigned head = 0;
            unsigned seen = 0;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                ++seen;
                complete(*static_cast<Op*>(io_uring_cqe_get_data(cqe)), cqe->res);
            }
            ::io_uring_cq_advance(&ring_, seen);
        }
    }

  private:
    io_uring_sqe* next_sqe(Op* op) {
        io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
        if (sqe == nullptr) {  // the submission queue is full: hand it to the kernel first
            ::io_uring_submit(&ring_);
            sqe = ::io_uring_get_sqe(&ring_);
            if (sqe == nullptr) throw_errno(EBUSY, "io_uring_get_sqe");
        }
        io_uring_sqe_set_data(sqe, op);
        return sqe;
    }

    void arm_accept() {
        accept_in_flight_ = true;
        io_uring_prep_accept(next_sqe(&accept_op_), listener_.fd(), nullptr, nullptr,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    void arm_tick() {
        tick_.tv_sec = 0;
        tick_.tv_nsec = kTickNanoseconds;
        io_uring_prep_timeout(next_sqe(&tick_op_), &tick_, 0, 0);
    }
    void arm_recv(UringConn& c) {
        if (c.recv_in_flight || c.closing) return;
        // Not value-initialised: only what the kernel writes is touched.
        if (!c.receive_area) c.receive_area.reset(new char[recv_size_]);
        io_uring_prep_recv(next_sqe(&c.recv_op), c.socket.fd(), c.receive_area.get(), recv_size_,
                           recv_flags_);
        c.recv_in_flight = true;
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
    /// Reply bytes not yet sent: those of a send in flight stay in `sending` until it completes.
    [[nodiscard]] static std::size_t queued(const UringConn& c) {
        return c.pending.size() + c.sending.size();
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

    void complete(Op& op, int res) {
        switch (op.kind) {
            case OpKind::accept:
                return on_accept(res);
            case OpKind::recv:
                return on_recv(*op.conn, res);
            case OpKind::send:
                return on_send(*op.conn, res);
            case OpKind::stop:
                return on_stop();
            case OpKind::tick:
                return on_tick();
            case OpKind::ignored:
                return;
        }
    }

    void on_accept(int res) {
        accept_in_flight_ = false;
        if (policy_.draining()) {
            if (res >= 0) ::close(res);
            return;
        }
        // Out of descriptors, the acceptor sheds what waits and pauses: the
        // next accept is submitted by on_tick or close once it resumes.
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
                auto conn = std::make_unique<UringConn>(std::move(socket));
                UringConn& c = *conn;
                conns_.emplace(&c, std::move(conn));
                arm_recv(c);
            }
        }
        resume_accepting();
    }

    void resume_accepting() {
        if (!policy_.draining() && !accept_in_flight_ && !acceptor_.paused()) arm_accept();
    }

    void on_recv(UringConn& c, int res) {
        c.recv_in_flight = false;
        if (c.closing) return release(c);
        if (res < 0) return close(c);
        if (c.state.write_shut) {  // after our close: discard until the client's
            if (res == 0) return close(c);
            return arm_recv(c);
        }
        if (res == 0) {
            c.state.peer_done = true;
            return settle(c);
        }
        const auto n = static_cast<std::size_t>(res);
        c.state.last_activity = Clock::now();
        try {
            io_.received(c.receive_area.get(), n, c.in);
            s_.stats->bytes_in.fetch_add(n, std::memory_order_relaxed);
            s_.stats->messages.fetch_add(io_.handle(*s_.handler, c.in, c.pending),
                                         std::memory_order_relaxed);
        } catch (const Error& e) {
            if (is_frame_error(e)) s_.dropped_for(e);
            return close(c);
        }
        kick_send(c);
        settle(c);
    }

    void on_send(UringConn& c, int res) {
        c.send_in_flight = false;
        if (c.closing) return release(c);
        if (res < 0) return close(c);
        const auto n = static_cast<std::size_t>(res);
        try {
            c.sending.sent(n);
        } catch (const Error&) {
            return close(c);
        }
        s_.stats->bytes_out.fetch_add(n, std::memory_order_relaxed);
        c.state.last_activity = Clock::now();
        kick_send(c);
        settle(c);
    }

    /// After any completion, what the policy says: close, shut down, or keep receiving.
    void settle(UringConn& c) {
        switch (policy_.settle(c.state, queued(c), Clock::now())) {
            case ConnectionStep::close:
                return close(c);
            case ConnectionStep::shut_write:
                ::shutdown(c.socket.fd(), SHUT_WR);
                break;
            case ConnectionStep::serve:
                break;
        }
        if (policy_.wants_read(c.state, queued(c))) arm_recv(c);
    }

    void close(UringConn& c) {
        if (c.closing) return;
        c.closing = true;
        --s_.stats->open;
        acceptor_.connection_closed();
        resume_accepting();
        // The kernel may still hold this connection's buffers: cancel, and
        // free only once every operation has completed.
        if (c.recv_in_flight) io_uring_prep_cancel(next_sqe(&ignored_op_), &c.recv_op, 0);
        if (c.send_in_flight) io_uring_prep_cancel(next_sqe(&ignored_op_), &c.send_op, 0);
        release(c);
    }

    void release(UringConn& c) {
        if (c.recv_in_flight || c.send_in_flight) return;
        conns_.erase(&c);
        if (policy_.draining() && conns_.empty()) done_ = true;
    }

    void on_stop() {
        policy_.start_draining(Clock::now());
        io_uring_prep_cancel(next_sqe(&ignored_op_), &accept_op_, 0);
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

    void on_tick() {
        const auto now = Clock::now();
        acceptor_.tick(now);  // a pause ends within a tick of its time
        resume_accepting();
        std::vector<UringConn*> expired;
        for (auto& [key, conn] : conns_) {
            UringConn& c = *conn;
            if (c.closing) continue;
            const ConnectionExpiry why = policy_.expiry(c.state, now);
            if (why == ConnectionExpiry::none) continue;
            if (why == ConnectionExpiry::stalled) ++s_.stats->dropped_stalled;
            if (why == ConnectionExpiry::idle) ++s_.stats->dropped_idle;
            expired.push_back(key);
        }
        for (UringConn* c : expired)
            close(*c);
        const auto drain_end = policy_.drain_deadline();
        if (drain_end && now >= *drain_end && conns_.empty()) done_ = true;
        if (!done_) arm_tick();
    }

    StreamServer::Shared& s_;
    Socket& listener_;
    io_uring ring_{};
    Acceptor acceptor_;
    std::uint64_t shed_ = 0;  // refusals already counted in the stats
    bool accept_in_flight_ = false;
    // The handler call and the message checks; receives go to each connection's own area.
    ConnectionIo io_;
    ConnectionPolicy policy_;
    std::size_t recv_size_ = kRecvSize;
    int recv_flags_ = 0;
    bool is_tcp_ = true;
    std::unordered_map<UringConn*, std::unique_ptr<UringConn>> conns_;
    Op accept_op_{OpKind::accept, nullptr};
    Op stop_op_{OpKind::stop, nullptr};
    Op tick_op_{OpKind::tick, nullptr};
    Op ignored_op_{OpKind::ignored, nullptr};
    __kernel_timespec tick_{};
    bool done_ = false;
};

}  // namespace

void run_uring(StreamServer::Shared& s) {
    UringWorker worker(s);
    worker.run();
}

}  // namespace ferry::detail
