// What a spool workload told the world before a crash or an error stopped it, and the
// append step both the crash sweep (tests/unit/spool/crash_test.cpp) and the faults fuzz
// target (tests/fuzz/faults_fuzz.cpp) drive it with, as the gateway does. No GoogleTest.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "spool/spool.hpp"

namespace edgegw::test {

inline std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct Told {
  std::map<std::uint64_t, std::string> payload_of;  // every record appended, by its seq
  std::uint64_t durable = 0;  // the highest seq a completed commit made durable (PUBACKs went out)
  std::uint64_t acked = 0;    // the highest seq upstream acknowledged
};

// Appends one record; a full batch is committed first. False once the spool has failed.
inline bool append_told(spool::Spool& s, Told& told, const std::string& payload) {
  std::uint64_t seq = 0;
  spool::Append a = s.append("sensors/x", bytes(payload), 1, false, 0, seq);
  if (a == spool::Append::busy) {
    if (!s.commit()) return false;
    told.durable = s.durable_seq();
    a = s.append("sensors/x", bytes(payload), 1, false, 0, seq);
  }
  if (a != spool::Append::ok) return false;
  told.payload_of[seq] = payload;
  return true;
}

}  // namespace edgegw::test
