// Internal to the ferry command: a log-linear histogram of latencies (HdrHistogram's layout).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ferry::cli {

/// Counts of durations in nanoseconds, in buckets whose width grows with the value,
/// as HdrHistogram lays them out: values below 256 ns have a bucket each; above
/// that every power of two is split into 128 equal sub-buckets, so a recorded
/// value is known to within 1/128 (0.8 %) of itself. Values up to 60 s are
/// resolved; a larger one is counted in the top bucket (max() stays exact).
///
/// Fixed memory (3808 counters, about 30 KiB, allocated by the constructor);
/// record() is a few instructions and never allocates.
/// Thread-safety: none; merge per-thread histograms with add().
class Histogram {
  public:
    static constexpr std::int64_t kHighest = 60'000'000'000;  ///< 60 s, in ns

    Histogram();

    /// Counts one value (negative values count as 0).
    void record(std::int64_t ns) noexcept {
        const std::uint64_t v = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
        ++counts_[index(v < kHighest ? v : kHighest)];
        ++count_;
        sum_ += v;
        if (v < min_) min_ = v;
        if (v > max_) max_ = v;
    }
    /// Adds every count of `other` to this one.
    void add(const Histogram& other) noexcept;
    /// Forgets every value.
    void reset() noexcept;

    [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
    /// Exact smallest and largest value recorded; 0 when empty.
    [[nodiscard]] std::int64_t min() const noexcept;
    [[nodiscard]] std::int64_t max() const noexcept { return static_cast<std::int64_t>(max_); }
    /// Exact mean; 0 when empty.
    [[nodiscard]] double mean() const noexcept;
    /// The smallest value such that `percent` % of the recorded values are at
    /// or below it, to the precision of its bucket (the bucket's highest
    /// value, as HdrHistogram reports it, but never above max()); 0 when empty.
    [[nodiscard]] std::int64_t percentile(double percent) const noexcept;

    /// The bucket of a value, and the highest value that falls in a bucket.
    static std::size_t index(std::uint64_t value) noexcept;
    static std::uint64_t highest_in(std::size_t index) noexcept;

  private:
    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
};

}  // namespace ferry::cli
