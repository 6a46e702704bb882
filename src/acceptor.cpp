// Acceptor and LoopAcceptor: accepting without spinning when out of descriptors (the spare
// descriptor trick, then a pause), with the refusals counted and reported at most once a second.
#include "ferry/acceptor.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <system_error>
#include <utility>

#include "ferry/error.hpp"

namespace ferry {
namespace {

/// Pending connections that failed on their own, skipped per accept() call
/// before it returns (the loop comes back if more are waiting).
constexpr int kSkipsPerCall = 64;
/// Connections accepted and closed in one go while out of descriptors: the
/// listen backlog is finite, and this bounds the work of one call anyway.
constexpr int kMaxShed = 4096;

/// The spare is an eventfd: it needs no file system (a chroot may have no
/// /dev/null), and costs the kernel next to nothing.
Fd open_spare() noexcept {
    return Fd(::eventfd(0, EFD_CLOEXEC));
}

bool out_of_resources(int err) {
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/// accept(2): the pending connection failed, not the listener. Linux passes a
/// connection's pending network errors on through accept, to be treated like EAGAIN.
bool pending_connection_failed(int err) {
    switch (err) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:  // refused by a firewall rule
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
        case ETIMEDOUT:
            return true;
        default:
            return false;
    }
}

/// Whether a connection is waiting, without blocking.
bool pending(int listener) {
    pollfd p{listener, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

}  // namespace

// ---- Acceptor ---------------------------------------------------------------------------

Acceptor::Acceptor(const Socket& listener, AcceptorOptions options)
    : listener_(listener),
      options_(std::move(options)),
      spare_(open_spare()),
      refusals_(options_.report_period) {
    if (!spare_) throw_errno("eventfd (the spare descriptor of an acceptor)");
    read_limit();
}

Acceptor::~Acceptor() {
    try {
        report(refusals_.take_waiting());
    } catch (...) {
        // A destructor must not throw; the count is lost, nothing else.
    }
}

void Acceptor::read_limit() noexcept {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
        limit.rlim_cur > static_cast<rlim_t>(INT_MAX)) {
        highest_ = INT_MAX;
        return;
    }
    highest_ = static_cast<long long>(limit.rlim_cur) - 1 - options_.reserve;
}

std::optional<Accepted> Acceptor::accept() {
    if (paused_) {
        tick();
        if (paused_) return std::nullopt;
    }
    for (int skipped = 0; skipped < kSkipsPerCall; ++skipped) {
        Address peer;
        *peer.size_ptr() = Address::capacity();
        // accept4 itself rather than Socket::accept: when the table is full the
        // errno decides what happens, and no exception object needs to be made.
        const int fd =
            ::accept4(listener_.fd(), peer.data(), peer.size_ptr(), options_.flags | SOCK_CLOEXEC);
        if (fd >= 0) return admit(fd, peer);
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) return std::nullopt;
        if (out_of_resources(err)) {
            run_out(err);
            return std::nullopt;
        }
        if (!pending_connection_failed(err)) throw_errno(err, where());
    }
    return std::nullopt;
}

std::optional<Accepted> Acceptor::adopt(int result) {
    if (result >= 0) return admit(result, Address());
    const int err = -result;
    if (out_of_resources(err)) {
        run_out(err);
        return std::nullopt;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || pending_connection_failed(err)) return std::nullopt;
    throw_errno(err, where());
}

std::string Acceptor::where() const {
    try {
        return "accept on " + listener_.local_address().to_string();
    } catch (const Error&) {
        return "accept on descriptor " + std::to_string(listener_.fd());
    }
}

std::optional<Accepted> Acceptor::admit(int fd, const Address& peer) {
    if (fd > highest_) {
        // Into the reserve: this one and every one waiting are closed, as if
        // the table were full (there is room to take them, so no spare is needed).
        ::close(fd);
        pause_after(1 + shed_backlog(), "out of descriptors",
                    "keeping the last " + std::to_string(options_.reserve) +
                        " descriptors below RLIMIT_NOFILE free");
        return std::nullopt;
    }
    Accepted accepted;
    accepted.socket = Socket(Fd(fd));
    accepted.peer = peer;
    return accepted;
}

void Acceptor::run_out(int err) {
    // The spare descriptor trick (muduo's Acceptor, libuv's uv__emfile_trick):
    // with the spare given up there is room for one more descriptor, so each
    // waiting connection can be taken off the backlog and closed, and its
    // client sees end of stream at once instead of waiting in a queue that
    // does not move. Without a spare (it could not be opened again last
    // time) they wait for the pause to end.
    std::uint64_t shed = 0;
    if (spare_) {
        spare_.reset();
        shed = shed_backlog();
        spare_ = open_spare();
    }
    const bool memory = err == ENOBUFS || err == ENOMEM;
    pause_after(shed, memory ? "out of memory" : "out of descriptors",
                std::system_category().message(err));
}

std::uint64_t Acceptor::shed_backlog() {
    std::uint64_t shed = 0;
    for (int i = 0; i < kMaxShed && pending(listener_.fd()); ++i) {
        const int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
            ::close(fd);
            ++shed;
        } else if (!pending_connection_failed(errno)) {
            break;
        }
    }
    return shed;
}

void Acceptor::pause_after(std::uint64_t shed, std::string what, std::string reason) {
    // Paused either way: the listener stays readable while the table is full,
    // and watching it would spin the owner's loop.
    paused_ = true;
    resume_at_ = Clock::now() + options_.pause;
    what_ = std::move(what);
    reason_ = std::move(reason);
    if (shed > 0) report(refusals_.add(Clock::now(), shed));
}

void Acceptor::report(std::uint64_t count) {
    if (count == 0 || !options_.on_warning) return;
    const auto period =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.report_period);
    const std::string since = period <= std::chrono::seconds(1)
                                  ? "the last second"
                                  : "the last " + std::to_string(period.count()) + " ms";
    options_.on_warning(what_ + ": " + std::to_string(count) +
                        (count == 1 ? " connection" : " connections") + " refused in " + since +
                        " (" + reason_ + ")");
}

void Acceptor::connection_closed() noexcept {
    if (paused_) resume();
}

void Acceptor::resume() noexcept {
    paused_ = false;
    if (!spare_) spare_ = open_spare();
    read_limit();  // prlimit(1) may have changed it meanwhile
}

void Acceptor::tick(Clock::time_point now) {
    if (paused_ && now >= resume_at_) resume();
    report(refusals_.take_due(now));
}

std::optional<Clock::time_point> Acceptor::next_deadline() const noexcept {
    std::optional<Clock::time_point> at = refusals_.next_due();
    if (paused_ && (!at || resume_at_ < *at)) at = resume_at_;
    return at;
}

// ---- LoopAcceptor -----------------------------------------------------------------------

LoopAcceptor::LoopAcceptor(EventLoop& loop, Socket& listener, OnConnection on_connection,
                           AcceptorOptions options)
    : loop_(loop),
      listener_fd_(listener.fd()),
      max_per_wakeup_(std::max(1u, options.max_per_wakeup)),
      on_connection_(std::move(on_connection)),
      acceptor_(listener, std::move(options)) {
    // Readiness is a hint: another process may take the connection first, and
    // accept must then say EAGAIN rather than block the loop.
    listener.set_blocking(false);
    settle();
}

LoopAcceptor::~LoopAcceptor() {
    stop();
}

void LoopAcceptor::stop() {
    stopped_ = true;
    if (watching_) loop_.unwatch(listener_fd_);
    watching_ = false;
    if (timer_ != 0) loop_.cancel_timer(timer_);
    timer_ = 0;
}

void LoopAcceptor::connection_closed() {
    acceptor_.connection_closed();
    settle();
}

void LoopAcceptor::on_readable() {
    for (unsigned i = 0; i < max_per_wakeup_ && !stopped_; ++i) {
        std::optional<Accepted> client = acceptor_.accept();
        if (!client) break;
        on_connection_(std::move(*client));
    }
    settle();
}

void LoopAcceptor::on_timer() {
    timer_ = 0;
    acceptor_.tick();
    settle();
}

void LoopAcceptor::settle() {
    if (stopped_) return;
    const bool want = !acceptor_.paused();
    if (want && !watching_) {
        loop_.watch(listener_fd_, events::readable, [this](std::uint32_t) { on_readable(); });
        watching_ = true;
    } else if (!want && watching_) {
        loop_.unwatch(listener_fd_);
        watching_ = false;
    }
    const std::optional<Clock::time_point> at = acceptor_.next_deadline();
    if (timer_ != 0 && (!at || *at != timer_at_)) {
        loop_.cancel_timer(timer_);
        timer_ = 0;
    }
    if (at && timer_ == 0) {
        timer_at_ = *at;
        timer_ = loop_.add_timer(*at - Clock::now(), [this] { on_timer(); });
    }
}

}  // namespace ferry
