#include "observe/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using edgegw::observe::Histogram;

TEST(Histogram, buckets_tile_the_range_without_gaps_or_overlaps) {
  for (unsigned b = 0; b + 1 < Histogram::k_buckets; ++b) {
    ASSERT_EQ(Histogram::bucket_high(b) + 1, Histogram::bucket_low(b + 1)) << b;
    ASSERT_EQ(Histogram::bucket_of(Histogram::bucket_low(b)), b);
    ASSERT_EQ(Histogram::bucket_of(Histogram::bucket_high(b)), b);
  }
  EXPECT_EQ(Histogram::bucket_of(UINT64_MAX), Histogram::k_buckets - 1);
  EXPECT_LE(sizeof(Histogram), 9 * 1024u + 64);
}

// The documented bound: a percentile is within 1/128 of the true value (below 128 ns, exact).
TEST(Histogram, percentiles_are_within_the_relative_error_bound_on_a_log_uniform_sample) {
  std::mt19937_64 random(7);
  std::uniform_real_distribution<double> exponent(0, std::log(30e9));  // 1 ns .. 30 s
  Histogram h;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::exp(exponent(random)));
    h.record(v);
    values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    const double truth = static_cast<double>(values[std::max<std::size_t>(rank, 1) - 1]);
    const double got = static_cast<double>(h.percentile(q));
    EXPECT_LE(std::abs(got - truth), truth / 128 + 0.5) << "q " << q << " truth " << truth << " got " << got;
  }
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
}

TEST(Histogram, counts_at_or_below_a_bucket_edge_exactly) {
  Histogram h;
  for (std::uint64_t v : {std::uint64_t{10}, std::uint64_t{200}, std::uint64_t{1'000'000}, std::uint64_t{1'000'001},
                          std::uint64_t{5'000'000'000}}) {
    h.record(v);
  }
  EXPECT_EQ(h.count_at_or_below(9), 0u);
  EXPECT_EQ(h.count_at_or_below(10), 1u);
  EXPECT_EQ(h.count_at_or_below(5'000'000'000u), 5u);
  EXPECT_EQ(h.count_at_or_below(UINT64_MAX), 5u);
  EXPECT_EQ(h.percentile(0), 10u);
  Histogram empty;
  EXPECT_EQ(empty.percentile(0.99), 0u);
  EXPECT_EQ(empty.count_at_or_below(100), 0u);
}
