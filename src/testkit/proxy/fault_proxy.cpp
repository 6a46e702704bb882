// The fault proxy's collection of named proxies: creating, changing, starting and stopping
// them, and their toxics, with Toxiproxy's rules (see fault_proxy.hpp).
#include "ferry/testkit/fault_proxy.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <limits>
#include <random>

#include "ferry/address.hpp"
#include "ferry/duration.hpp"
#include "ferry/error.hpp"
#include "route_relay.hpp"

namespace ferry::testkit {

struct FaultProxy::Entry {
    ProxyConfig config;  // listen: as given, or as bound once it started
    detail::RouteState state;
    std::unique_ptr<detail::RouteRelay> relay;
};

namespace {

using Kind = ProxyError::Kind;

/// Splits HOST:PORT or [V6]:PORT; an empty host stays empty.
std::pair<std::string, std::string> split_endpoint(const std::string& text) {
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            throw ProxyError(Kind::start, "address " + text + ": not [IPV6]:PORT");
        return {text.substr(1, close - 1), text.substr(close + 2)};
    }
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos)
        throw ProxyError(Kind::start,
                         "address " + text + ": missing port in address (not HOST:PORT)");
    std::string host = text.substr(0, colon);
    if (host.find(':') != std::string::npos)
        throw ProxyError(Kind::start, "address " + text + ": write an IPv6 address in brackets, [" +
                                          host + "]:PORT");
    return {std::move(host), text.substr(colon + 1)};
}

}  // namespace

Address resolve_endpoint(const std::string& text, Protocol protocol, bool passive) {
    auto [host, port] = split_endpoint(text);
    if (host.empty()) {
        if (!passive) throw ProxyError(Kind::start, "address " + text + ": needs a host");
        host = "127.0.0.1";
    }
    const char* proto = protocol == Protocol::tcp ? "tcp" : "udp";
    parse_port(port, proto);  // a bad port says so (Error, naming it)
    ResolveHints hints;
    hints.socktype = protocol == Protocol::tcp ? SOCK_STREAM : SOCK_DGRAM;
    hints.passive = passive;
    const std::vector<Resolved> found = resolve(host, port, hints);
    const auto v4 = std::find_if(found.begin(), found.end(),
                                 [](const Resolved& r) { return r.family == AF_INET; });
    const Address address = v4 != found.end() ? v4->address : found.front().address;
    if (!passive && address.port() == 0)
        throw ProxyError(Kind::start, "upstream " + text + ": port 0");
    return address;
}

namespace {

/// Toxiproxy lists upstream toxics first, then downstream; ferry's "both" between them.
int list_rank(Direction d) {
    return d == Direction::up ? 0 : d == Direction::both ? 1 : 2;
}

/// What the soft RLIMIT_NOFILE leaves for connections or flows, halved: 64
/// descriptors stay for the rest of the process (listeners, the loop, the API).
std::size_t descriptor_share() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return std::numeric_limits<std::size_t>::max();
    const auto soft = static_cast<std::size_t>(limit.rlim_cur);
    return std::max<std::size_t>(1, soft > 64 ? (soft - 64) / 2 : 0);
}

constexpr std::size_t kDefaultMaxConnections = 10000;

}  // namespace

FaultProxyOptions effective_options(FaultProxyOptions o) {
    o.udp_idle = clamp_wait(o.udp_idle);
    o.connect_timeout = clamp_wait(o.connect_timeout);
    if (o.idle_timeout) o.idle_timeout = clamp_wait(*o.idle_timeout);
    if (o.max_connections == std::size_t{0})
        throw_errno(EINVAL, "a fault proxy with room for 0 connections");
    if (o.udp_max_flows == 0) throw_errno(EINVAL, "a fault proxy with room for 0 UDP flows");
    const std::size_t share = descriptor_share();
    if (!o.max_connections) o.max_connections = std::min(kDefaultMaxConnections, share);
    o.udp_max_flows = std::min(o.udp_max_flows, share);
    return o;
}

namespace {

/// The attributes and toxicity of `toxic` as make_toxic takes them.
std::vector<std::pair<std::string, double>> given_of(const Toxic& toxic) {
    std::vector<std::pair<std::string, double>> given(toxic.attributes.begin(),
                                                      toxic.attributes.end());
    given.emplace_back("toxicity", toxic.toxicity);
    return given;
}

}  // namespace

FaultProxy::FaultProxy(EventLoop& loop, FaultProxyOptions options)
    : loop_(loop),
      options_(effective_options(std::move(options))),
      seeds_(options_.seed
                 ? *options_.seed
                 : (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}()) {}

FaultProxy::~FaultProxy() = default;

FaultProxy::Entry& FaultProxy::find(const std::string& name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) throw ProxyError(Kind::not_found, "proxy not found");
    return *it->second;
}

bool FaultProxy::contains(const std::string& name) const {
    return entries_.count(name) != 0;
}

void FaultProxy::start(Entry& entry) {
    try {
        const Address listen = resolve_endpoint(entry.config.listen, entry.config.protocol, true);
        entry.state.upstream =
            resolve_endpoint(entry.config.upstream, entry.config.protocol, false);
        entry.relay = entry.config.protocol == Protocol::tcp
                          ? detail::start_tcp_relay(loop_, entry.state, listen, options_, seeds_())
                          : detail::start_udp_relay(loop_, entry.state, listen, options_, seeds_());
    } catch (const Error& e) {
        throw ProxyError(Kind::start, e.what());
    }
    entry.config.listen = entry.relay->local_address().to_string();
}

void FaultProxy::notify_toxics(Entry& entry) {
    if (entry.relay) entry.relay->toxics_changed();
}

ProxyState FaultProxy::create(const ProxyConfig& config) {
    if (config.name.empty()) throw ProxyError(Kind::invalid, "missing required field: name");
    if (config.upstream.empty())
        throw ProxyError(Kind::invalid, "missing required field: upstream");
    if (contains(config.name)) throw ProxyError(Kind::exists, "proxy already exists");
    auto entry = std::make_unique<Entry>();
    entry->config = config;
    if (entry->config.listen.empty()) entry->config.listen = "127.0.0.1:0";
    entry->state.name = config.name;
    entry->state.protocol = config.protocol;
    if (config.enabled) start(*entry);  // a proxy that cannot start is not created
    Entry& added = *entries_.emplace(config.name, std::move(entry)).first->second;
    return get(added.config.name);
}

ProxyState FaultProxy::update(const std::string& name, const ProxyChange& change) {
    Entry& e = find(name);
    const bool moved = (change.listen && *change.listen != e.config.listen) ||
                       (change.upstream && *change.upstream != e.config.upstream);
    if (moved) {
        e.relay.reset();  // Toxiproxy drops the connections of a proxy it moves
        if (change.listen)
            e.config.listen = change.listen->empty() ? "127.0.0.1:0" : *change.listen;
        if (change.upstream) e.config.upstream = *change.upstream;
    }
    e.config.enabled = change.enabled.value_or(e.config.enabled);
    if (!e.config.enabled) {
        e.relay.reset();
    } else if (!e.relay) {
        try {
            start(e);
        } catch (...) {
            e.config.enabled = false;  // as Toxiproxy leaves a proxy that failed to start
            throw;
        }
    }
    return get(name);
}

void FaultProxy::remove(const std::string& name) {
    find(name);
    entries_.erase(name);  // the relay closes its socket and every connection
}

ProxyState FaultProxy::get(const std::string& name) const {
    const Entry& e = find(name);
    if (e.relay) e.relay->publish_counters();
    ProxyState state;
    state.config = e.config;
    for (const detail::ToxicSlot& slot : e.state.toxics)
        state.toxics.push_back(slot.toxic);
    std::stable_sort(state.toxics.begin(), state.toxics.end(), [](const Toxic& a, const Toxic& b) {
        return list_rank(a.direction) < list_rank(b.direction);
    });
    state.counters = e.state.counters;
    return state;
}

std::vector<ProxyState> FaultProxy::list() const {
    std::vector<ProxyState> out;
    for (const auto& [name, entry] : entries_)
        out.push_back(get(name));
    return out;
}

Toxic FaultProxy::add_toxic(const std::string& proxy, Toxic toxic) {
    Entry& e = find(proxy);
    // Checked again: a Toxic's fields are public, and a value changed after
    // make_toxic (a NaN, an hour in years) must not reach the relays.
    toxic = make_toxic(toxic.type, toxic.direction, given_of(toxic), toxic.name);
    if (!toxic.applies_to(e.config.protocol))
        throw ToxicError("toxic '" + toxic.type + "' is not for " +
                         (e.config.protocol == Protocol::tcp ? "TCP" : "UDP") + " proxies");
    auto& toxics = e.state.toxics;
    if (std::any_of(toxics.begin(), toxics.end(),
                    [&](const detail::ToxicSlot& s) { return s.toxic.name == toxic.name; }))
        throw ProxyError(Kind::exists, "toxic already exists");
    toxics.push_back({std::move(toxic), next_serial_++});
    notify_toxics(e);
    return toxics.back().toxic;
}

Toxic FaultProxy::update_toxic(const std::string& proxy, const std::string& toxic,
                               const ToxicChange& change, const ToxicRules& rules) {
    Entry& e = find(proxy);
    for (detail::ToxicSlot& slot : e.state.toxics) {
        if (slot.toxic.name != toxic) continue;
        slot.toxic = apply_change(slot.toxic, change, rules);
        slot.serial = next_serial_++;
        Toxic result = slot.toxic;
        notify_toxics(e);
        return result;
    }
    throw ProxyError(Kind::not_found, "toxic not found");
}

void FaultProxy::remove_toxic(const std::string& proxy, const std::string& toxic) {
    Entry& e = find(proxy);
    auto& toxics = e.state.toxics;
    const auto it = std::find_if(toxics.begin(), toxics.end(),
                                 [&](const detail::ToxicSlot& s) { return s.toxic.name == toxic; });
    if (it == toxics.end()) throw ProxyError(Kind::not_found, "toxic not found");
    toxics.erase(it);
    notify_toxics(e);
}

Toxic FaultProxy::get_toxic(const std::string& proxy, const std::string& toxic) const {
    const Entry& e = find(proxy);
    for (const detail::ToxicSlot& slot : e.state.toxics)
        if (slot.toxic.name == toxic) return slot.toxic;
    throw ProxyError(Kind::not_found, "toxic not found");
}

void FaultProxy::reset() {
    for (auto& [name, entry] : entries_) {
        if (!entry->relay) {
            start(*entry);  // the first that cannot start ends the reset, as in Toxiproxy
            entry->config.enabled = true;
        }
        entry->state.toxics.clear();
        notify_toxics(*entry);
    }
}

// ---- FaultProxyThread -------------------------------------------------------------------

FaultProxyThread::FaultProxyThread(FaultProxyOptions options)
    : on_warning_(options.on_warning),
      proxy_(std::make_unique<FaultProxy>(loop_, std::move(options))),
      thread_([this] { run(); }) {}

void FaultProxyThread::run() {
    // A handler that throws leaves the loop stopped and consistent (event_loop.hpp): say
    // so and go on serving, rather than end the process from a thread nobody joins yet.
    for (;;) {
        try {
            loop_.run();
            return;
        } catch (const std::exception& e) {
            if (on_warning_) on_warning_(std::string("fault proxy loop: ") + e.what());
        }
    }
}

FaultProxyThread::~FaultProxyThread() {
    // The proxy goes on the loop's thread, where its sockets are watched.
    loop_.post([this] {
        proxy_.reset();
        loop_.stop();
    });
    thread_.join();
}

}  // namespace ferry::testkit
