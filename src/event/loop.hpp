// The event loop: one epoll instance, level-triggered, plus timers and deferred calls.
// Everything of edgegw's data path runs on the thread that calls run(); nothing here
// allocates after construction (timers and deferred calls are intrusive).
#pragma once

#include <chrono>
#include <cstdint>

#include "util/fd.hpp"

namespace edgegw::event {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

class IoHandler {
 public:
  virtual void on_io(std::uint32_t events) = 0;  // EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits

 protected:
  ~IoHandler() = default;
};

class Loop;

// A one-shot timer owned by its user; it registers with the loop for its whole life.
class Timer {
 public:
  class Handler {
   public:
    virtual void on_timer(Timer& timer) = 0;

   protected:
    ~Handler() = default;
  };

  Timer(Loop& loop, Handler& handler);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void arm_at(TimePoint deadline);
  void arm_in(Duration delay);
  void cancel() { m_armed = false; }
  bool armed() const { return m_armed; }
  TimePoint deadline() const { return m_deadline; }

 private:
  friend class Loop;
  Loop& m_loop;
  Handler& m_handler;
  TimePoint m_deadline{};
  bool m_armed = false;
  Timer* m_next = nullptr;  // the loop's list of all timers
};

// A call made later in this loop iteration or the next, outside the caller's stack (so
// that a callback never re-enters the code that triggered it). An ordinary one runs after
// the I/O handlers; one made `at_end` runs after every ordinary call and timer, just before
// the loop waits again: output flushes, so that everything composed during one iteration
// leaves in one write per connection.
class Deferred {
 public:
  virtual void run_deferred() = 0;

 protected:
  explicit Deferred(bool at_end = false) : m_at_end(at_end) {}
  ~Deferred() = default;

 private:
  friend class Loop;
  Deferred* m_next = nullptr;
  bool m_queued = false;
  const bool m_at_end;
};

// Where a loop reads the time. The daemon's loops read the steady clock; a test gives a
// loop a clock it moves by hand (ManualTime), so that timers, keepalives, backoffs and
// rates are tested in microseconds without sleeping.
class TimeSource {
 public:
  virtual TimePoint now() const = 0;

 protected:
  ~TimeSource() = default;
};

// A clock that stands still until advance(): run_once(Duration::zero()) after an
// advance() fires every timer that came due.
class ManualTime final : public TimeSource {
 public:
  TimePoint now() const override { return m_now; }
  void advance(Duration by) { m_now += by; }

 private:
  TimePoint m_now{std::chrono::hours(1)};  // not the epoch: "0" often means "never" to callers
};

class Loop {
 public:
  // `time`: nullptr for the steady clock, or a test's clock (which must outlive the loop).
  explicit Loop(const TimeSource* time = nullptr);
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // fd registration; the handler must outlive its registration. Return false on failure
  // (errno is set).
  bool add(int fd, std::uint32_t events, IoHandler* handler);
  bool modify(int fd, std::uint32_t events, IoHandler* handler);
  void remove(int fd);

  // Queues a deferred call unless it is already queued.
  void defer(Deferred& call);

  // Runs until stop(). Returns false if epoll itself failed.
  bool run();
  // One iteration waiting at most max_wait (for tests and tools). False on epoll failure.
  bool run_once(Duration max_wait);
  void stop() { m_stopping = true; }
  bool stopping() const { return m_stopping; }

  TimePoint now() const { return m_time ? m_time->now() : Clock::now(); }

 private:
  friend class Timer;
  struct Queue {
    Deferred* head = nullptr;
    Deferred* tail = nullptr;
  };
  void fire_timers();
  static void run_queue(Queue& queue);
  Duration until_next_timer(Duration max_wait) const;

  const TimeSource* m_time;
  util::Fd m_epoll;
  Timer* m_timers = nullptr;
  Queue m_deferred, m_at_end;
  bool m_stopping = false;
};

}  // namespace edgegw::event
