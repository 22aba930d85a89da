// Time in nanoseconds for the stage histograms and probes. A message's timestamps come
// from CLOCK_REALTIME (they travel in probes between processes and are compared across a
// restart), which can step backwards: an interval that would be negative counts as 0.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

#include "event/loop.hpp"

namespace edgegw::gateway {

inline std::uint64_t clock_ns(clockid_t clock) {
  timespec ts;
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t realtime_ns() { return clock_ns(CLOCK_REALTIME); }

// A loop time point as nanoseconds of the steady clock.
inline std::uint64_t steady_ns(event::TimePoint t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

// From `since` to `now`, in nanoseconds; 0 if the clock went back in between.
inline std::uint64_t elapsed_ns(std::uint64_t since, std::uint64_t now) { return now > since ? now - since : 0; }

}  // namespace edgegw::gateway
