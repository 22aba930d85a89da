#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <string>
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

namespace {

// Writes down, in order, which part of one loop iteration ran.
struct Order {
  std::vector<std::string> ran;
};

struct Call final : Deferred {
  Call(Order& into, const char* called, bool at_end) : Deferred(at_end), order(into), name(called) {}
  void run_deferred() override { order.ran.emplace_back(name); }
  Order& order;
  const char* name;
};

struct Reader final : IoHandler {
  explicit Reader(Order& into) : order(into) {}
  void on_io(std::uint32_t) override {
    char c;
    while (::read(fd, &c, 1) == 1) {
    }
    order.ran.emplace_back("io");
  }
  Order& order;
  int fd = -1;
};

// A timer that queues an end-of-iteration call, as a session's ack() or publish() does.
struct Queuer final : Timer::Handler {
  Queuer(Order& into, Loop& on, Deferred& call) : order(into), loop(on), then(call) {}
  void on_timer(Timer&) override {
    order.ran.emplace_back("timer");
    loop.defer(then);
  }
  Order& order;
  Loop& loop;
  Deferred& then;
};

}  // namespace

// The output flushes of a session are end-of-iteration calls: they run after the I/O
// handlers, the ordinary deferred calls and the timers, whichever was queued first, and
// one queued by a timer still runs in the same iteration (so what a timer composes leaves
// with the rest, in one write).
TEST(Loop, end_of_iteration_calls_run_after_io_deferred_calls_and_timers) {
  ManualTime time;
  Loop loop(&time);
  Order order;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  Reader reader(order);
  reader.fd = fds[0];
  ASSERT_TRUE(loop.add(fds[0], EPOLLIN, &reader));
  Call flush(order, "at_end", true), flush_from_timer(order, "at_end from the timer", true),
      deferred(order, "deferred", false);
  Queuer queuer(order, loop, flush_from_timer);
  Timer timer(loop, queuer);
  loop.defer(flush);  // queued first, runs last
  loop.defer(deferred);
  timer.arm_in(Duration::zero());
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  ASSERT_TRUE(loop.run_once(Duration::zero()));
  EXPECT_EQ(order.ran, (std::vector<std::string>{"io", "deferred", "timer", "at_end", "at_end from the timer"}));
  order.ran.clear();
  ASSERT_TRUE(loop.run_once(Duration::zero()));
  EXPECT_TRUE(order.ran.empty()) << "a call ran twice";
  loop.remove(fds[0]);
  ::close(fds[0]);
  ::close(fds[1]);
}
