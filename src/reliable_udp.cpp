#include "ferry/reliable_udp.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "ferry/byte_order.hpp"
#include "ferry/error.hpp"

namespace ferry {
namespace {

constexpr std::size_t kMaxDatagram = 65535;
constexpr std::uint32_t kSequenceMask = 0xFFFFFF;

[[noreturn]] void bad_policy(const char* what) {
    throw Error(std::make_error_code(std::errc::invalid_argument),
                std::string("retry policy: ") + what);
}

}  // namespace

void RetryPolicy::validate() const {
    if (initial_wait <= Duration::zero()) bad_policy("the initial wait must be positive");
    if (!(factor >= 1.0)) bad_policy("the backoff factor must be at least 1");
    if (max_wait <= Duration::zero()) bad_policy("the maximum wait must be positive");
    if (cap && *cap <= Duration::zero()) bad_policy("the cap must be positive");
    if (!(jitter >= 0.0 && jitter < 1.0)) bad_policy("the jitter must be in [0, 1)");
    if (max_tries && (*max_tries == 0 || *max_tries > 255))
        bad_policy("the number of tries must be in 1..255");
    if (budget && *budget <= Duration::zero()) bad_policy("the budget must be positive");
    if ((cap || factor == 1.0) && !max_tries && !budget)
        bad_policy("waits that stop growing need a number of tries or a time budget to end");
}

void RttEstimator::sample(Duration rtt) {
    if (samples_++ == 0) {
        srtt_ = rtt;
        rttvar_ = rtt / 2;
        return;
    }
    const Duration error = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
    rttvar_ = (3 * rttvar_ + error) / 4;
    srtt_ = (7 * srtt_ + rtt) / 8;
}

Duration RttEstimator::rto() const noexcept {
    return srtt_ + std::max<Duration>(std::chrono::milliseconds(1), 4 * rttvar_);
}

std::optional<std::pair<std::uint32_t, std::string_view>> split_request_id(
    std::string_view datagram) {
    if (datagram.size() < 4) return std::nullopt;
    return std::pair{load_be32(datagram.data()), datagram.substr(4)};
}

std::string with_request_id(std::uint32_t id, std::string_view payload) {
    std::string wire(4, '\0');
    store_be32(wire.data(), id);
    wire.append(payload);
    return wire;
}

std::uint32_t request_id(std::uint32_t sequence, unsigned attempt) noexcept {
    return ((sequence & kSequenceMask) << 8) | (attempt & 0xFF);
}

std::optional<MatchedReply> match_reply(std::string_view reply, std::uint32_t sequence,
                                        std::size_t tries_sent) noexcept {
    const auto split = split_request_id(reply);
    if (!split || (split->first >> 8) != (sequence & kSequenceMask)) return std::nullopt;
    const unsigned attempt = split->first & 0xFF;
    if (attempt == 0 || attempt > tries_sent) return std::nullopt;
    return MatchedReply{attempt, split->second};
}

ReliableUdpClient::ReliableUdpClient(Socket socket, Address server, RetryPolicy policy)
    : socket_(std::move(socket)),
      server_(std::move(server)),
      policy_(policy),
      random_(policy.seed) {
    policy_.validate();
    // The client waits with poll() on its own deadlines, so the socket itself never blocks.
    socket_.set_blocking(false);
    Address peer;
    connected_ = ::getpeername(socket_.fd(), peer.data(), peer.size_ptr()) == 0;
}

Duration ReliableUdpClient::first_wait() const {
    if (!policy_.adaptive || !rtt_.has_samples()) return policy_.initial_wait;
    return std::min(rtt_.rto(), policy_.cap.value_or(policy_.max_wait));
}

Duration ReliableUdpClient::jittered(Duration wait) {
    if (policy_.jitter == 0.0) return wait;
    std::uniform_real_distribution<double> spread(1.0 - policy_.jitter, 1.0 + policy_.jitter);
    return std::chrono::duration_cast<Duration>(wait * spread(random_));
}

std::string ReliableUdpClient::request(std::string_view payload,
                                       const std::function<void(const RetryEvent&)>& on_try) {
    sequence_ = (sequence_ + 1) & kSequenceMask;
    const auto started = Clock::now();
    const Clock::time_point budget_end =
        policy_.budget ? started + *policy_.budget : Clock::time_point::max();
    std::vector<Clock::time_point> sent_at;
    std::string buffer(kMaxDatagram, '\0');
    Duration wait = first_wait();

    for (unsigned attempt = 1;; ++attempt) {
        const std::uint32_t id = request_id(sequence_, attempt);
        const std::string wire = policy_.request_ids ? with_request_id(id, payload) : std::string();
        const std::string_view datagram = policy_.request_ids ? std::string_view(wire) : payload;
        Duration this_wait = jittered(wait);
        if (policy_.budget) this_wait = std::min<Duration>(this_wait, budget_end - Clock::now());

        sent_at.push_back(Clock::now());
        // A full send buffer is not worth failing a lossy protocol for: the try counts as lost.
        if (connected_)
            socket_.send(datagram);
        else
            socket_.sendto(datagram, server_);
        if (on_try) on_try({attempt, this_wait});

        const Clock::time_point until = Clock::now() + this_wait;
        while (socket_.wait(POLLIN, until)) {
            const auto got = socket_.recvfrom(buffer.data(), buffer.size());
            if (!got) continue;
            const auto arrived = Clock::now();
            if (!(got->from == server_)) {
                ++discarded_;
                continue;
            }
            std::string_view reply(buffer.data(), got->size);
            if (policy_.request_ids) {
                const auto answer = match_reply(reply, sequence_, sent_at.size());
                if (!answer) {
                    ++discarded_;
                    continue;
                }
                rtt_.sample(arrived - sent_at[answer->attempt - 1]);
                return std::string(answer->payload);
            }
            if (attempt == 1) rtt_.sample(arrived - sent_at.front());
            return std::string(reply);
        }

        auto next = std::chrono::duration_cast<Duration>(wait * policy_.factor);
        const bool out_of_waits = !policy_.cap && next > policy_.max_wait;
        const bool out_of_tries = attempt >= policy_.max_tries.value_or(255);
        const bool out_of_time = Clock::now() >= budget_end;
        if (out_of_waits || out_of_tries || out_of_time)
            throw TimeoutError("request to " + server_.to_string() + ": no reply after " +
                               std::to_string(attempt) + (attempt == 1 ? " try" : " tries"));
        wait = policy_.cap ? std::min(next, *policy_.cap) : next;
    }
}

}  // namespace ferry
