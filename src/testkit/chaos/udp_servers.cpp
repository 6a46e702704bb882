// The testkit's chaos servers: the UDP behaviours. Each answers a datagram
// with an echo of it (so a client's request ID comes back) or with nothing, at the wrong time,
// twice, or from the wrong port.
#include <cerrno>
#include <unordered_map>

#include <fmt/core.h>

#include "ferry/error.hpp"
#include "ferry/testkit/chaos.hpp"

namespace ferry::testkit::chaos::detail {
namespace {

constexpr int kReadsPerWakeup = 64;  // then the other servers get their turn
constexpr std::size_t kMaxDatagram = 65535;
constexpr std::size_t kMaxLateEchoes = 10000;  // udp-late: memory a flood can make it hold

enum class UdpKind { silent, late, dup, garbage, wrong_source };

UdpKind udp_kind(std::string_view name) {
    if (name == "udp-silent") return UdpKind::silent;
    if (name == "udp-late") return UdpKind::late;
    if (name == "udp-dup") return UdpKind::dup;
    if (name == "udp-garbage") return UdpKind::garbage;
    return UdpKind::wrong_source;
}

class UdpServer final : public Server {
  public:
    UdpServer(Shared& shared, const Behaviour& behaviour, Socket bound);
    ~UdpServer() override;

    [[nodiscard]] Address address() const override { return address_; }
    [[nodiscard]] std::string description() const override;

  private:
    struct LateEcho {
        std::string data;
        Address to;
        EventLoop::TimerId timer;
    };

    void on_readable();
    void answer(std::string_view data, const Address& from);
    void echo_late(std::uint64_t key);
    void reply(Socket& from, std::string_view data, const Address& to);

    Shared& shared_;
    const Behaviour& behaviour_;
    UdpKind kind_;
    Socket socket_;
    Address address_;
    Socket other_;  // udp-wrong-source: where the echoes come from
    std::string buffer_;
    std::string garbage_;
    RandomBytes random_;
    std::unordered_map<std::uint64_t, LateEcho> late_;
    std::uint64_t next_late_ = 0;
    bool reported_flood_ = false;
};

UdpServer::UdpServer(Shared& shared, const Behaviour& behaviour, Socket bound)
    : shared_(shared),
      behaviour_(behaviour),
      kind_(udp_kind(behaviour.name)),
      socket_(std::move(bound)),
      address_(socket_.local_address()),
      buffer_(kMaxDatagram, '\0'),
      random_(shared.settings.seed, shared.streams++) {
    socket_.set_blocking(false);
    if (kind_ == UdpKind::wrong_source) {
        // Same family and interface, a port of the kernel's choosing.
        other_ = Socket(address_.family(), SOCK_DGRAM);
        Address other = address_;
        other.set_port(0);
        other_.bind(other);
        other_.set_blocking(false);
    }
    shared_.loop.watch(socket_.fd(), events::readable, [this](std::uint32_t) { on_readable(); });
}

UdpServer::~UdpServer() {
    for (const auto& [key, echo] : late_)
        shared_.loop.cancel_timer(echo.timer);
    shared_.loop.unwatch(socket_.fd());
}

std::string UdpServer::description() const {
    std::string text = describe(behaviour_, shared_.settings);
    if (kind_ == UdpKind::wrong_source)
        text += fmt::format(", port {}", other_.local_address().port());
    return text;
}

void UdpServer::on_readable() {
    for (int i = 0; i < kReadsPerWakeup; ++i) {
        std::optional<Received> got;
        try {
            got = socket_.recvfrom(buffer_.data(), buffer_.size());
        } catch (const Error& e) {
            warn(shared_, fmt::format("{}: {}", behaviour_.name, e.what()));
            return;
        }
        if (!got) return;
        answer({buffer_.data(), got->size}, got->from);
    }
}

void UdpServer::answer(std::string_view data, const Address& from) {
    switch (kind_) {
        case UdpKind::silent:
            return;
        case UdpKind::dup:
            reply(socket_, data, from);
            reply(socket_, data, from);
            return;
        case UdpKind::garbage:
            // As long as the request (at least one byte), so only the content is wrong.
            garbage_.resize(std::max<std::size_t>(data.size(), 1));
            random_.fill(garbage_.data(), garbage_.size());
            reply(socket_, garbage_, from);
            return;
        case UdpKind::wrong_source:
            reply(other_, data, from);
            return;
        case UdpKind::late: {
            if (late_.size() >= kMaxLateEchoes) {
                if (!reported_flood_)
                    warn(shared_, fmt::format("{}: more than {} echoes pending, dropping datagrams",
                                              behaviour_.name, kMaxLateEchoes));
                reported_flood_ = true;
                return;
            }
            const std::uint64_t key = next_late_++;
            const auto timer =
                shared_.loop.add_timer(shared_.settings.late, [this, key] { echo_late(key); });
            late_.emplace(key, LateEcho{std::string(data), from, timer});
            return;
        }
    }
}

void UdpServer::echo_late(std::uint64_t key) {
    const auto it = late_.find(key);
    if (it == late_.end()) return;
    const LateEcho echo = std::move(it->second);
    late_.erase(it);
    reply(socket_, echo.data, echo.to);
}

void UdpServer::reply(Socket& from, std::string_view data, const Address& to) {
    try {
        // Empty means the send buffer is full: dropped, as the network may.
        (void)from.sendto(data, to);
    } catch (const Error& e) {
        warn(shared_, fmt::format("{}: {}", behaviour_.name, e.what()));
    }
}

}  // namespace

std::unique_ptr<Server> make_udp_server(Shared& shared, const Behaviour& behaviour, Socket bound) {
    return std::make_unique<UdpServer>(shared, behaviour, std::move(bound));
}

}  // namespace ferry::testkit::chaos::detail
