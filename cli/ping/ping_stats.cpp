// `ferry ping`'s counts and their printed forms, after iputils ping (ping_common.c).
#include "ping/ping_stats.hpp"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace ferry::cli::ping {
namespace {

double to_ms(Duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

long long whole_ms(Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

std::string trip_time_text(Duration rtt) {
    const long long us = std::chrono::duration_cast<std::chrono::microseconds>(rtt).count();
    if (us >= 100000 - 50) return fmt::format("{} ms", (us + 500) / 1000);
    if (us >= 10000 - 5)
        return fmt::format("{}.{:01} ms", (us + 50) / 1000, ((us + 50) % 1000) / 100);
    if (us >= 1000) return fmt::format("{}.{:02} ms", (us + 5) / 1000, ((us + 5) % 1000) / 10);
    return fmt::format("{}.{:03} ms", us / 1000, us % 1000);
}

bool Stats::received(std::uint16_t sequence, std::optional<Duration> rtt) {
    if (!seen_.insert(sequence).second) {
        ++duplicates_;
        return false;
    }
    ++received_;
    if (rtt) {
        const double ms = to_ms(*rtt);
        min_ms_ = timed_ == 0 ? ms : std::min(min_ms_, ms);
        max_ms_ = timed_ == 0 ? ms : std::max(max_ms_, ms);
        sum_ms_ += ms;
        sum2_ms_ += ms * ms;
        ++timed_;
    }
    return true;
}

double Stats::loss_percent() const {
    if (transmitted_ == 0) return 0;
    return double(transmitted_ - std::min(received_, transmitted_)) * 100.0 / double(transmitted_);
}

std::string Stats::summary_line(Duration elapsed) const {
    std::string line = fmt::format("{} packets transmitted, {} received", transmitted_, received_);
    if (duplicates_ != 0) line += fmt::format(", +{} duplicates", duplicates_);
    if (errors_ != 0) line += fmt::format(", +{} errors", errors_);
    line += fmt::format(", {:g}% packet loss, time {}ms", loss_percent(), whole_ms(elapsed));
    return line;
}

std::optional<std::string> Stats::rtt_line() const {
    if (timed_ == 0) return std::nullopt;
    const double avg = sum_ms_ / double(timed_);
    const double mdev = std::sqrt(std::max(0.0, sum2_ms_ / double(timed_) - avg * avg));
    return fmt::format("rtt min/avg/max/mdev = {:.3f}/{:.3f}/{:.3f}/{:.3f} ms", min_ms_, avg,
                       max_ms_, mdev);
}

std::string Stats::json(const std::string& host, const std::string& address, std::string_view mode,
                        Duration elapsed) const {
    nlohmann::ordered_json j;
    j["host"] = host;
    j["address"] = address;
    j["mode"] = mode;
    j["transmitted"] = transmitted_;
    j["received"] = received_;
    j["duplicates"] = duplicates_;
    j["errors"] = errors_;
    j["loss_percent"] = loss_percent();
    j["time_ms"] = whole_ms(elapsed);
    if (timed_ != 0) {
        const double avg = sum_ms_ / double(timed_);
        // To the microsecond, as the clock behind them measures.
        const auto us = [](double ms) { return std::round(ms * 1000.0) / 1000.0; };
        j["rtt_ms"] = {
            {"min", us(min_ms_)},
            {"avg", us(avg)},
            {"max", us(max_ms_)},
            {"mdev", us(std::sqrt(std::max(0.0, sum2_ms_ / double(timed_) - avg * avg)))}};
    } else {
        j["rtt_ms"] = nullptr;
    }
    return j.dump();
}

}  // namespace ferry::cli::ping
