// A fixed-memory log-linear histogram of durations in nanoseconds (HdrHistogram-style):
// values below 128 ns are counted exactly; above, each power of two is split into 64
// equal buckets, so a bucket is at most 1/64 of its values wide and a percentile read at
// the bucket's midpoint is within 1/128 (0.8 %) of the true value. Values up to 2^40 ns
// (18 minutes) are kept apart; larger ones share the last bucket, and max() is exact.
// Record and read without allocation; 9 KiB each. Single-threaded (the event loop).
#pragma once

#include <array>
#include <cstdint>

namespace edgegw::observe {

class Histogram {
 public:
  static constexpr unsigned k_sub_bits = 6;                     // 64 buckets per power of two
  static constexpr unsigned k_linear = 2u << k_sub_bits;        // 0..127 counted exactly
  static constexpr unsigned k_max_shift = 40 - k_sub_bits - 1;  // 2^40 ns and above share the top
  static constexpr unsigned k_buckets = k_linear + k_max_shift * (1u << k_sub_bits);

  void record(std::uint64_t ns);
  void reset() { *this = Histogram(); }

  std::uint64_t count() const { return m_count; }
  std::uint64_t sum() const { return m_sum; }
  std::uint64_t min() const { return m_count ? m_min : 0; }
  std::uint64_t max() const { return m_max; }
  // The value at quantile q (0..1): the midpoint of the bucket holding it, never above max().
  std::uint64_t percentile(double q) const;
  // How many recorded values are <= ns (exact at bucket edges; for Prometheus buckets).
  std::uint64_t count_at_or_below(std::uint64_t ns) const;

  static unsigned bucket_of(std::uint64_t ns);
  static std::uint64_t bucket_low(unsigned bucket);   // smallest value in the bucket
  static std::uint64_t bucket_high(unsigned bucket);  // largest value in the bucket

 private:
  std::array<std::uint32_t, k_buckets> m_counts{};
  std::uint64_t m_count = 0, m_sum = 0, m_min = UINT64_MAX, m_max = 0;
};

}  // namespace edgegw::observe
