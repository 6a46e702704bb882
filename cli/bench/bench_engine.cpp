// The engine of `ferry bench`: connections made up front, then one epoll loop per thread.
//
// The loop must cost less per request than the servers it measures: each
// thread drives its connections with raw epoll (level-triggered), one recv of
// up to 64 KiB per readiness, one send per batch of replies, a single
// clock_gettime per recv (the vDSO: no system call), and no allocation while
// requests flow: the in-flight timestamps of every connection live in one
// array sized before the start, and every connection reads into the
// thread's one 64 KiB buffer (the echoed bytes are counted, not kept).
//
// One connection with one request in flight (latency runs, `-c 1`) skips
// epoll: the socket blocks in recv for at most kBlockingSlice, so a request
// costs a send and a recv, as in sockperf or a plain client loop, instead of
// an epoll_pwait2 more. The deadlines and the stop signal are looked at
// between two slices, never later than an epoll loop would.
#include "bench/bench_engine.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>
#include <unordered_map>

#include <fmt/core.h>

#include "common/command.hpp"
#include "ferry/address.hpp"
#include "ferry/create.hpp"
#include "ferry/error.hpp"

namespace ferry::cli {
namespace {

using Nanos = std::int64_t;  // CLOCK_MONOTONIC, in nanoseconds
constexpr Nanos kSecond = 1'000'000'000;
constexpr std::size_t kReadSize = 64 * 1024;
constexpr std::size_t kMaxPattern = 1024 * 1024;
constexpr int kMaxEvents = 512;
constexpr std::uint64_t kStopToken = UINT64_MAX;      // epoll data of the signalfd
constexpr std::uint64_t kWakeToken = UINT64_MAX - 1;  // epoll data of the coordinator's eventfd
// After SIGINT/SIGTERM the replies in flight are awaited this long at most (not
// the whole drain): the report comes at once even when the server never answers.
constexpr Nanos kInterruptDrain = 250'000'000;
// The shortest --udp-timeout the loop honours: a deadline always after the send,
// so that expiring one datagram can never expire the one sent in its place.
constexpr Nanos kMinUdpTimeout = 1'000;
// Non-blocking connects in progress at once: enough to connect 10,000
// connections in well under a second on loopback, few enough not to
// overflow a listen backlog of 4096 while the server is still accepting.
constexpr std::size_t kMaxConnecting = 1024;
// Descriptors besides the connections: stdio, epoll, /proc reads, spares.
// The longest a lone connection blocks in recv (or in send) before the loop
// looks at its deadlines, the stop signal and the other descriptors again.
constexpr Nanos kBlockingSlice = 10'000'000;
// Requests of at most this many bytes are sent on a blocking socket: well
// inside the socket buffers, so a send never waits on the peer reading.
constexpr std::size_t kBlockingMaxSize = 16 * 1024;
constexpr std::size_t kSpareFds = 64;

Nanos now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<Nanos>(ts.tv_sec) * kSecond + ts.tv_nsec;
}

double seconds_of(Nanos ns) {
    return static_cast<double>(ns) / 1e9;
}

std::string errno_text(int err) {
    return std::error_code(err, std::system_category()).message();
}

// ---------------------------------------------------------------------------
// CPU time: this process (getrusage) and the server (/proc/PID/stat).

double own_cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto tv = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return tv(usage.ru_utime) + tv(usage.ru_stime);
}

/// utime + stime of every thread of `pid` (the process line of /proc/PID/stat
/// sums its threads, live and exited), in seconds; nullopt if it is gone.
std::optional<double> process_cpu_seconds(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    // The command name (field 2) is in parentheses and may itself hold spaces
    // and parentheses: the fields that follow start after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(line.substr(close + 1));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    // After ')': state is field 3; utime and stime are fields 14 and 15 (proc(5)).
    for (int n = 3; n <= 15 && fields >> field; ++n) {
        if (n == 14) utime = std::stoull(field);
        if (n == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// ---------------------------------------------------------------------------
// Descriptors and connections.

void raise_fd_limit(std::size_t connections) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) throw_errno("getrlimit RLIMIT_NOFILE");
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        // An unlimited hard limit cannot be the soft one: the kernel caps
        // descriptors at fs.nr_open. Keep the old limit then, checked below.
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    const std::size_t needed = connections + kSpareFds;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed)
        throw Failure(fmt::format(
            "{} connections need about {} descriptors, but the limit is {} (ulimit -Hn)",
            connections, needed, static_cast<unsigned long long>(limit.rlim_cur)));
}

struct Connected {
    std::vector<Socket> sockets;
    Address address;
};

Connected connect_udp(const BenchConfig& c) {
    ResolveHints hints;
    hints.socktype = SOCK_DGRAM;
    const Resolved target = resolve(c.host, c.port, hints).front();
    Connected out;
    out.address = target.address;
    out.sockets.reserve(c.connections);
    try {
        for (std::size_t i = 0; i < c.connections; ++i) {
            Socket s(target.family, SOCK_DGRAM | SOCK_NONBLOCK, target.protocol);
            s.connect(target.address);  // fixes the peer: only its datagrams are received
            out.sockets.push_back(std::move(s));
        }
    } catch (const Error& e) {
        throw Failure(fmt::format("{} ({} of {} sockets connected)", e.what(), out.sockets.size(),
                                  c.connections));
    }
    return out;
}

Connected connect_tcp(const BenchConfig& c) {
    const Nanos deadline = now_ns() + c.connect_timeout.count();
    Connected out;
    out.sockets.reserve(c.connections);
    const auto failure = [&](const std::string& what) {
        return Failure(
            fmt::format("{} ({} of {} connected)", what, out.sockets.size(), c.connections));
    };

    // The first connection tries every address the name resolves to, as
    // create_connection does; the others go where it went.
    try {
        ConnectOptions options;
        options.timeout = c.connect_timeout;
        Socket first = create_connection(c.host, c.port, options);
        first.set_no_delay(true);
        first.set_blocking(false);
        out.address = first.peer_address();
        out.sockets.push_back(std::move(first));
    } catch (const Error& e) {
        if (e.code().category() == resolver_category()) throw;  // no connection was tried
        throw failure(e.what());
    }
    const int family = out.address.family();

    Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) throw_errno("epoll_create1");
    std::unordered_map<int, Socket> connecting;
    std::size_t started = 1;
    epoll_event events[kMaxEvents];
    try {
        while (out.sockets.size() < c.connections) {
            while (started < c.connections && connecting.size() < kMaxConnecting) {
                Socket s(family, SOCK_STREAM | SOCK_NONBLOCK);
                s.set_no_delay(true);
                ++started;
                if (s.connect(out.address)) {
                    out.sockets.push_back(std::move(s));
                    continue;
                }
                epoll_event ev{};
                ev.events = EPOLLOUT;
                ev.data.fd = s.fd();
                if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, s.fd(), &ev) != 0)
                    throw_errno("epoll_ctl");
                const int fd = s.fd();
                connecting.emplace(fd, std::move(s));
            }
            if (connecting.empty()) continue;
            const Nanos left = deadline - now_ns();
            if (left <= 0)
                throw failure(fmt::format("connect to {}: timed out after {} s",
                                          out.address.to_string(),
                                          seconds_text(c.connect_timeout)));
            const int n = ::epoll_wait(epoll.get(), events, kMaxEvents,
                                       static_cast<int>((left + 999'999) / 1'000'000));
            if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
            for (int i = 0; i < n; ++i) {
                auto it = connecting.find(events[i].data.fd);
                Socket s = std::move(it->second);
                connecting.erase(it);
                ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, s.fd(), nullptr);
                s.finish_connect(out.address);
                out.sockets.push_back(std::move(s));
            }
        }
    } catch (const Error& e) {
        throw failure(e.what());
    }
    return out;
}

// ---------------------------------------------------------------------------
// What the threads share: the timeline, the per-second intervals, the CPU
// snapshots. Each worker talks to it once per second, never per request.

struct Timeline {
    Nanos start = 0;    // connections made: warm-up begins, the --rate schedule's origin
    Nanos measure = 0;  // the window opens
    Nanos stop = 0;     // no request is sent from here on (with --requests: the time limit)
};

class Coordinator {
  public:
    Coordinator(const BenchConfig& config, unsigned workers, Timeline timeline,
                const std::function<void(const BenchInterval&)>& on_interval)
        : config_(config), timeline_(timeline), on_interval_(on_interval), done_(workers) {
        wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!wake_) throw_errno("eventfd");
    }

    /// SIGINT/SIGTERM: every worker stops sending and is woken to do so.
    void interrupt(Nanos now) {
        std::lock_guard lock(mutex_);
        if (interrupted_.load(std::memory_order_relaxed)) return;
        interrupted_at_ = now;
        interrupted_.store(true, std::memory_order_relaxed);
        wake_all();
    }
    [[nodiscard]] bool interrupted() const noexcept {
        return interrupted_.load(std::memory_order_relaxed);
    }

    /// A worker failed (the run ends with its error): the others stop at once.
    void abort() {
        std::lock_guard lock(mutex_);
        aborted_.store(true, std::memory_order_relaxed);
        wake_all();
    }
    [[nodiscard]] bool aborted() const noexcept { return aborted_.load(std::memory_order_relaxed); }

    /// Readable once interrupt() or abort() was called; never read, so that
    /// every worker's epoll sees it.
    [[nodiscard]] int wake_fd() const noexcept { return wake_.get(); }

    void window_opened() {
        std::lock_guard lock(mutex_);
        if (opened_) return;
        opened_ = true;
        cpu_start_ = own_cpu_seconds();
        if (config_.server_pid) server_start_ = process_cpu_seconds(*config_.server_pid);
    }

    void publish(std::size_t k, const Histogram& histogram, std::uint64_t replies) {
        std::lock_guard lock(mutex_);
        while (base_ + pending_.size() <= k)
            pending_.emplace_back();
        Pending& p = pending_[k - base_];
        p.histogram.add(histogram);
        p.replies += replies;
        ++p.reported;
        complete_ready();
    }

    /// A worker is done; `last` is the last interval it published (none if the
    /// window never opened for it).
    void finished(unsigned worker, std::optional<std::size_t> last) {
        std::lock_guard lock(mutex_);
        done_[worker] = Done{last};
        end_ = now_ns();
        if (std::all_of(done_.begin(), done_.end(), [](const auto& d) { return d.has_value(); })) {
            if (opened_) {
                cpu_end_ = own_cpu_seconds();
                if (config_.server_pid) server_end_ = process_cpu_seconds(*config_.server_pid);
            }
        }
        complete_ready();
    }

    /// After every worker has finished: the window, the intervals, the CPU.
    void fill(BenchResult& r) {
        std::lock_guard lock(mutex_);
        const double window = seconds_of(std::max<Nanos>(0, end_ - timeline_.measure));
        // A duration run's window is the duration asked for (the replies that
        // arrive while the last requests drain belong to it); shorter only if
        // every connection closed first. A --requests run lasts until its last reply.
        const double asked = seconds_of(timeline_.stop - timeline_.measure);
        r.seconds = config_.requests ? window : std::min(window, asked);
        r.interrupted = interrupted_.load(std::memory_order_relaxed);
        if (r.interrupted && !config_.requests)
            r.seconds = std::min(
                r.seconds, seconds_of(std::max<Nanos>(0, interrupted_at_ - timeline_.measure)));
        if (!opened_) r.seconds = 0;
        r.intervals = intervals_;
        if (!r.intervals.empty()) {
            BenchInterval& last = r.intervals.back();
            last.end = std::max(last.start, r.seconds);
        }
        if (opened_) {
            r.client_cpu_seconds = cpu_end_ - cpu_start_;
            if (config_.server_pid) {
                if (server_start_ && server_end_)
                    r.server_cpu_seconds = *server_end_ - *server_start_;
                else
                    r.server_cpu_note =
                        fmt::format("process {} ended during the run", *config_.server_pid);
            }
        } else if (config_.server_pid) {
            r.server_cpu_note = "the window never opened";
        }
    }

  private:
    void wake_all() {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof one);
    }

    struct Pending {
        Histogram histogram;
        std::uint64_t replies = 0;
        unsigned reported = 0;
    };
    struct Done {
        std::optional<std::size_t> last;
    };

    // An interval is complete once every worker that reached it has published it.
    void complete_ready() {
        while (!pending_.empty()) {
            unsigned expected = 0;
            for (const auto& d : done_)
                if (!d || (d->last && *d->last >= base_)) ++expected;
            const Pending& p = pending_.front();
            if (p.reported < expected) return;
            BenchInterval interval;
            interval.start = static_cast<double>(base_);
            interval.end =
                std::min(static_cast<double>(base_ + 1),
                         config_.requests ? 1e300 : seconds_of(timeline_.stop - timeline_.measure));
            interval.replies = p.replies;
            interval.p50_ns = p.histogram.percentile(50);
            interval.p99_ns = p.histogram.percentile(99);
            interval.max_ns = p.histogram.max();
            intervals_.push_back(interval);
            pending_.pop_front();
            ++base_;
            if (on_interval_) on_interval_(interval);
        }
    }

    const BenchConfig& config_;
    Timeline timeline_;
    const std::function<void(const BenchInterval&)>& on_interval_;
    std::mutex mutex_;
    std::deque<Pending> pending_;  // pending_[0] is interval base_
    std::size_t base_ = 0;
    std::vector<std::optional<Done>> done_;
    std::vector<BenchInterval> intervals_;
    Nanos end_ = 0;
    bool opened_ = false;
    std::atomic<bool> interrupted_{false};
    std::atomic<bool> aborted_{false};
    Fd wake_;
    Nanos interrupted_at_ = 0;
    double cpu_start_ = 0, cpu_end_ = 0;
    std::optional<double> server_start_, server_end_;
};

// ---------------------------------------------------------------------------
// One thread's share of the connections.

struct Counters {
    std::uint64_t sent = 0, replies = 0, lost_on_close = 0, lost_at_end = 0, lost_udp = 0;
    std::uint64_t errors = 0, stray = 0, behind = 0;
    std::size_t closed = 0;
    std::string first_error;
};

class Worker {
  public:
    Worker(const BenchConfig& config, Coordinator& coordinator, Timeline timeline, unsigned id,
           std::vector<Socket> sockets, std::size_t first_global, std::uint64_t quota,
           std::string peer, int stop_fd)
        : c_(config),
          coordinator_(coordinator),
          t_(timeline),
          id_(id),
          peer_(std::move(peer)),
          sockets_(std::move(sockets)),
          conns_(sockets_.size()),
          stamps_(sockets_.size() * config.pipeline),
          read_buffer_(kReadSize),
          quota_(quota),
          first_global_(first_global),
          udp_timeout_(std::max(config.udp_timeout.count(), kMinUdpTimeout)),
          next_tick_(timeline.measure + kSecond) {
        fill_pattern();
        if (config.rate > 0)
            period_ = 1e9 / config.rate;  // ns between two requests of the whole run
        if (config.udp) {
            std::size_t capacity = 1024;
            while (capacity < 2 * conns_.size())
                capacity *= 2;
            timeouts_.resize(capacity);
        }
        epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
        if (!epoll_) throw_errno("epoll_create1");
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            conns_[i].fd = sockets_[i].fd();
            conns_[i].open = true;
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, conns_[i].fd, &ev) != 0)
                throw_errno("epoll_ctl");
        }
        open_ = conns_.size();
        blocking_ = conns_.size() == 1 && config.pipeline == 1 && config.rate <= 0 &&
                    config.size <= kBlockingMaxSize;
        if (blocking_) {
            const timeval slice{0, static_cast<suseconds_t>(kBlockingSlice / 1000)};
            sockets_[0].set_option(SOL_SOCKET, SO_RCVTIMEO, slice);
            sockets_[0].set_option(SOL_SOCKET, SO_SNDTIMEO, slice);
            sockets_[0].set_blocking(true);
        }
        watch(coordinator.wake_fd(), kWakeToken);
        if (stop_fd >= 0) {
            watch(stop_fd, kStopToken);
            stop_fd_ = stop_fd;
        }
        total_connections_ = static_cast<double>(config.connections);
    }

    void run();

    Counters counters;
    Histogram latency;

  private:
    struct Conn {
        int fd = -1;
        std::uint32_t head = 0;      // oldest in-flight slot of this connection's stamps
        std::uint32_t inflight = 0;  // requests sent, reply not complete
        std::size_t unsent = 0;      // TCP: request bytes not yet accepted by send()
        std::size_t pattern_at = 0;  // TCP: where in pattern_ the next send starts
        std::size_t partial = 0;     // TCP: bytes of the oldest reply received so far
        std::uint64_t assigned = 0;  // --rate: requests whose scheduled time has come
        std::uint64_t issued = 0;    // --rate: requests sent (the next one's number)
        std::uint64_t tag = 0;       // UDP: tag of the datagram in flight
        bool writing = false;        // EPOLLOUT asked for
        bool open = false;
    };
    struct Expiry {
        Nanos when;
        std::uint32_t conn;
        std::uint64_t tag;
    };

    /// The bytes every connection sends, cycled through: whole requests
    /// (up to kMaxPattern), so that a request always starts at a multiple of
    /// --size and a sockperf header lands where sockperf reads it.
    void fill_pattern() {
        const std::size_t requests =
            std::clamp<std::size_t>(kMaxPattern / c_.size, 1, c_.udp ? 1 : c_.pipeline);
        pattern_.resize(requests * c_.size);
        for (std::size_t i = 0; i < pattern_.size(); ++i)
            pattern_[i] = static_cast<char>('a' + i % 26);
        if (!c_.sockperf) return;
        for (std::size_t at = 0; at < pattern_.size(); at += c_.size) {
            // sockperf's header, network byte order: a 64-bit sequence number,
            // 16-bit flags (client | ping-pong request), the 32-bit message size.
            unsigned char* header = reinterpret_cast<unsigned char*>(pattern_.data() + at);
            std::memset(header, 0, kSockperfHeader);
            header[9] = 0x03;
            const auto size = static_cast<std::uint32_t>(c_.size);
            header[10] = static_cast<unsigned char>(size >> 24);
            header[11] = static_cast<unsigned char>(size >> 16);
            header[12] = static_cast<unsigned char>(size >> 8);
            header[13] = static_cast<unsigned char>(size);
        }
    }

    void watch(int fd, std::uint64_t token) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = token;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl");
    }

    Nanos* slots(std::size_t i) { return stamps_.data() + i * c_.pipeline; }
    [[nodiscard]] bool measured(Nanos stamp) const { return stamp >= t_.measure; }

    /// May a request stamped `stamp` go out? Counts it when it may.
    bool admit(Nanos stamp) {
        if (!sending_) return false;
        if (stamp >= t_.stop) {
            stop_sending(stamp);
            return false;
        }
        if (measured(stamp)) {
            // With --requests, no more in flight than the replies still
            // wanted: a request lost later frees its place for another.
            if (counters.replies + outstanding_ >= quota_) return false;
            ++counters.sent;
            ++outstanding_;
        }
        return true;
    }

    void stop_sending(Nanos now) {
        if (!sending_) return;
        sending_ = false;
        drain_deadline_ = now + c_.drain.count();
        if (c_.rate > 0 && quota_ == UINT64_MAX)
            for (const Conn& conn : conns_)
                if (conn.open) counters.behind += conn.assigned - conn.issued;
    }

    void push_stamp(std::size_t i, Nanos stamp) {
        Conn& conn = conns_[i];
        std::size_t slot = conn.head + conn.inflight;
        if (slot >= c_.pipeline) slot -= c_.pipeline;
        slots(i)[slot] = stamp;
        ++conn.inflight;
    }

    Nanos pop_stamp(std::size_t i) {
        Conn& conn = conns_[i];
        const Nanos stamp = slots(i)[conn.head];
        if (++conn.head == c_.pipeline) conn.head = 0;
        --conn.inflight;
        return stamp;
    }

    void complete(std::size_t i, Nanos now) {
        const Nanos stamp = pop_stamp(i);
        if (!measured(stamp)) return;
        ++counters.replies;
        --outstanding_;
        interval_.record(now - stamp);  // added to `latency` when the second closes
        ++interval_replies_;
    }

    /// Sends what the connection may send now: up to the in-flight limit,
    /// and with --rate only the requests whose time has come.
    void top_up(std::size_t i, Nanos now) {
        Conn& conn = conns_[i];
        if (!conn.open || !sending_) return;
        if (c_.udp) {
            if (conn.inflight == 0 && !conn.writing) send_datagram(i, now);
            return;
        }
        std::size_t added = 0;
        while (conn.inflight < c_.pipeline) {
            Nanos stamp = now;
            if (c_.rate > 0) {
                if (conn.issued == conn.assigned) break;
                stamp = scheduled(i, conn.issued);
            }
            if (!admit(stamp)) break;
            if (c_.rate > 0) ++conn.issued;
            push_stamp(i, stamp);
            ++added;
        }
        if (added == 0) return;
        conn.unsent += added * c_.size;
        if (!conn.writing) flush(i);
    }

    /// The time the n-th request of connection i is due under --rate: every
    /// connection sends at rate/connections, the connections evenly staggered.
    [[nodiscard]] Nanos scheduled(std::size_t i, std::uint64_t n) const {
        const double index =
            static_cast<double>(n) * total_connections_ + static_cast<double>(first_global_ + i);
        return t_.start + static_cast<Nanos>(index * period_);
    }

    void flush(std::size_t i) {
        Conn& conn = conns_[i];
        while (conn.unsent > 0) {
            // From where the last send stopped: a short send must not restart a request.
            const std::size_t chunk = std::min(conn.unsent, pattern_.size() - conn.pattern_at);
            const ssize_t n =
                ::send(conn.fd, pattern_.data() + conn.pattern_at, chunk, MSG_NOSIGNAL);
            if (n > 0) {
                conn.unsent -= static_cast<std::size_t>(n);
                conn.pattern_at += static_cast<std::size_t>(n);
                if (conn.pattern_at == pattern_.size()) conn.pattern_at = 0;
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                want_write(i, true);
                return;
            }
            close_conn(i, errno, "send to");
            return;
        }
        if (conn.writing) want_write(i, false);
    }

    void want_write(std::size_t i, bool on) {
        Conn& conn = conns_[i];
        conn.writing = on;
        epoll_event ev{};
        ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        ev.data.u64 = i;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, conn.fd, &ev) != 0) throw_errno("epoll_ctl");
    }

    void send_datagram(std::size_t i, Nanos now) {
        Conn& conn = conns_[i];
        Nanos stamp = now;
        if (c_.rate > 0) {
            if (conn.issued == conn.assigned) return;
            stamp = scheduled(i, conn.issued);
        }
        if (!admit(stamp)) return;
        // A tag in the datagram tells the reply to this request from a late
        // reply to one already given up on.
        const std::uint64_t tag = ++next_tag_;
        std::memcpy(pattern_.data(), &tag, std::min(sizeof tag, c_.size));
        ssize_t n;
        do {
            n = ::send(conn.fd, pattern_.data(), c_.size, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            // Not sent: take it back and try again when the socket can send.
            if (measured(stamp)) {
                --counters.sent;
                --outstanding_;
            }
            want_write(i, true);
            return;
        }
        if (n < 0) {
            // Typically ECONNREFUSED: an ICMP port-unreachable reported on
            // this connected socket. The request is lost at its timeout, like
            // any other, so a dead port is not hammered in a busy loop.
            udp_error(errno, "send to");
        }
        if (c_.rate > 0) ++conn.issued;
        push_stamp(i, stamp);
        conn.tag = tag;
        expire_later(static_cast<std::uint32_t>(i), tag, now + udp_timeout_);
    }

    /// A UDP socket error. A refusal before any datagram came back means that
    /// nothing listens on the port (the kernel's ICMP port-unreachable): the
    /// run ends there, as a refused TCP connect does, instead of timing out
    /// every request until the time limit. Later refusals (a server that went
    /// away mid-run) are counted like any other error.
    void udp_error(int err, const char* what) {
        if (err == ECONNREFUSED && !heard_back_)
            throw Failure(fmt::format("{} {}: {} (no server is listening on that UDP port)", what,
                                      peer_, errno_text(err)));
        error(err, what);
    }

    void expire_later(std::uint32_t conn, std::uint64_t tag, Nanos when) {
        if (timeouts_count_ == timeouts_.size()) {
            // Full: double it, keeping the order (rare: more sends in one
            // --udp-timeout than twice the sockets).
            std::vector<Expiry> bigger(timeouts_.size() * 2);
            for (std::size_t k = 0; k < timeouts_count_; ++k)
                bigger[k] = timeouts_[(timeouts_head_ + k) & (timeouts_.size() - 1)];
            timeouts_ = std::move(bigger);
            timeouts_head_ = 0;
        }
        timeouts_[(timeouts_head_ + timeouts_count_) & (timeouts_.size() - 1)] = {when, conn, tag};
        ++timeouts_count_;
    }

    /// Every socket has the same timeout and sends happen in time order, so
    /// the queue of deadlines is a FIFO. Entries of requests answered since
    /// leave it as soon as they reach its head, due or not: the head is then
    /// a live deadline, and the loop sleeps until it instead of waking for
    /// every stale one (a wake-up per request, when requests are answered
    /// well within the timeout).
    void expire(Nanos now) {
        // Only the deadlines queued before this call: the datagrams sent in
        // place of the expired ones wait for the next round of the loop (and
        // its look at the stop signal), whatever the timeout.
        for (std::size_t due = timeouts_count_; due > 0 && timeouts_count_ > 0; --due) {
            const Expiry e = timeouts_[timeouts_head_];
            Conn& conn = conns_[e.conn];
            const bool answered = !conn.open || conn.inflight == 0 || conn.tag != e.tag;
            if (!answered && e.when > now) return;
            timeouts_head_ = (timeouts_head_ + 1) & (timeouts_.size() - 1);
            --timeouts_count_;
            if (answered) continue;
            const Nanos stamp = pop_stamp(e.conn);
            if (measured(stamp)) {
                ++counters.lost_udp;
                --outstanding_;
            }
            top_up(e.conn, now);
        }
    }

    [[nodiscard]] Nanos next_expiry() const {
        return timeouts_count_ > 0 ? timeouts_[timeouts_head_].when : INT64_MAX;
    }

    void on_readable(std::size_t i) {
        Conn& conn = conns_[i];
        const ssize_t n = ::recv(conn.fd, read_buffer_.data(), read_buffer_.size(), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            if (c_.udp)
                udp_error(errno, "recv from");
            else
                close_conn(i, errno, "recv from");
            return;
        }
        const Nanos now = now_ns();
        if (c_.udp) {
            heard_back_ = true;
            const auto size = static_cast<std::size_t>(n);
            std::uint64_t tag = 0;
            std::memcpy(&tag, read_buffer_.data(), std::min(sizeof tag, size));
            std::uint64_t expected = 0;
            std::memcpy(&expected, &conn.tag, std::min(sizeof tag, c_.size));
            if (conn.inflight == 1 && size == c_.size && tag == expected) {
                complete(i, now);
                top_up(i, now);
            } else {
                ++counters.stray;
            }
            return;
        }
        if (n == 0) {
            close_conn(i, 0, "");
            return;
        }
        conn.partial += static_cast<std::size_t>(n);
        while (conn.partial >= c_.size && conn.inflight > 0) {
            conn.partial -= c_.size;
            complete(i, now);
        }
        if (conn.inflight == 0 && conn.partial > 0) {
            // More bytes than were sent: not an echo server.
            ++counters.stray;
            conn.partial = 0;
        }
        top_up(i, now);
    }

    void error(int err, const char* what) {
        ++counters.errors;
        if (counters.first_error.empty())
            counters.first_error = fmt::format("{} {}: {}", what, peer_, errno_text(err));
    }

    /// The server closed (err 0) or reset the connection: whatever it had in
    /// flight is lost, and the run goes on without it.
    void close_conn(std::size_t i, int err, const char* what) {
        Conn& conn = conns_[i];
        if (err != 0) error(err, what);
        while (conn.inflight > 0) {
            if (measured(pop_stamp(i))) {
                ++counters.lost_on_close;
                --outstanding_;
            }
        }
        conn.open = false;
        ++counters.closed;
        --open_;
        sockets_[i].close();  // also takes it out of the epoll set
        // Under --requests the others may have stopped short, waiting on the
        // replies this connection owed: they take over at the top of the loop.
        if (quota_ != UINT64_MAX) refill_ = true;
    }

    void tick(Nanos now) {
        // The last interval stays open until the end: the replies that
        // arrive after sending stopped belong to it.
        while (now >= next_tick_ && next_tick_ < t_.stop) {
            coordinator_.publish(interval_k_, interval_, interval_replies_);
            latency.add(interval_);
            interval_.reset();
            interval_replies_ = 0;
            ++interval_k_;
            next_tick_ += kSecond;
        }
    }

    void advance_schedule(Nanos now) {
        while (sending_) {
            const Nanos due = scheduled(cursor_conn_, cursor_round_);
            if (due > now || due >= t_.stop) {
                next_due_ = due;
                return;
            }
            Conn& conn = conns_[cursor_conn_];
            if (conn.open) {
                ++conn.assigned;
                top_up(cursor_conn_, now);
            }
            if (++cursor_conn_ == conns_.size()) {
                cursor_conn_ = 0;
                ++cursor_round_;
            }
        }
    }

    void wait_events(Nanos now, Nanos wake);

    const BenchConfig& c_;
    Coordinator& coordinator_;
    const Timeline t_;
    const unsigned id_;
    const std::string peer_;
    std::vector<Socket> sockets_;
    std::vector<Conn> conns_;
    std::vector<Nanos> stamps_;
    std::vector<char> read_buffer_;
    std::vector<char> pattern_;
    Fd epoll_;
    epoll_event events_[kMaxEvents];
    int ready_ = 0;
    int stop_fd_ = -1;  // the signalfd, watched by worker 0 only (not owned)
    bool pwait2_ = true;
    bool blocking_ = false;       // one connection: recv blocks, no epoll per request
    Nanos next_epoll_check_ = 0;  // blocking_: when epoll is looked at again (signals)

    const std::uint64_t quota_;
    const std::size_t first_global_;
    const Nanos udp_timeout_;
    double total_connections_ = 1;
    double period_ = 0;
    std::size_t cursor_conn_ = 0;
    std::uint64_t cursor_round_ = 0;
    Nanos next_due_ = INT64_MAX;

    std::vector<Expiry> timeouts_;  // a ring, its size a power of two
    std::size_t timeouts_head_ = 0, timeouts_count_ = 0;
    std::uint64_t next_tag_ = 0;
    bool heard_back_ = false;  // UDP: a datagram came back (something listens)

    std::size_t open_ = 0;
    std::uint64_t outstanding_ = 0;  // measured requests in flight
    bool sending_ = true;
    bool refill_ = false;
    bool measuring_ = false;
    bool cut_short_ = false;  // interrupted: the drain is kInterruptDrain at most
    Nanos drain_deadline_ = INT64_MAX;

    Histogram interval_;
    std::uint64_t interval_replies_ = 0;
    std::size_t interval_k_ = 0;
    Nanos next_tick_;
};

void Worker::wait_events(Nanos now, Nanos wake) {
    const Nanos left = std::max<Nanos>(0, wake - now);
    if (pwait2_) {
        // epoll_pwait2 (Linux 5.11) takes a timespec: --rate needs schedules
        // finer than epoll_wait's milliseconds.
        const timespec ts{static_cast<time_t>(left / kSecond), static_cast<long>(left % kSecond)};
        ready_ = ::epoll_pwait2(epoll_.get(), events_, kMaxEvents, &ts, nullptr);
        if (ready_ >= 0 || errno != ENOSYS) {
            if (ready_ < 0 && errno != EINTR) throw_errno("epoll_pwait2");
            if (ready_ < 0) ready_ = 0;
            return;
        }
        pwait2_ = false;
    }
    const int ms = static_cast<int>(std::min<Nanos>((left + 999'999) / 1'000'000, INT32_MAX));
    ready_ = ::epoll_wait(epoll_.get(), events_, kMaxEvents, ms);
    if (ready_ < 0 && errno != EINTR) throw_errno("epoll_wait");
    if (ready_ < 0) ready_ = 0;
}

void Worker::run() {
    if (c_.rate <= 0)
        for (std::size_t i = 0; i < conns_.size(); ++i)
            top_up(i, now_ns());
    for (;;) {
        const Nanos now = now_ns();
        if (!measuring_ && now >= t_.measure) {
            measuring_ = true;
            coordinator_.window_opened();
        }
        if (measuring_) tick(now);
        // Requests due before the stop still go out if the loop woke late.
        if (c_.rate > 0) advance_schedule(now);
        if (sending_ && now >= t_.stop) stop_sending(now);
        if (coordinator_.aborted()) break;
        if (coordinator_.interrupted() && !cut_short_) {
            cut_short_ = true;
            stop_sending(now);
            drain_deadline_ = std::min(drain_deadline_, now + kInterruptDrain);
        }
        if (counters.replies >= quota_) stop_sending(now);
        if (refill_) {
            refill_ = false;
            for (std::size_t i = 0; i < conns_.size(); ++i)
                top_up(i, now);
        }
        if (c_.udp) expire(now);
        if (open_ == 0 || (!sending_ && (outstanding_ == 0 || now >= drain_deadline_))) break;

        Nanos wake = sending_ ? t_.stop : drain_deadline_;
        if (!measuring_) wake = std::min(wake, t_.measure);
        if (measuring_ && next_tick_ < t_.stop) wake = std::min(wake, next_tick_);
        if (c_.udp) wake = std::min(wake, next_expiry());
        if (c_.rate > 0 && sending_) wake = std::min(wake, next_due_);
        if (blocking_ && conns_[0].open && !conns_[0].writing && wake - now >= kBlockingSlice &&
            now < next_epoll_check_) {
            on_readable(0);  // blocks for one slice at most
            continue;
        }
        if (blocking_) {
            // Between slices: the stop signal and the deadlines, without waiting.
            next_epoll_check_ = now + kBlockingSlice;
            if (wake - now >= kBlockingSlice) wake = now;
        }
        wait_events(now, wake);

        for (int k = 0; k < ready_; ++k) {
            if (events_[k].data.u64 == kStopToken) {
                // Not read (the signal stays pending and blocked): the
                // coordinator wakes the other workers.
                ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, stop_fd_, nullptr);
                coordinator_.interrupt(now_ns());
                continue;
            }
            if (events_[k].data.u64 == kWakeToken) {
                // Stays readable: seen once per worker, then handled at the top of the loop.
                ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, coordinator_.wake_fd(), nullptr);
                continue;
            }
            const auto i = static_cast<std::size_t>(events_[k].data.u64);
            const std::uint32_t ev = events_[k].events;
            if (!conns_[i].open) continue;  // closed earlier in this round
            if ((ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) on_readable(i);
            if (conns_[i].open && (ev & EPOLLOUT) != 0) {
                if (c_.udp) {
                    want_write(i, false);
                    top_up(i, now_ns());
                } else {
                    flush(i);
                }
            }
        }
    }
    if (sending_) stop_sending(now_ns());
    counters.lost_at_end = outstanding_;
    std::optional<std::size_t> last;
    if (measuring_) {
        coordinator_.publish(interval_k_, interval_, interval_replies_);
        latency.add(interval_);
        last = interval_k_;
    }
    coordinator_.finished(id_, last);
}

}  // namespace

BenchResult run_bench(const BenchConfig& config,
                      const std::function<void(const BenchInterval&)>& on_interval) {
    raise_fd_limit(config.connections);
    Connected connected = config.udp ? connect_udp(config) : connect_tcp(config);

    // From here on a stop signal ends the run with a report. Blocked before
    // any worker thread starts, so that every thread inherits the mask.
    Fd stop_fd;
    if (config.stop_on_signals) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) throw_errno("sigprocmask");
        stop_fd.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
        if (!stop_fd) throw_errno("signalfd");
    }

    BenchResult result;
    result.address = connected.address.to_string();
    result.connected = connected.sockets.size();

    Timeline timeline;
    timeline.start = now_ns();
    timeline.measure = timeline.start + config.warmup.count();
    timeline.stop = timeline.measure + config.duration.count();
    const unsigned threads = std::max(1u, config.threads);
    Coordinator coordinator(config, threads, timeline, on_interval);

    // Contiguous shares of the connections; --requests split the same way.
    std::vector<std::unique_ptr<Worker>> workers;
    const std::size_t n = connected.sockets.size();
    for (unsigned t = 0; t < threads; ++t) {
        const std::size_t from = n * t / threads, to = n * (t + 1) / threads;
        std::vector<Socket> share;
        share.reserve(to - from);
        for (std::size_t i = from; i < to; ++i)
            share.push_back(std::move(connected.sockets[i]));
        std::uint64_t quota = UINT64_MAX;
        if (config.requests)
            quota = *config.requests / threads + (t < *config.requests % threads ? 1 : 0);
        workers.push_back(std::make_unique<Worker>(config, coordinator, timeline, t,
                                                   std::move(share), from, quota, result.address,
                                                   t == 0 ? stop_fd.get() : -1));
    }

    // Worker 0 runs on this thread: a one-thread bench is exactly one thread.
    std::vector<std::exception_ptr> failures(threads);
    std::vector<std::thread> others;
    for (unsigned t = 1; t < threads; ++t)
        others.emplace_back([&, t] {
            try {
                workers[t]->run();
            } catch (...) {
                failures[t] = std::current_exception();
                coordinator.abort();
                coordinator.finished(t, std::nullopt);
            }
        });
    try {
        workers[0]->run();
    } catch (...) {
        failures[0] = std::current_exception();
        coordinator.abort();
        coordinator.finished(0, std::nullopt);
    }
    for (std::thread& thread : others)
        thread.join();
    for (const auto& failure : failures)
        if (failure) std::rethrow_exception(failure);

    for (const auto& w : workers) {
        const Counters& k = w->counters;
        result.sent += k.sent;
        result.replies += k.replies;
        result.lost_on_close += k.lost_on_close;
        result.lost_at_end += k.lost_at_end;
        result.lost += k.lost_on_close + k.lost_at_end + k.lost_udp;
        result.errors += k.errors;
        result.stray += k.stray;
        result.behind_schedule += k.behind;
        result.closed_by_peer += k.closed;
        if (result.first_error.empty()) result.first_error = k.first_error;
        result.latency.add(w->latency);
    }
    coordinator.fill(result);
    return result;
}

}  // namespace ferry::cli
