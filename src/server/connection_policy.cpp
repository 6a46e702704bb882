// ConnectionPolicy: the connection rules every server model follows, with no socket and no clock.
#include "ferry/server/connection_policy.hpp"

#include <algorithm>

namespace ferry {
namespace {

Deadline earliest(Deadline a, Deadline b) noexcept {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

}  // namespace

ConnectionPolicy::ConnectionPolicy(const ServerLimits& limits) noexcept
    : high_water_(limits.output_high_water),
      stalled_timeout_(limits.stalled_timeout),
      idle_timeout_(limits.idle_timeout),
      drain_timeout_(limits.drain_timeout) {}

void ConnectionPolicy::start_draining(Clock::time_point now) noexcept {
    if (!drain_deadline_) drain_deadline_ = now + drain_timeout_;
}

ConnectionStep ConnectionPolicy::settle(ConnectionState& c, std::size_t queued,
                                        Clock::time_point now) const noexcept {
    // Closing comes first: a peer that is done needs no shutdown of ours.
    if (c.peer_done && queued == 0) return ConnectionStep::close;
    if (draining() && queued == 0 && !c.write_shut) {
        c.write_shut = true;
        c.stalled_since.reset();
        return ConnectionStep::shut_write;
    }
    if (queued > high_water_) {
        if (!c.stalled_since) c.stalled_since = now;
    } else {
        c.stalled_since.reset();
    }
    return ConnectionStep::serve;
}

bool ConnectionPolicy::wants_read(const ConnectionState& c, std::size_t queued) const noexcept {
    if (c.write_shut) return true;  // to see the peer's close
    return !c.peer_done && !draining() && queued <= high_water_;
}

bool ConnectionPolicy::wants_write(const ConnectionState& c, std::size_t queued) const noexcept {
    return queued > 0 && !c.write_shut;
}

ConnectionExpiry ConnectionPolicy::expiry(const ConnectionState& c,
                                          Clock::time_point now) const noexcept {
    if (drain_deadline_ && now >= *drain_deadline_) return ConnectionExpiry::drain_over;
    if (c.stalled_since && now - *c.stalled_since >= stalled_timeout_)
        return ConnectionExpiry::stalled;
    if (!draining() && idle_timeout_ && now - c.last_activity >= *idle_timeout_)
        return ConnectionExpiry::idle;
    return ConnectionExpiry::none;
}

Deadline ConnectionPolicy::next_deadline(const ConnectionState& c) const noexcept {
    Deadline next = drain_deadline_;
    if (c.stalled_since) next = earliest(next, *c.stalled_since + stalled_timeout_);
    if (!draining() && idle_timeout_) next = earliest(next, c.last_activity + *idle_timeout_);
    return next;
}

}  // namespace ferry
