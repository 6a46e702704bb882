// The testkit's chaos servers: the TCP behaviours, one class each, and the
// server that accepts for them.
#include <sys/socket.h>

#include <cerrno>
#include <ctime>
#include <functional>
#include <unordered_map>

#include <fmt/core.h>

#include "ferry/acceptor.hpp"
#include "ferry/buffer.hpp"
#include "ferry/error.hpp"
#include "ferry/testkit/chaos.hpp"

namespace ferry::testkit::chaos::detail {
namespace {

using namespace std::chrono_literals;

constexpr unsigned kAcceptsPerWakeup = 64;  // then the other servers get their turn

/// Accepting for one server: out of descriptors, it sheds and pauses, and
/// says so at most once a second (see ferry::Acceptor).
AcceptorOptions accept_options(Shared& shared, const Behaviour& behaviour) {
    AcceptorOptions options;
    options.max_per_wakeup = kAcceptsPerWakeup;
    options.on_warning = [&shared, name = behaviour.name](std::string_view line) {
        warn(shared, fmt::format("{}: {}", name, line));
    };
    return options;
}
constexpr int kWritesPerWakeup = 16;  // garbage: at most this many chunks per wake-up
constexpr std::size_t kReadSize = 16 * 1024;
constexpr std::size_t kGarbageChunk = 16 * 1024;
constexpr std::size_t kSlowChunk = 16;              // http-slow: bytes per --delay
constexpr std::size_t kMaxRequestHead = 16 * 1024;  // http-*: answer anyway past this
constexpr Duration kHttpPatience = 1s;  // http-*: answer anyway when no request came by then
constexpr std::string_view kDripText = "ferry chaos drip\n";
constexpr std::string_view kHalfText =
    "ferry chaos half: that is all you get; I shut down my sending side but still read\n";

/// A peer that resets or goes away is what a chaos server expects; anything else is reported.
bool ordinary_disconnect(const Error& e) {
    if (e.code().category() != std::system_category()) return false;
    const int err = e.code().value();
    return err == ECONNRESET || err == EPIPE || err == ENOTCONN || err == ETIMEDOUT;
}

class TcpServer;

/// One accepted client. The base class does the I/O every behaviour shares:
/// it reads what the client sends (discarded unless on_data wants it), sends
/// what is queued as the socket becomes writable, and closes once both sides
/// are done: the client has ended its stream and the behaviour its own (see
/// client_ended), or the client reset. Subclasses say what to send, and when.
class Connection {
  public:
    Connection(TcpServer& server, Socket socket, Address peer)
        : server_(server), socket_(std::move(socket)), peer_(std::move(peer)) {}
    virtual ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Watches the socket and runs the behaviour.
    void open();

  protected:
    [[nodiscard]] EventLoop& loop() const;
    [[nodiscard]] const Settings& settings() const;
    [[nodiscard]] bool closed() const noexcept { return !socket_; }
    Socket& socket() noexcept { return socket_; }

    virtual void start() = 0;
    /// What the client sent; discarded unless overridden.
    virtual void on_data(std::string_view) {}
    /// The client ended its stream (it may still read).
    virtual void on_client_end() {}
    /// True while the connection has more to send than what is queued:
    /// produce() is then called each time the queue is empty and the socket
    /// writable, so the client's reading paces the sending (backpressure).
    [[nodiscard]] virtual bool producing() const { return false; }
    virtual void produce(Buffer&) {}

    /// Queues `data` behind what is already queued.
    void send(std::string_view data);
    /// Shuts down the sending side (the client sees end of stream) once the queue is sent.
    void end_output();
    /// Closes the connection now. The object itself is destroyed later, by
    /// the server, so that a member function may call this and return.
    void finish();
    /// Closes with SO_LINGER {on, 0 s}: the kernel sends RST instead of FIN.
    void reset();
    /// Runs `fn` after `delay` (and then every `every`) until the connection closes.
    EventLoop::TimerId after(Duration delay, std::function<void()> fn,
                             std::optional<Duration> every = std::nullopt);
    void set_no_delay() { socket_.set_no_delay(true); }

  private:
    void on_ready(std::uint32_t ready);
    void read();
    void client_ended();
    void write();
    void update_interest();
    void failed(const Error& e);
    void release_resources() noexcept;

    TcpServer& server_;
    Socket socket_;
    Address peer_;
    Buffer out_;
    std::vector<EventLoop::TimerId> timers_;
    bool end_output_ = false;  // shut down the sending side once out_ is sent
    bool output_ended_ = false;
    bool input_ended_ = false;  // the client sent FIN
};

// --- the behaviours ---------------------------------------------------------

class Reset final : public Connection {
    using Connection::Connection;
    void start() override { reset(); }
};

class Close final : public Connection {
    using Connection::Connection;
    void start() override { finish(); }
};

class Silent final : public Connection {
    using Connection::Connection;
    void start() override {}  // reading and discarding is what the base does
    void on_client_end() override { finish(); }
};

class Drip final : public Connection {
    using Connection::Connection;
    void start() override {
        // One byte per segment: without TCP_NODELAY, Nagle's algorithm would
        // hold a byte back until the previous one is acknowledged, and a
        // delayed ACK could make two bytes arrive together.
        set_no_delay();
        tick();
        after(
            settings().delay, [this] { tick(); }, settings().delay);
    }
    void tick() {
        // A client that does not read just gets no byte this time.
        if (const auto n = socket().send(kDripText.substr(next_ % kDripText.size(), 1));
            n && *n == 1)
            ++next_;
    }
    std::size_t next_ = 0;
};

class Garbage final : public Connection {
  public:
    Garbage(TcpServer& server, Socket socket, Address peer, std::uint64_t stream);

  private:
    void start() override {
        if (settings().bytes && *settings().bytes == 0) end_output();
    }
    [[nodiscard]] bool producing() const override { return !settings().bytes || left_ > 0; }
    void produce(Buffer& out) override {
        const std::size_t n =
            settings().bytes
                ? static_cast<std::size_t>(std::min<std::uint64_t>(left_, kGarbageChunk))
                : kGarbageChunk;
        chunk_.resize(n);
        random_.fill(chunk_.data(), n);
        out.append(chunk_.data(), n);
        if (settings().bytes) {
            left_ -= n;
            if (left_ == 0) end_output();
        }
    }
    RandomBytes random_;
    std::uint64_t left_;
    std::string chunk_;
};

class Half final : public Connection {
    using Connection::Connection;
    void start() override {
        send(kHalfText);
        end_output();
    }
};

enum class HttpKind { html, json, nobody, slow };

/// The HTTP behaviours: wait for the end of the request head (an empty
/// line), or at most kHttpPatience for a client that sends nothing, then answer.
class Http final : public Connection {
  public:
    Http(TcpServer& server, Socket socket, Address peer, HttpKind kind)
        : Connection(server, std::move(socket), std::move(peer)), kind_(kind) {}

  private:
    void start() override {
        patience_ = after(kHttpPatience, [this] { respond(); });
    }
    void on_client_end() override {
        respond();                                    // the request is all there
        if (kind_ == HttpKind::nobody) end_output();  // it would never send again
    }
    void on_data(std::string_view data) override {
        if (responded_) return;
        head_.append(data.substr(0, kMaxRequestHead - head_.size()));
        if (head_.find("\r\n\r\n") != std::string::npos || head_.size() >= kMaxRequestHead)
            respond();
    }
    void respond();
    void slow_step();

    HttpKind kind_;
    std::string head_;
    bool responded_ = false;
    EventLoop::TimerId patience_ = 0;
    std::string slow_;  // http-slow: what is left to send
    EventLoop::TimerId slow_timer_ = 0;
};

// --- the server ---------------------------------------------------------------

class TcpServer final : public Server {
  public:
    TcpServer(Shared& shared, const Behaviour& behaviour, Socket listener);
    ~TcpServer() override;

    [[nodiscard]] Address address() const override { return address_; }
    [[nodiscard]] std::string description() const override {
        return describe(behaviour_, shared_.settings);
    }
    [[nodiscard]] Shared& shared() const noexcept { return shared_; }
    [[nodiscard]] std::string_view name() const noexcept { return behaviour_.name; }

    /// A closed connection: destroyed on the next round of the loop, when
    /// none of its member functions can be running any more.
    void retire(Connection& connection);

  private:
    void on_accept(Accepted client);
    void refuse(Accepted& client);
    void reap();
    std::unique_ptr<Connection> make_connection(Accepted client);

    Shared& shared_;
    const Behaviour& behaviour_;
    Socket listener_;
    Address address_;
    std::unordered_map<const Connection*, std::unique_ptr<Connection>> connections_;
    std::vector<std::unique_ptr<Connection>> retired_;
    std::optional<EventLoop::TimerId> reaper_;
    LoopAcceptor acceptor_;  // last: it stops watching before the rest goes
};

// --- Connection ---------------------------------------------------------------

Connection::~Connection() {
    release_resources();
}

EventLoop& Connection::loop() const {
    return server_.shared().loop;
}
const Settings& Connection::settings() const {
    return server_.shared().settings;
}

void Connection::open() {
    try {
        loop().watch(socket_.fd(), events::readable,
                     [this](std::uint32_t ready) { on_ready(ready); });
        start();
        if (!closed()) write();
    } catch (const Error& e) {
        failed(e);
    }
}

void Connection::release_resources() noexcept {
    if (closed()) return;
    for (const EventLoop::TimerId id : timers_)
        loop().cancel_timer(id);
    timers_.clear();
    loop().unwatch(socket_.fd());  // before close: the number may be reused at once
    socket_.close();
}

void Connection::finish() {
    if (closed()) return;
    release_resources();
    server_.retire(*this);
}

void Connection::reset() {
    if (closed()) return;
    socket_.set_option(SOL_SOCKET, SO_LINGER, linger{1, 0});
    finish();
}

void Connection::failed(const Error& e) {
    if (!ordinary_disconnect(e))
        warn(server_.shared(),
             fmt::format("{} {}: {}", server_.name(), peer_.to_string(), e.what()));
    finish();
}

EventLoop::TimerId Connection::after(Duration delay, std::function<void()> fn,
                                     std::optional<Duration> every) {
    const EventLoop::TimerId id = loop().add_timer(
        delay,
        [this, fn = std::move(fn)] {
            try {
                fn();
                if (!closed()) write();
            } catch (const Error& e) {
                failed(e);
            }
        },
        every);
    timers_.push_back(id);
    return id;
}

void Connection::send(std::string_view data) {
    out_.append(data);
}

void Connection::end_output() {
    end_output_ = true;
}

void Connection::on_ready(std::uint32_t ready) {
    try {
        // After the client's FIN a recv() would only say end of stream again,
        // even after a reset: hang-up or error is all there is to know.
        if ((ready & events::error) != 0 || (input_ended_ && (ready & events::hangup) != 0)) {
            finish();
            return;
        }
        if (!input_ended_ && (ready & (events::readable | events::hangup)) != 0) {
            read();
            if (closed()) return;
        }
        write();
    } catch (const Error& e) {
        failed(e);
    }
}

void Connection::read() {
    char data[kReadSize];
    const IoResult n = socket_.recv(data, sizeof data);
    if (!n) return;  // nothing after all (the socket is non-blocking)
    if (*n == 0) {
        client_ended();
        return;
    }
    on_data({data, *n});
}

// A client that shuts down its sending side may still be reading (nc does
// this at the end of its input), so a behaviour that has more to send goes
// on; the connection closes once our side has ended too. A client that has
// gone altogether answers the next send with RST, which ends it. (A behaviour
// that will never send again closes at once: a half-close and a close look
// the same from here, and the connection must not outlive its client.)
void Connection::client_ended() {
    input_ended_ = true;
    on_client_end();
    if (!closed() && output_ended_) finish();
}

void Connection::write() {
    for (int i = 0; i < kWritesPerWakeup; ++i) {
        if (out_.empty() && !output_ended_ && producing()) produce(out_);
        if (out_.empty()) break;
        if (!out_.write_to(socket_.fd())) break;  // the client's window is full: wait
    }
    if (out_.empty()) {
        out_.release();  // an idle connection holds no buffer
        if (end_output_ && !output_ended_) {
            socket_.shutdown(Shutdown::write);
            output_ended_ = true;
            if (input_ended_) {
                finish();
                return;
            }
        }
    }
    update_interest();
}

void Connection::update_interest() {
    const bool more = !output_ended_ && (!out_.empty() || producing());
    loop().modify(socket_.fd(),
                  (input_ended_ ? 0 : events::readable) | (more ? events::writable : 0));
}

Garbage::Garbage(TcpServer& server, Socket socket, Address peer, std::uint64_t stream)
    : Connection(server, std::move(socket), std::move(peer)),
      random_(server.shared().settings.seed, stream),
      left_(server.shared().settings.bytes.value_or(0)) {}

// --- Http ---------------------------------------------------------------------

std::string http_date() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    char text[64];
    const std::size_t n = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
    return {text, n};
}

std::string http_head(std::string_view content_type, std::size_t content_length, bool close) {
    return fmt::format(
        "HTTP/1.1 200 OK\r\nDate: {}\r\nServer: ferry-chaos\r\nContent-Type: {}\r\n"
        "Content-Length: {}\r\n{}\r\n",
        http_date(), content_type, content_length, close ? "Connection: close\r\n" : "");
}

std::string html_page(std::string_view name) {
    return fmt::format(
        "<!DOCTYPE html>\n<html>\n<head><title>ferry chaos {0}</title></head>\n"
        "<body><h1>ferry chaos {0}</h1><p>A well-formed HTTP/1.1 response.</p></body>\n"
        "</html>\n",
        name);
}

void Http::respond() {
    if (responded_) return;
    responded_ = true;
    loop().cancel_timer(patience_);
    // A HEAD request gets the head alone, as RFC 9110 has it.
    const bool head_only = head_.starts_with("HEAD ");
    std::string().swap(head_);  // the request is no longer needed
    std::string response;
    switch (kind_) {
        case HttpKind::html:
        case HttpKind::slow: {
            const std::string body = html_page(kind_ == HttpKind::html ? "http-html" : "http-slow");
            response = http_head("text/html; charset=utf-8", body.size(), true);
            if (!head_only) response += body;
            break;
        }
        case HttpKind::json: {
            const std::string body =
                R"({"server": "ferry chaos", "behaviour": "http-json", "ok": true})"
                "\n";
            response = http_head("application/json", body.size(), true);
            if (!head_only) response += body;
            break;
        }
        case HttpKind::nobody:
            // Kept open, as HTTP/1.1 connections are by default; the body never comes.
            send(http_head("text/plain; charset=utf-8", kNoBodyLength, false));
            return;
    }
    if (kind_ != HttpKind::slow) {
        send(response);
        end_output();
        return;
    }
    slow_ = std::move(response);
    set_no_delay();  // each chunk its own segment (see Drip)
    slow_step();
    if (!slow_.empty())
        slow_timer_ = after(
            settings().delay, [this] { slow_step(); }, settings().delay);
}

void Http::slow_step() {
    const auto n = socket().send(slow_.data(), std::min(kSlowChunk, slow_.size()));
    if (n) slow_.erase(0, *n);
    if (slow_.empty()) {
        if (slow_timer_ != 0) loop().cancel_timer(slow_timer_);
        end_output();
    }
}

// --- TcpServer ------------------------------------------------------------------

TcpServer::TcpServer(Shared& shared, const Behaviour& behaviour, Socket listener)
    : shared_(shared),
      behaviour_(behaviour),
      listener_(std::move(listener)),
      address_(listener_.local_address()),
      acceptor_(
          shared_.loop, listener_, [this](Accepted client) { on_accept(std::move(client)); },
          accept_options(shared_, behaviour_)) {}

TcpServer::~TcpServer() {
    acceptor_.stop();
    if (reaper_) shared_.loop.cancel_timer(*reaper_);
    connections_.clear();
    retired_.clear();
}

std::unique_ptr<Connection> TcpServer::make_connection(Accepted client) {
    const std::string_view name = behaviour_.name;
    Socket& s = client.socket;
    Address& peer = client.peer;
    if (name == "reset") return std::make_unique<Reset>(*this, std::move(s), std::move(peer));
    if (name == "silent") return std::make_unique<Silent>(*this, std::move(s), std::move(peer));
    if (name == "drip") return std::make_unique<Drip>(*this, std::move(s), std::move(peer));
    if (name == "garbage")
        return std::make_unique<Garbage>(*this, std::move(s), std::move(peer), shared_.streams++);
    if (name == "close") return std::make_unique<Close>(*this, std::move(s), std::move(peer));
    if (name == "half") return std::make_unique<Half>(*this, std::move(s), std::move(peer));
    const HttpKind kind = name == "http-html"     ? HttpKind::html
                          : name == "http-json"   ? HttpKind::json
                          : name == "http-nobody" ? HttpKind::nobody
                                                  : HttpKind::slow;
    return std::make_unique<Http>(*this, std::move(s), std::move(peer), kind);
}

void TcpServer::on_accept(Accepted client) {
    if (connections_.size() >= shared_.settings.max_conns) {
        refuse(client);
        return;
    }
    auto connection = make_connection(std::move(client));
    Connection& c = *connection;
    connections_.emplace(&c, std::move(connection));
    c.open();
}

void TcpServer::refuse(Accepted& client) {
    const std::string line =
        fmt::format("ferry chaos: too many connections (max {})\r\n", shared_.settings.max_conns);
    warn(shared_, fmt::format("{}: refused {}: too many connections (max {})", behaviour_.name,
                              client.peer.to_string(), shared_.settings.max_conns));
    try {
        client.socket.send(line);  // non-blocking: a fresh connection has room for one line
        // Whatever the client already sent would make close() send RST instead
        // of FIN, and the RST could destroy the line before it is read.
        char discard[kReadSize];
        while (client.socket.recv(discard, sizeof discard).value_or(0) > 0) {
        }
    } catch (const Error&) {
        // It went away first; nothing to tell it.
    }
}

void TcpServer::retire(Connection& connection) {
    const auto it = connections_.find(&connection);
    if (it == connections_.end()) return;
    retired_.push_back(std::move(it->second));
    connections_.erase(it);
    acceptor_.connection_closed();  // its descriptor is free: a pause for want of one ends
    if (!reaper_) reaper_ = shared_.loop.add_timer(Duration::zero(), [this] { reap(); });
}

void TcpServer::reap() {
    reaper_.reset();
    retired_.clear();
}

}  // namespace

std::unique_ptr<Server> make_tcp_server(Shared& shared, const Behaviour& behaviour,
                                        Socket listener) {
    return std::make_unique<TcpServer>(shared, behaviour, std::move(listener));
}

}  // namespace ferry::testkit::chaos::detail
