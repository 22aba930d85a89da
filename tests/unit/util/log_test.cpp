#include <gtest/gtest.h>

#include "util/log.hpp"

TEST(RateLimit, lets_a_burst_through_then_counts_what_it_suppresses_until_the_next_window) {
  edgegw::util::RateLimit limit;
  using L = edgegw::util::RateLimit;
  std::uint64_t suppressed = 99;
  std::int64_t t = 1'000;
  for (unsigned i = 0; i < L::k_burst; ++i) {
    EXPECT_TRUE(limit.allow(t + i, suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(limit.allow(t + 100 + i, suppressed));
  // A minute later: the next line goes out and says seven were suppressed.
  EXPECT_TRUE(limit.allow(t + L::k_window_ns, suppressed));
  EXPECT_EQ(suppressed, 7u);
  EXPECT_TRUE(limit.allow(t + L::k_window_ns + 1, suppressed));
  EXPECT_EQ(suppressed, 0u);
}
