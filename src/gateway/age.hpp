// Message age (docs/SPOOL.md, "Message age"): the clocks that stamp a message at ingest,
// and the rule that says, when its record would be sent upstream, how old it is, whether
// spool.max_age or the sensor's MQTT 5 Message Expiry Interval drops it, and what is left
// of that interval to send upstream.
//
// A Raspberry Pi has no real-time clock: the wall clock may start days off and be stepped
// by NTP at any time. So an age is never taken from the wall clock where the boot clock
// (CLOCK_BOOTTIME: monotonic, counts suspend) can say it:
//  - a record of this boot: boot clock now - boot clock at receipt; the wall clock is not
//    read, so a step of it either way changes nothing;
//  - a record of an earlier boot (or of an edgegw before spool version 3): the longer of
//    (a) the time this process has held it, on the boot clock since the spool was
//        recovered, so that no record is kept for ever, and
//    (b) wall clock now - wall clock at receipt, only if both readings were taken while
//        the kernel called the wall clock synchronized (a record from before version 3
//        counts as synchronized: the wall clock is all it has); a negative difference
//        counts as 0.
// Nothing here allocates; each judgement is O(1).
#pragma once

#include <chrono>
#include <cstdint>

#include "spool/format.hpp"  // spool::format::RecordExt

namespace edgegw::mqtt {
struct OutMessage;
}

namespace edgegw::gateway {

// The clocks an age is made of; tests give a manual one.
class Clock {
 public:
  virtual std::uint64_t realtime_ns() = 0;  // CLOCK_REALTIME: the wall clock
  virtual std::uint64_t boottime_ns() = 0;  // CLOCK_BOOTTIME: since this boot, counting suspend
  virtual bool wall_synced() = 0;           // the kernel calls the wall clock synchronized (NTP)
  virtual std::uint32_t boot() = 0;         // this boot: format::boot_hash of its boot_id (0: unknown)

 protected:
  ~Clock() = default;
};

// The real clocks. boot_id is read once; synchronization (adjtimex) at most once a second.
Clock& system_clock();

class Ages {
 public:
  enum class Verdict { send, too_old, expired };

  Ages(Clock& clock, std::chrono::nanoseconds max_age) : m_clock(clock), m_max_age_ns(ns(max_age)) {}

  // The spool was recovered now: records of earlier boots are held from here on.
  void started() { m_started_boot_ns = m_clock.boottime_ns(); }
  // The stamp of a message received now; `expiry_s`, if has_expiry, its Message Expiry Interval.
  spool::format::RecordExt stamp(bool has_expiry, std::uint32_t expiry_s);
  // A record as an edgegw before spool version 3 wrote it (no extension): aged by the wall clock.
  static spool::format::RecordExt legacy() {
    spool::format::RecordExt e;
    e.wall_synced = true;
    return e;
  }

  // How old a record is now, by the rule above.
  std::uint64_t age_ns(std::uint64_t received_ns, const spool::format::RecordExt& ext);
  // Whether it goes upstream now; `age` gets its age.
  Verdict judge(std::uint64_t received_ns, const spool::format::RecordExt& ext, std::uint64_t& age);
  // The Message Expiry Interval to send: what the sensor set less the whole seconds spent
  // (at least 1: a record judged live is sent live, a resend included).
  void set_expiry(mqtt::OutMessage& out, std::uint64_t received_ns, const spool::format::RecordExt& ext);

  std::uint64_t max_age_ns() const { return m_max_age_ns; }

 private:
  static std::uint64_t ns(std::chrono::nanoseconds d) { return static_cast<std::uint64_t>(d.count()); }

  Clock& m_clock;
  std::uint64_t m_max_age_ns;  // 0: no limit
  std::uint64_t m_started_boot_ns = 0;
};

}  // namespace edgegw::gateway
