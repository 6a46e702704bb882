// The part of a fault proxy route that its TCP and UDP relays share.
#include "route_relay.hpp"

#include <netinet/in.h>

#include "ferry/error.hpp"

namespace ferry::testkit::detail {

RouteRelay::RouteRelay(EventLoop& loop, RouteState& state, const Address& listen,
                       const FaultProxyOptions& settings, std::uint64_t seed, int socktype,
                       std::size_t scratch_size)
    : loop_(loop),
      state_(state),
      upstream_(state.upstream),
      settings_(settings),
      rng_(seed),
      listener_(listen.family(), socktype | SOCK_NONBLOCK),
      scratch_(scratch_size) {
    // SO_REUSEADDR, as every server here: a proxy restarted on the same port
    // binds at once even while its old connections sit in TIME_WAIT.
    if (socktype == SOCK_STREAM) listener_.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
    if (listen.family() == AF_INET6) listener_.set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1);
    listener_.bind(listen);
    if (socktype == SOCK_STREAM) listener_.listen(SOMAXCONN);
    listener_.set_timeout(Duration::zero());
    local_ = listener_.local_address();
    name_ = "proxy " + state.name + " (" + local_.to_string() + " -> " + upstream_.to_string() +
            (socktype == SOCK_DGRAM ? ", udp)" : ")");
}

void RouteRelay::warn(const std::string& text) const {
    if (settings_.on_warning) settings_.on_warning(name_ + ": " + text);
}

ThrottledWarning::~ThrottledWarning() {
    if (timer_ != 0) relay_.loop().cancel_timer(timer_);
    try {
        say(counter_.take_waiting());  // the last count is said, not lost
    } catch (...) {
        // A destructor must not throw; the count is lost, nothing else.
    }
}

void ThrottledWarning::count() {
    say(counter_.add(Clock::now()));
    arm();
}

void ThrottledWarning::arm() {
    if (timer_ != 0) return;
    if (const auto due = counter_.next_due()) {
        timer_ = relay_.loop().add_timer(*due - Clock::now(), [this] {
            timer_ = 0;
            say(counter_.take_due(Clock::now()));
            arm();
        });
    }
}

void ThrottledWarning::say(std::uint64_t n) const {
    if (n > 0) relay_.warn(text_(n));
}

}  // namespace ferry::testkit::detail
