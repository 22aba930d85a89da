#include <gtest/gtest.h>

#include <set>

#include "mqtt/session.hpp"

using namespace std::chrono_literals;
using edgegw::mqtt::backoff_delay;

TEST(Backoff, doubles_from_the_minimum_up_to_the_maximum_with_jitter_in_the_upper_half) {
  edgegw::util::Random random(42);
  for (unsigned attempt = 0; attempt < 12; ++attempt) {
    auto full = std::min<edgegw::event::Duration>(200ms * (1u << attempt), 30s);
    for (int i = 0; i < 50; ++i) {
      auto d = backoff_delay(attempt, 200ms, 30s, random);
      EXPECT_GE(d, full / 2) << "attempt " << attempt;
      EXPECT_LE(d, full) << "attempt " << attempt;
    }
  }
}

TEST(Backoff, jitter_spreads_the_delays) {
  edgegw::util::Random random(7);
  std::set<edgegw::event::Duration::rep> seen;
  for (int i = 0; i < 20; ++i) seen.insert(backoff_delay(3, 200ms, 30s, random).count());
  EXPECT_GT(seen.size(), 15u);
}
