#include <gtest/gtest.h>

#include <vector>

#include "mem/ring.hpp"

using edgegw::mem::Ring;

TEST(Ring, keeps_order_across_the_wrap_and_positions_only_grow) {
  Ring<int> ring(3);
  std::vector<int> out;
  for (int i = 0; i < 10; ++i) {
    ring.push(i);
    if (ring.size() == 2) {
      out.push_back(ring.front());
      ring.pop_front();
    }
  }
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(ring.head(), 9u);
  EXPECT_EQ(ring.tail(), 10u);
  EXPECT_EQ(ring[9], 9);
  EXPECT_EQ(ring.back(), 9);
}

TEST(Ring, try_push_refuses_when_full_and_changes_nothing) {
  Ring<int> ring(2);
  EXPECT_TRUE(ring.try_push(1));
  EXPECT_TRUE(ring.try_push(2));
  EXPECT_TRUE(ring.full());
  EXPECT_EQ(ring.room(), 0u);
  EXPECT_FALSE(ring.try_push(3));
  EXPECT_EQ(ring.size(), 2u);
  EXPECT_EQ(ring.front(), 1);
  EXPECT_EQ(ring.back(), 2);
}

TEST(Ring, push_on_a_full_ring_aborts_instead_of_overwriting) {
  Ring<int> ring(1);
  ring.push(1);
  EXPECT_DEATH(ring.push(2), "full");
}

TEST(Ring, iterates_oldest_to_newest_and_holds_only_live_positions) {
  Ring<int> ring(4);
  for (int i = 1; i <= 6; ++i) {
    ring.push(i);
    if (ring.full()) ring.pop_front();
  }
  std::vector<int> seen;
  for (int v : ring) seen.push_back(v);
  EXPECT_EQ(seen, (std::vector<int>{4, 5, 6}));
  EXPECT_FALSE(ring.holds(2));
  EXPECT_TRUE(ring.holds(3));
  EXPECT_TRUE(ring.holds(5));
  EXPECT_FALSE(ring.holds(6));
  ring.clear();
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.head(), 6u);  // a token taken before clear() stays stale
  EXPECT_FALSE(ring.holds(5));
}

TEST(Ring, a_zero_capacity_holds_one) {
  Ring<int> ring(0);
  EXPECT_EQ(ring.capacity(), 1u);
  EXPECT_TRUE(ring.try_push(7));
  EXPECT_FALSE(ring.try_push(8));
}

TEST(Ring, pop_back_takes_back_the_last_push) {
  Ring<int> ring(2);
  ring.push(1);
  ring.push(2);
  ring.pop_back();
  EXPECT_EQ(ring.size(), 1u);
  EXPECT_EQ(ring.back(), 1);
  EXPECT_EQ(ring.tail(), 1u);
  ring.push(3);
  EXPECT_EQ(ring.back(), 3);
}
