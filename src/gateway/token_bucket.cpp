#include "gateway/token_bucket.hpp"

#include <algorithm>
#include <chrono>

namespace edgegw::gateway {

TokenBucket::TokenBucket(double capacity, double rate, event::TimePoint now)
    : m_capacity(capacity), m_rate(rate), m_tokens(capacity), m_at(now) {}

double TokenBucket::tokens(event::TimePoint now) const {
  if (now <= m_at) return m_tokens;
  return std::min(m_capacity, m_tokens + std::chrono::duration<double>(now - m_at).count() * m_rate);
}

bool TokenBucket::consume(double n, event::TimePoint now) {
  m_tokens = tokens(now);
  m_at = std::max(m_at, now);
  if (m_tokens < n) return false;
  m_tokens -= n;
  return true;
}

event::TimePoint TokenBucket::next_token(event::TimePoint now, double n) const {
  const double missing = std::min(n, m_capacity) - tokens(now);
  if (missing <= 0) return now;
  // Rounded down to whole microseconds, plus one: never before the token is there.
  return now + std::chrono::microseconds(static_cast<long>(1e6 * missing / m_rate) + 1);
}

}  // namespace edgegw::gateway
