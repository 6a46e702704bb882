// StreamServer: binds the listeners, then hands over to the chosen model.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <new>

#include "ferry/duration.hpp"
#include "shared.hpp"

namespace ferry {
namespace {

constexpr int kBacklog = 4096;

Socket make_listener(const Address& address, int socktype, bool reuse_port) {
    Socket s(address.family(), socktype);
    if (address.is_ip()) {
        s.set_reuse_address(true);
        if (reuse_port) s.set_reuse_port(true);
        if (address.family() == AF_INET6) s.set_v6_only(true);
    }
    s.bind(address);
    s.listen(kBacklog);
    return s;
}

}  // namespace

std::string_view model_name(Model model) {
    switch (model) {
        case Model::iterative:
            return "iterative";
        case Model::thread:
            return "thread";
        case Model::pool:
            return "pool";
        case Model::fork:
            return "fork";
        case Model::select:
            return "select";
        case Model::poll:
            return "poll";
        case Model::epoll:
            return "epoll";
        case Model::uring:
            return "uring";
    }
    return "?";
}

std::optional<Model> parse_model(std::string_view name) {
    for (Model m : {Model::iterative, Model::thread, Model::pool, Model::fork, Model::select,
                    Model::poll, Model::epoll, Model::uring})
        if (model_name(m) == name) return m;
    return std::nullopt;
}

void StreamServer::StatsMapping::operator()(ServerStats* stats) const noexcept {
    stats->~ServerStats();
    ::munmap(stats, sizeof(ServerStats));
}

namespace {

ServerStats* map_shared_stats() {
    void* memory = ::mmap(nullptr, sizeof(ServerStats), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw_errno("mmap for server counters");
    static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
                  "counters shared with forked children must be lock-free");
    return new (memory) ServerStats();
}

}  // namespace

StreamServer::StreamServer(const Address& address, Model model, ServerLimits limits,
                           const StreamHandler& handler, int socktype)
    : stats_(map_shared_stats()), shared_(std::make_unique<Shared>()) {
    if (limits.threads == 0) throw_errno(EINVAL, "a server with 0 threads");
    if (limits.max_connections == 0) throw_errno(EINVAL, "a server with room for 0 connections");
    if (model == Model::uring && (limits.uring_buffers == 0 || limits.uring_buffers > 32768 ||
                                  (limits.uring_buffers & (limits.uring_buffers - 1)) != 0))
        throw_errno(EINVAL, "a ring of " + std::to_string(limits.uring_buffers) +
                                " buffers (a power of two from 1 to 32768)");
    if (socktype != SOCK_STREAM && socktype != SOCK_SEQPACKET)
        throw_errno(EINVAL, "a stream server of socket type " + socktype_name(socktype) +
                                " (SOCK_STREAM or SOCK_SEQPACKET)");
    // SOCK_SEQPACKET over IP would be SCTP, which these models do not speak.
    if (socktype == SOCK_SEQPACKET && address.family() != AF_UNIX)
        throw_errno(EINVAL, "a SOCK_SEQPACKET server at " + address.to_string() +
                                " (Unix socket paths only)");
    if (socktype == SOCK_SEQPACKET && limits.max_message == 0)
        throw_errno(EINVAL, "a SOCK_SEQPACKET server for messages of at most 0 bytes");
    shared_->socktype = socktype;
    // A huge timeout means practically never, and a deadline computed from it cannot overflow.
    if (limits.idle_timeout) limits.idle_timeout = clamp_wait(*limits.idle_timeout);
    limits.stalled_timeout = clamp_wait(limits.stalled_timeout);
    limits.drain_timeout = clamp_wait(limits.drain_timeout);
    shared_->limits = limits;
    shared_->handler = &handler;
    shared_->stats = stats_.get();
    shared_->stop.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!shared_->stop) throw_errno("eventfd");
    shared_->model = model;

    const bool per_loop = model == Model::epoll && limits.threads > 1 && address.is_ip();
    shared_->listeners.push_back(make_listener(address, socktype, per_loop));
    if (per_loop) {
        // The other loops bind the port the first one got (port 0 resolved).
        Address bound = shared_->listeners.front().local_address();
        for (unsigned i = 1; i < limits.threads; ++i)
            shared_->listeners.push_back(make_listener(bound, socktype, true));
    }
}

StreamServer::~StreamServer() = default;

void StreamServer::on_warning(std::function<void(std::string_view)> fn) {
    shared_->on_warning = std::move(fn);
}

Address StreamServer::local_address() const {
    return shared_->listeners.front().local_address();
}

void StreamServer::stop() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(shared_->stop.get(), &one, sizeof one);
}

void StreamServer::run() {
    switch (shared_->model) {
        case Model::iterative:
            return detail::run_iterative(*shared_);
        case Model::thread:
            return detail::run_thread_per_client(*shared_);
        case Model::pool:
            return detail::run_pool(*shared_);
        case Model::fork:
            return detail::run_fork(*shared_);
        case Model::select:
            return detail::run_loops(*shared_, Backend::select);
        case Model::poll:
            return detail::run_loops(*shared_, Backend::poll);
        case Model::epoll:
            return detail::run_loops(*shared_, Backend::epoll);
        case Model::uring:
            return detail::run_uring(*shared_);
    }
}

namespace detail {

void refuse(Socket socket, const StreamHandler& handler) {
    const std::string_view text = handler.refusal();
    // Best effort: a fresh socket's send buffer takes a line; never block on it.
    [[maybe_unused]] const ssize_t n =
        ::send(socket.fd(), text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(socket.fd(), SHUT_WR);
}

}  // namespace detail
}  // namespace ferry
