#include "event/loop.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <cstdlib>

#include "util/log.hpp"

namespace edgegw::event {

Timer::Timer(Loop& loop, Handler& handler) : m_loop(loop), m_handler(handler) {
  m_next = loop.m_timers;
  loop.m_timers = this;
}

Timer::~Timer() {
  for (Timer** p = &m_loop.m_timers; *p; p = &(*p)->m_next) {
    if (*p == this) {
      *p = m_next;
      break;
    }
  }
}

void Timer::arm_at(TimePoint deadline) {
  m_deadline = deadline;
  m_armed = true;
}

void Timer::arm_in(Duration delay) { arm_at(m_loop.now() + delay); }

Loop::Loop(const TimeSource* time) : m_time(time), m_epoll(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!m_epoll) {
    EGW_LOG(error, "epoll_create1 failed: errno %d", errno);
    std::abort();
  }
}

bool Loop::add(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  return ::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool Loop::modify(int fd, std::uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  return ::epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, fd, &ev) == 0;
}

void Loop::remove(int fd) { ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr); }

void Loop::defer(Deferred& call) {
  if (call.m_queued) return;
  call.m_queued = true;
  call.m_next = nullptr;
  Queue& q = call.m_at_end ? m_at_end : m_deferred;
  if (q.tail) q.tail->m_next = &call;
  else q.head = &call;
  q.tail = &call;
}

bool Loop::run() {
  m_stopping = false;
  while (!m_stopping) {
    if (!run_once(std::chrono::seconds(60))) return false;
  }
  return true;
}

Duration Loop::until_next_timer(Duration max_wait) const {
  if (m_deferred.head || m_at_end.head) return Duration::zero();
  TimePoint now = this->now();
  Duration wait = max_wait;
  for (const Timer* t = m_timers; t; t = t->m_next) {
    if (t->m_armed) {
      Duration left = t->m_deadline - now;
      if (left < wait) wait = left < Duration::zero() ? Duration::zero() : left;
    }
  }
  return wait;
}

bool Loop::run_once(Duration max_wait) {
  Duration wait = until_next_timer(max_wait);
  // Round up to whole milliseconds so a timer is never woken early and spun on.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
  epoll_event events[32];
  int n = ::epoll_wait(m_epoll.get(), events, 32, static_cast<int>(ms));
  if (n < 0) {
    if (errno != EINTR) return false;
    n = 0;
  }
  for (int i = 0; i < n; ++i) static_cast<IoHandler*>(events[i].data.ptr)->on_io(events[i].events);
  run_queue(m_deferred);
  fire_timers();
  run_queue(m_at_end);
  return true;
}

void Loop::run_queue(Queue& queue) {
  // Calls queued while running wait for the next iteration, so a call that re-queues
  // itself cannot starve I/O.
  Deferred* call = queue.head;
  queue.head = queue.tail = nullptr;
  while (call) {
    Deferred* next = call->m_next;
    call->m_queued = false;
    call->run_deferred();
    call = next;
  }
}

void Loop::fire_timers() {
  TimePoint now = this->now();
  // A handler may arm or cancel any timer (including this one), so restart the scan after
  // each firing; the list holds a handful of timers.
  bool fired = true;
  while (fired) {
    fired = false;
    for (Timer* t = m_timers; t; t = t->m_next) {
      if (t->m_armed && t->m_deadline <= now) {
        t->m_armed = false;
        t->m_handler.on_timer(*t);
        fired = true;
        break;
      }
    }
  }
}

}  // namespace edgegw::event
