// The blocking server models: iterative, thread per client, thread pool, process per client.
// Each runs serve_blocking() per connection; they differ in who runs it.
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include "ferry/server/connection_policy.hpp"
#include "shared.hpp"

namespace ferry::detail {
namespace {

int ms_until(Clock::time_point deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000));
}

/// Waits for a connection on the listener (not while accepting is paused) or
/// for the stop signal, at most until the acceptor's next deadline; false once stopping.
bool wait_for_client(StreamServer::Shared& s, Acceptor& acceptor, int timeout_ms = -1) {
    for (;;) {
        int wait = timeout_ms;
        if (const auto at = acceptor.next_deadline())
            wait = wait < 0 ? ms_until(*at) : std::min(wait, ms_until(*at));
        pollfd fds[2] = {{s.stop.get(), POLLIN, 0}, {s.listeners.front().fd(), POLLIN, 0}};
        const int rc = ::poll(fds, acceptor.paused() ? 1 : 2, wait);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) throw_errno("poll");
        if (fds[0].revents != 0) return false;
        acceptor.tick();
        return true;  // a client, or the timeout: the caller looks
    }
}

}  // namespace

void serve_blocking(Socket socket, StreamServer::Shared& s) {
    ServerStats& stats = *s.stats;
    ConnectionIo io = s.make_io();
    ConnectionPolicy policy(s.limits);  // draining is this connection's: it sees the stop signal
    ConnectionState state;
    state.last_activity = Clock::now();
    Buffer in;
    Outbox out;
    char discard[4096];

    try {
        io.prepare(socket.fd());
        for (;;) {
            const ConnectionStep step = policy.settle(state, out.size(), Clock::now());
            if (step == ConnectionStep::close) break;
            if (step == ConnectionStep::shut_write) ::shutdown(socket.fd(), SHUT_WR);
            const bool want_read = policy.wants_read(state, out.size());
            const short want = static_cast<short>(
                (want_read ? POLLIN : 0) | (policy.wants_write(state, out.size()) ? POLLOUT : 0));
            pollfd fds[2] = {{socket.fd(), want, 0},
                             {s.stop.get(), static_cast<short>(policy.draining() ? 0 : POLLIN), 0}};
            poll_until(fds, policy.next_deadline(state));
            const auto now = Clock::now();
            if (fds[1].revents != 0) {
                policy.start_draining(now);
                continue;
            }
            const ConnectionExpiry why = policy.expiry(state, now);
            if (why == ConnectionExpiry::stalled) ++stats.dropped_stalled;
            if (why == ConnectionExpiry::idle) ++stats.dropped_idle;
            if (why != ConnectionExpiry::none) break;

            const short got = fds[0].revents;
            if (state.write_shut) {
                // Waiting for the client's close after ours: what it still sends was never
                // accepted.
                if ((got & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
                const ssize_t n = ::recv(socket.fd(), discard, sizeof discard, 0);
                if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) break;
                continue;
            }
            if (want_read && (got & (POLLIN | POLLHUP | POLLERR))) {
                const IoResult n = io.read(socket.fd(), in);
                if (n && *n == 0) state.peer_done = true;
                if (n && *n > 0) {
                    stats.bytes_in += *n;
                    stats.messages += io.handle(*s.handler, in, out);
                    state.last_activity = now;
                }
            }
            // Sent at once rather than after another poll: a reply that fits
            // the socket buffer costs no extra round.
            if (policy.wants_write(state, out.size())) {
                if (const IoResult n = out.write_to(socket.fd()); n && *n > 0) {
                    stats.bytes_out += *n;
                    state.last_activity = now;
                }
            }
        }
    } catch (const Error& e) {
        if (is_frame_error(e)) s.dropped_for(e);
        // Anything else (reset by peer, broken pipe) ends this connection only.
    }
}

void run_iterative(StreamServer::Shared& s) {
    Socket& listener = s.listeners.front();
    listener.set_blocking(false);
    Acceptor acceptor(listener, s.acceptor_options());
    std::uint64_t shed = 0;
    while (wait_for_client(s, acceptor)) {
        auto client = acceptor.accept();
        s.count_shed(acceptor, shed);
        if (!client) continue;
        ++s.stats->accepted;
        ++s.stats->open;
        serve_blocking(std::move(client->socket), s);
        --s.stats->open;
        acceptor.connection_closed();
    }
}

void run_thread_per_client(StreamServer::Shared& s) {
    Socket& listener = s.listeners.front();
    listener.set_blocking(false);
    Acceptor acceptor(listener, s.acceptor_options());
    std::uint64_t shed = 0;
    struct Worker {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };
    std::list<Worker> workers;
    const auto reap = [&workers](bool all) {
        for (auto it = workers.begin(); it != workers.end();) {
            if (all || it->done->load()) {
                it->thread.join();
                it = workers.erase(it);
            } else {
                ++it;
            }
        }
    };
    while (wait_for_client(s, acceptor)) {
        reap(false);
        auto client = acceptor.accept();
        s.count_shed(acceptor, shed);
        if (!client) continue;
        if (s.stats->open.load() >= s.limits.max_connections) {
            ++s.stats->refused;
            refuse(std::move(client->socket), *s.handler);
            continue;
        }
        ++s.stats->accepted;
        ++s.stats->open;
        auto done = std::make_shared<std::atomic<bool>>(false);
        workers.push_back({std::thread([&s, done, sock = std::move(client->socket)]() mutable {
                               serve_blocking(std::move(sock), s);
                               --s.stats->open;
                               *done = true;
                           }),
                           done});
    }
    reap(true);  // each thread drains its own connection when it sees the stop signal
}

void run_pool(StreamServer::Shared& s) {
    Socket& listener = s.listeners.front();
    listener.set_blocking(false);
    Acceptor acceptor(listener, s.acceptor_options());
    std::uint64_t shed = 0;
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Socket> queue;
    bool closing = false;

    std::vector<std::thread> pool;
    for (unsigned i = 0; i < s.limits.threads; ++i) {
        pool.emplace_back([&] {
            for (;;) {
                Socket next;
                {
                    std::unique_lock lock(mutex);
                    ready.wait(lock, [&] { return closing || !queue.empty(); });
                    if (queue.empty()) return;  // closing, and nothing left to serve
                    next = std::move(queue.front());
                    queue.pop_front();
                }
                serve_blocking(std::move(next), s);
                --s.stats->open;
            }
        });
    }
    while (wait_for_client(s, acceptor)) {
        auto client = acceptor.accept();
        s.count_shed(acceptor, shed);
        if (!client) continue;
        // Connections waiting for a thread count too: the queue is memory the client holds.
        if (s.stats->open.load() >= s.limits.max_connections) {
            ++s.stats->refused;
            refuse(std::move(client->socket), *s.handler);
            continue;
        }
        ++s.stats->accepted;
        ++s.stats->open;
        {
            std::lock_guard lock(mutex);
            queue.push_back(std::move(client->socket));
        }
        ready.notify_one();
    }
    {
        std::lock_guard lock(mutex);
        closing = true;
    }
    ready.notify_all();
    for (std::thread& t : pool)
        t.join();
}

void run_fork(StreamServer::Shared& s) {
    Socket& listener = s.listeners.front();
    listener.set_blocking(false);
    Acceptor acceptor(listener, s.acceptor_options());
    std::uint64_t shed = 0;
    std::vector<pid_t> children;
    const auto reap = [&](bool block) {
        for (auto it = children.begin(); it != children.end();) {
            if (::waitpid(*it, nullptr, block ? 0 : WNOHANG) == *it) {
                it = children.erase(it);
                --s.stats->open;
                acceptor.connection_closed();
            } else {
                ++it;
            }
        }
    };
    // Children are reaped on every turn; the timeout bounds how long a
    // finished child stays a zombie while no client arrives. (A SIGCHLD
    // handler would be process-wide state, which the library never touches.)
    while (wait_for_client(s, acceptor, 200)) {
        reap(false);
        auto client = acceptor.accept();
        s.count_shed(acceptor, shed);
        if (!client) continue;
        if (children.size() >= s.limits.max_connections) {
            ++s.stats->refused;
            refuse(std::move(client->socket), *s.handler);
            continue;
        }
        const pid_t pid = ::fork();
        if (pid < 0) throw_errno("fork");
        if (pid == 0) {
            // The child serves this one client and leaves with _exit: no
            // destructors or atexit handlers of the parent's state run twice.
            listener.close();
            serve_blocking(std::move(client->socket), s);
            ::_exit(0);
        }
        ++s.stats->accepted;
        ++s.stats->open;
        children.push_back(pid);
    }
    // Every child sees the same stop eventfd and drains by itself; past the
    // drain timeout (and a grace second) the stragglers are killed.
    const auto deadline = Clock::now() + s.limits.drain_timeout + std::chrono::seconds(1);
    while (!children.empty() && Clock::now() < deadline) {
        reap(false);
        if (!children.empty()) ::poll(nullptr, 0, 20);
    }
    for (const pid_t pid : children)
        ::kill(pid, SIGKILL);
    reap(true);
}

}  // namespace ferry::detail
