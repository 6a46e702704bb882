// Internal to the ferry command: a running count, redrawn in place on a terminal.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <fmt/core.h>

namespace ferry::cli {

/// The textbook programs print "\r  N bytes sent" after every chunk. On a
/// terminal ferry redraws the line at most ten times a second (printing per
/// 16-byte chunk would cost more than the transfer); into a pipe or a file
/// only the final count is written, once, on its own line.
class Progress {
  public:
    explicit Progress(std::string suffix) : suffix_(std::move(suffix)), tty_(::isatty(1) == 1) {}

    void update(std::uint64_t count) {
        if (!tty_) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_ < std::chrono::milliseconds(100)) return;
        last_ = now;
        fmt::print("\r  {} {}", count, suffix_);
        std::fflush(stdout);
    }
    void finish(std::uint64_t count) {
        fmt::print("{}  {} {}\n", tty_ ? "\r" : "", count, suffix_);
        std::fflush(stdout);
    }

  private:
    std::string suffix_;
    bool tty_;
    std::chrono::steady_clock::time_point last_{};
};

}  // namespace ferry::cli
