#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "mem/pool.hpp"

using edgegw::mem::Pool;
using edgegw::mem::PoolWaiter;
using edgegw::mem::Slot;

TEST(Pool, hands_out_every_slot_once_then_reports_exhaustion) {
  Pool pool(8, 100, 28);
  std::set<std::uint8_t*> seen;
  std::vector<Slot*> slots;
  for (int i = 0; i < 8; ++i) {
    Slot* s = pool.acquire();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->capacity, 128u);
    EXPECT_TRUE(seen.insert(s->data).second);
    slots.push_back(s);
  }
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(pool.in_use(), 8u);
  EXPECT_EQ(pool.high_water(), 8u);
  pool.release(slots[3]);
  EXPECT_EQ(pool.acquire(), slots[3]);
}

TEST(Pool, slots_do_not_overlap) {
  Pool pool(4, 64, 0);
  Slot* a = pool.acquire();
  Slot* b = pool.acquire();
  EXPECT_GE(static_cast<std::size_t>(std::abs(b->data - a->data)), 64u);
}

TEST(Pool, tells_a_waiter_once_when_a_slot_comes_back) {
  struct Waiter : PoolWaiter {
    int calls = 0;
    void on_slot_available() override { ++calls; }
  } waiter;
  Pool pool(1, 64);
  Slot* s = pool.acquire();
  pool.wait_for_slot(&waiter);
  pool.release(s);
  EXPECT_EQ(waiter.calls, 1);
  pool.release(pool.acquire());
  EXPECT_EQ(waiter.calls, 1);
}

TEST(PoolDeathTest, aborts_on_a_double_release) {
  Pool pool(1, 64);
  Slot* s = pool.acquire();
  pool.release(s);
  EXPECT_DEATH(pool.release(s), "");
}

TEST(Pool, a_waiter_withdraws_only_its_own_wait) {
  struct Waiter : PoolWaiter {
    int calls = 0;
    void on_slot_available() override { ++calls; }
  } first, second;
  Pool pool(1, 64);
  Slot* s = pool.acquire();
  pool.wait_for_slot(&first);
  pool.stop_waiting(&second);  // not registered: changes nothing
  pool.release(s);
  EXPECT_EQ(first.calls, 1);
  s = pool.acquire();
  pool.wait_for_slot(&first);
  pool.stop_waiting(&first);
  pool.release(s);
  EXPECT_EQ(first.calls, 1);
}
