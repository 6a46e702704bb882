// Internal to the ferry command: the part of a proxy route that its TCP and UDP relays share.
#include <fmt/core.h>

#include "ferry/create.hpp"
#include "proxy/proxy.hpp"

namespace ferry::cli::proxy {

RouteRelay::RouteRelay(EventLoop& loop, const Route& route, const Settings& settings,
                       std::uint64_t seed, int socktype, std::size_t scratch_size)
    : loop_(loop), route_(route), settings_(settings), rng_(seed), scratch_(scratch_size) {
    ServerOptions options;
    options.socktype = socktype;
    if (route.listen_host.empty()) options.family = AF_INET;
    listener_ = create_server(route.listen_host, route.listen_port, options);
    listener_.set_timeout(Duration::zero());
    local_ = listener_.local_address();
    name_ = local_.to_string() + " -> " + route.upstream.to_string() +
            (socktype == SOCK_DGRAM ? " (udp)" : "");
}

void RouteRelay::warn(const std::string& text) const {
    fmt::print(stderr, "ferry proxy {}: {}\n", name_, text);
}

}  // namespace ferry::cli::proxy
