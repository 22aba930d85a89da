// A token bucket on the event loop's clock: it holds at most `capacity` tokens and
// gains `rate` per second; a step that costs tokens runs only if they are there. The
// gateway paces replay after an outage with it (uplink.drain_rate). Time comes from the
// caller (the loop's now()), so a test drives it with explicit time points. No allocation.
#pragma once

#include "event/loop.hpp"

namespace edgegw::gateway {

class TokenBucket {
 public:
  TokenBucket() = default;
  // Full (`capacity` tokens) at `now`; `rate` > 0 tokens per second.
  TokenBucket(double capacity, double rate, event::TimePoint now);

  // Takes `n` tokens if the bucket holds that many at `now` (true); else takes none.
  bool consume(double n, event::TimePoint now);
  // The first time point at which the bucket holds `n` tokens (`capacity` at most): `now`
  // if it holds them already, else just after the refill reaches them.
  event::TimePoint next_token(event::TimePoint now, double n = 1) const;
  // The tokens it holds at `now`.
  double tokens(event::TimePoint now) const;

 private:
  double m_capacity = 1;
  double m_rate = 1;
  double m_tokens = 0;
  event::TimePoint m_at{};  // when m_tokens was counted
};

}  // namespace edgegw::gateway
