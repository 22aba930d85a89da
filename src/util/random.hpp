// A small, fast, non-cryptographic generator (xorshift64*) for backoff jitter. Seeded
// explicitly so tests are deterministic.
#pragma once

#include <cstdint>

namespace edgegw::util {

class Random {
 public:
  explicit Random(std::uint64_t seed) : m_state(seed ? seed : 0x9e3779b97f4a7c15ull) {}

  std::uint64_t next() {
    m_state ^= m_state >> 12;
    m_state ^= m_state << 25;
    m_state ^= m_state >> 27;
    return m_state * 0x2545f4914f6cdd1dull;
  }

  // Uniform in [lo, hi] (inclusive); lo <= hi.
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + next() % (hi - lo + 1); }

 private:
  std::uint64_t m_state;
};

}  // namespace edgegw::util
