// ferry/reliable_udp.hpp: request/response over UDP with retransmission, backoff and request IDs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "ferry/socket.hpp"

namespace ferry {

/// When to retransmit and when to give up.
///
/// The defaults are the textbook's udp_remote client exactly: wait 0.1 s,
/// double the wait after each silence, and give up once the next wait would
/// exceed 2.0 s (waits 0.1, 0.2, 0.4, 0.8, 1.6: about 3.1 s in all).
struct RetryPolicy {
    /// The first wait for a reply.
    Duration initial_wait = std::chrono::milliseconds(100);
    /// Each wait is the previous one times this (at least 1).
    double factor = 2.0;
    /// Give up once the next wait would exceed this.
    Duration max_wait = std::chrono::seconds(2);
    /// Optional cap on one wait: waits grow to the cap and stay there; the
    /// request then ends by `max_tries` or `budget` (one of them is required).
    std::optional<Duration> cap;
    /// Each wait is multiplied by a uniform factor in [1 - jitter, 1 + jitter],
    /// so that many clients that lost the same reply do not retry in step.
    double jitter = 0.0;
    /// Give up after this many sends.
    std::optional<unsigned> max_tries;
    /// The longest a whole request may take, every try included.
    std::optional<Duration> budget;
    /// Start each request's first wait from the measured round trips
    /// (smoothed RTT + 4 x variance, as TCP's retransmission timer, RFC 6298)
    /// instead of initial_wait; the factor still applies to retries.
    bool adaptive = false;
    /// Prefix every datagram with a 4-byte request ID (see ReliableUdpClient).
    bool request_ids = false;
    /// Seed for the jitter, for reproducible runs.
    std::uint32_t seed = 0x5eed;

    /// Throws Error(EINVAL) naming the first bad field.
    void validate() const;
};

/// Round-trip estimator of RFC 6298 (SRTT, RTTVAR, RTO), alpha 1/8, beta 1/4.
class RttEstimator {
  public:
    /// Adds one measured round trip.
    void sample(Duration rtt);
    /// Whether any round trip was measured.
    [[nodiscard]] bool has_samples() const noexcept { return samples_ > 0; }
    /// The smoothed round trip (SRTT).
    [[nodiscard]] Duration srtt() const noexcept { return srtt_; }
    /// The round trip's variation (RTTVAR).
    [[nodiscard]] Duration rttvar() const noexcept { return rttvar_; }
    /// SRTT + max(1 ms, 4 x RTTVAR): the wait that covers almost every reply.
    [[nodiscard]] Duration rto() const noexcept;

  private:
    Duration srtt_{};
    Duration rttvar_{};
    unsigned samples_ = 0;
};

/// What the client reports while it works (for a program that prints it).
struct RetryEvent {
    unsigned attempt;  ///< 1 for the first send
    Duration wait;     ///< how long this try waits for its reply
};

/// A client that sends a request datagram to one server and waits for the
/// reply, retransmitting with backoff until the policy gives up.
///
/// Replies are accepted only from the server's address (the socket may be
/// connected or not: a datagram from any other address is dropped). With
/// `request_ids`, every try carries a 4-byte big-endian ID — the request's
/// sequence number in the high 24 bits, the try number in the low 8 — and the
/// server must echo those 4 bytes at the start of its reply: a late reply to
/// an earlier request is then never taken for the current answer, and the
/// try it answers is known, so round trips are measured even on retries.
/// Without IDs (the textbook wire format) every try is the same datagram and
/// any reply from the server is the answer; round trips are then sampled only
/// from requests answered on their first try (Karn's rule).
///
/// Errors: TimeoutError `request to 127.0.0.1:1060: no reply after 5 tries`
/// when the policy gives up; Error for a socket failure, e.g. `recvfrom:
/// Connection refused` on a connected socket when nothing listens there.
/// Thread-safety: one request at a time.
class ReliableUdpClient {
  public:
    /// Talks to `server` over `socket` (a UDP socket, connected or not).
    /// Throws Error(EINVAL) for a bad `policy` (RetryPolicy::validate()).
    ReliableUdpClient(Socket socket, Address server, RetryPolicy policy = {});

    /// Sends `payload`, returns the reply's payload (ID removed).
    std::string request(std::string_view payload,
                        const std::function<void(const RetryEvent&)>& on_try = {});

    /// The round trips measured so far.
    [[nodiscard]] const RttEstimator& rtt() const noexcept { return rtt_; }
    /// The socket, e.g. for its local address.
    [[nodiscard]] Socket& socket() noexcept { return socket_; }
    /// The address replies must come from.
    [[nodiscard]] const Address& server() const noexcept { return server_; }
    /// Datagrams dropped because they came from elsewhere or carried a stale ID.
    [[nodiscard]] std::uint64_t discarded() const noexcept { return discarded_; }

  private:
    Duration first_wait() const;
    Duration jittered(Duration wait);

    Socket socket_;
    Address server_;
    RetryPolicy policy_;
    RttEstimator rtt_;
    std::mt19937 random_;
    std::uint32_t sequence_ = 0;
    std::uint64_t discarded_ = 0;
    bool connected_;
};

/// For servers that speak the ID'd protocol: splits a request into its 4-byte
/// ID and payload (nullopt when shorter than 4 bytes), and builds the reply.
std::optional<std::pair<std::uint32_t, std::string_view>> split_request_id(
    std::string_view datagram);
/// `payload` with the 4-byte big-endian `id` in front: a request, or its reply.
std::string with_request_id(std::uint32_t id, std::string_view payload);

/// The ID of try `attempt` of request `sequence`: the sequence in the high 24
/// bits, the try in the low 8 (each taken modulo its field's size).
std::uint32_t request_id(std::uint32_t sequence, unsigned attempt) noexcept;

/// A reply of the ID'd protocol that answers the current request.
struct MatchedReply {
    unsigned attempt;          ///< the try it answers, 1 for the first
    std::string_view payload;  ///< what follows the ID
};

/// How ReliableUdpClient tells its answer from other datagrams: a reply
/// answers request `sequence` (24 bits), of which `tries_sent` tries went
/// out, when it starts with the ID of one of those tries. Nullopt for a
/// datagram shorter than an ID, an ID of another request (a late reply), or
/// of a try that was never sent (0, or past the last).
std::optional<MatchedReply> match_reply(std::string_view reply, std::uint32_t sequence,
                                        std::size_t tries_sent) noexcept;

}  // namespace ferry
