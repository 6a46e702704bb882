#include "bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ferry::cli {
namespace {

// Below kLinear every value has its own bucket; from there on each power of
// two [2^k, 2^(k+1)) is cut into kHalf buckets of width 2^(k-7).
constexpr int kLinearBits = 8;
constexpr std::uint64_t kLinear = 1u << kLinearBits;  // 256
constexpr std::uint64_t kHalf = kLinear / 2;          // 128

}  // namespace

std::size_t Histogram::index(std::uint64_t value) noexcept {
    if (value < kLinear) return static_cast<std::size_t>(value);
    const int shift = static_cast<int>(std::bit_width(value)) - kLinearBits;  // >= 1
    const std::uint64_t sub = value >> shift;                                 // in [128, 256)
    return static_cast<std::size_t>(kLinear + static_cast<std::uint64_t>(shift - 1) * kHalf +
                                    (sub - kHalf));
}

std::uint64_t Histogram::highest_in(std::size_t index) noexcept {
    if (index < kLinear) return index;
    const std::uint64_t above = index - kLinear;
    const int shift = static_cast<int>(above / kHalf) + 1;
    const std::uint64_t sub = above % kHalf + kHalf;
    return ((sub + 1) << shift) - 1;
}

Histogram::Histogram() : counts_(index(kHighest) + 1, 0) {}

void Histogram::add(const Histogram& other) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i)
        counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
}

void Histogram::reset() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = sum_ = max_ = 0;
    min_ = UINT64_MAX;
}

std::int64_t Histogram::min() const noexcept {
    return count_ == 0 ? 0 : static_cast<std::int64_t>(min_);
}

double Histogram::mean() const noexcept {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
}

std::int64_t Histogram::percentile(double percent) const noexcept {
    if (count_ == 0) return 0;
    // The rank of the value asked for, 1-based: p50 of 1..100 is the 50th.
    const double wanted =
        std::ceil(std::clamp(percent, 0.0, 100.0) / 100.0 * static_cast<double>(count_));
    const std::uint64_t rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(wanted));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        seen += counts_[i];
        if (seen >= rank) return static_cast<std::int64_t>(std::min(highest_in(i), max_));
    }
    return static_cast<std::int64_t>(max_);
}

}  // namespace ferry::cli
