// Internal to the ferry command: what `ferry ping` counts and how it prints it, in iputils
// ping's words and number formats, so that the two can be compared line by line.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "ferry/socket.hpp"

namespace ferry::cli::ping {

/// A round trip as iputils prints it: `time=0.045 ms`, `time=1.23 ms`,
/// `time=12.3 ms`, `time=123 ms` (fewer decimals as it grows).
std::string trip_time_text(Duration rtt);

class Stats {
  public:
    void sent() { ++transmitted_; }
    /// A reply to `sequence`; false when it is a duplicate (counted apart, as ping's DUP!).
    bool received(std::uint16_t sequence, std::optional<Duration> rtt);
    void error() { ++errors_; }

    [[nodiscard]] std::uint64_t transmitted() const { return transmitted_; }
    [[nodiscard]] std::uint64_t replies() const { return received_; }
    [[nodiscard]] bool answered(std::uint16_t sequence) const { return seen_.count(sequence) != 0; }

    /// `3 packets transmitted, 2 received, +1 duplicates, 33.3333% packet loss, time 2003ms`
    [[nodiscard]] std::string summary_line(Duration elapsed) const;
    /// `rtt min/avg/max/mdev = 0.037/0.053/0.070/0.016 ms`, or nothing without timed replies.
    [[nodiscard]] std::optional<std::string> rtt_line() const;
    /// The same as JSON text (one object).
    [[nodiscard]] std::string json(const std::string& host, const std::string& address,
                                   std::string_view mode, Duration elapsed) const;

  private:
    [[nodiscard]] double loss_percent() const;

    std::uint64_t transmitted_ = 0;
    std::uint64_t received_ = 0;
    std::uint64_t duplicates_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t timed_ = 0;
    double sum_ms_ = 0, sum2_ms_ = 0;
    double min_ms_ = 0, max_ms_ = 0;
    std::set<std::uint16_t> seen_;
};

}  // namespace ferry::cli::ping
