#include "observe/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace edgegw::observe {

// Values >= k_linear: the top k_sub_bits+1 bits pick the bucket. With shift = msb - 6,
// v >> shift is in [64, 128), so each shift (one power of two) holds 64 buckets.
unsigned Histogram::bucket_of(std::uint64_t ns) {
  if (ns < k_linear) return static_cast<unsigned>(ns);
  const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(ns));
  const unsigned shift = msb - k_sub_bits;  // >= 1 here
  if (shift > k_max_shift) return k_buckets - 1;
  const unsigned sub = static_cast<unsigned>(ns >> shift) - (1u << k_sub_bits);
  return k_linear + (shift - 1) * (1u << k_sub_bits) + sub;
}

std::uint64_t Histogram::bucket_low(unsigned bucket) {
  if (bucket < k_linear) return bucket;
  const unsigned shift = (bucket - k_linear) / (1u << k_sub_bits) + 1;
  const unsigned sub = (bucket - k_linear) % (1u << k_sub_bits);
  return (std::uint64_t{(1u << k_sub_bits) + sub}) << shift;
}

std::uint64_t Histogram::bucket_high(unsigned bucket) {
  if (bucket + 1 >= k_buckets) return UINT64_MAX;
  return bucket_low(bucket + 1) - 1;
}

void Histogram::record(std::uint64_t ns) {
  std::uint32_t& c = m_counts[bucket_of(ns)];
  if (c != UINT32_MAX) ++c;
  ++m_count;
  m_sum += ns;
  m_min = std::min(m_min, ns);
  m_max = std::max(m_max, ns);
}

std::uint64_t Histogram::percentile(double q) const {
  if (m_count == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(m_count)));
  std::uint64_t seen = 0;
  for (unsigned b = 0; b < k_buckets; ++b) {
    seen += m_counts[b];
    if (seen >= std::max<std::uint64_t>(rank, 1)) {
      if (b + 1 == k_buckets) return m_max;
      const std::uint64_t low = bucket_low(b), high = bucket_high(b);
      return std::clamp(low + (high - low) / 2, min(), m_max);
    }
  }
  return m_max;
}

std::uint64_t Histogram::count_at_or_below(std::uint64_t ns) const {
  if (ns >= m_max) return m_count;
  std::uint64_t n = 0;
  for (unsigned b = 0; b < k_buckets && bucket_high(b) <= ns; ++b) n += m_counts[b];
  return n;
}

}  // namespace edgegw::observe
