#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "event/loop.hpp"

using namespace edgegw::event;
using namespace std::chrono_literals;

namespace {

struct Recorder : Timer::Handler {
  std::vector<int> fired;
  int id_of(const Timer& t) const { return &t == first ? 1 : 2; }
  void on_timer(Timer& t) override { fired.push_back(id_of(t)); }
  const Timer* first = nullptr;
};

}  // namespace

TEST(Loop, timers_follow_a_manual_clock_not_the_wall) {
  ManualTime time;
  Loop loop(&time);
  Recorder r;
  Timer a(loop, r), b(loop, r);
  r.first = &a;
  a.arm_in(30s);
  b.arm_in(10s);
  const auto wall = std::chrono::steady_clock::now();
  loop.run_once(Duration::zero());
  EXPECT_TRUE(r.fired.empty());
  time.advance(10s - 1ns);
  loop.run_once(Duration::zero());
  EXPECT_TRUE(r.fired.empty()) << "a timer fired before its deadline";
  time.advance(1ns);
  loop.run_once(Duration::zero());
  EXPECT_EQ(r.fired, std::vector<int>{2});
  time.advance(20s);
  loop.run_once(Duration::zero());
  EXPECT_EQ(r.fired, (std::vector<int>{2, 1}));
  EXPECT_LT(std::chrono::steady_clock::now() - wall, 5s) << "the loop waited on the wall clock";
}

TEST(Loop, a_due_timer_cuts_the_wait_short) {
  ManualTime time;
  Loop loop(&time);
  Recorder r;
  Timer a(loop, r);
  r.first = &a;
  a.arm_in(1s);
  time.advance(1s);
  const auto wall = std::chrono::steady_clock::now();
  loop.run_once(10s);  // nothing to read: only the due timer ends the wait
  EXPECT_EQ(r.fired, std::vector<int>{1});
  EXPECT_LT(std::chrono::steady_clock::now() - wall, 5s);
}
