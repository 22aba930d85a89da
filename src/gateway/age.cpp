#include "gateway/age.hpp"

#include <fcntl.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "gateway/clock.hpp"
#include "mqtt/session.hpp"

namespace edgegw::gateway {
namespace {

std::uint32_t read_boot() {
  const int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[64];
  const ssize_t n = ::read(fd, text, sizeof text);
  ::close(fd);
  if (n <= 0) return 0;
  std::size_t len = static_cast<std::size_t>(n);
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')) --len;
  return len ? spool::format::boot_hash(text, len) : 0;
}

class SystemClock final : public Clock {
 public:
  std::uint64_t realtime_ns() override { return clock_ns(CLOCK_REALTIME); }
  std::uint64_t boottime_ns() override { return clock_ns(CLOCK_BOOTTIME); }
  bool wall_synced() override {
    const std::uint64_t now = clock_ns(CLOCK_MONOTONIC_COARSE);
    if (m_checked_ns == 0 || now - m_checked_ns >= 1'000'000'000) {
      timex t{};
      const int state = ::adjtimex(&t);  // TIME_ERROR: STA_UNSYNC, no NTP discipline
      // The unit's ProtectClock= refuses adjtimex even to read (EPERM): then the mark
      // systemd-timesyncd leaves once synchronized; neither: not synchronized (the safe side).
      m_synced = state >= 0 ? state != TIME_ERROR : ::access("/run/systemd/timesync/synchronized", F_OK) == 0;
      m_checked_ns = now ? now : 1;
    }
    return m_synced;
  }
  std::uint32_t boot() override { return m_boot; }

 private:
  std::uint32_t m_boot = read_boot();
  std::uint64_t m_checked_ns = 0;
  bool m_synced = false;
};

}  // namespace

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

spool::format::RecordExt Ages::stamp(bool has_expiry, std::uint32_t expiry_s) {
  spool::format::RecordExt e;
  e.boot_ns = m_clock.boottime_ns();
  e.boot = m_clock.boot();
  e.wall_synced = m_clock.wall_synced();
  e.has_expiry = has_expiry;
  e.expiry_s = has_expiry ? expiry_s : 0;
  return e;
}

std::uint64_t Ages::age_ns(std::uint64_t received_ns, const spool::format::RecordExt& ext) {
  const std::uint64_t boot_now = m_clock.boottime_ns();
  if (ext.boot != 0 && ext.boot == m_clock.boot()) return elapsed_ns(ext.boot_ns, boot_now);
  const std::uint64_t held = elapsed_ns(m_started_boot_ns, boot_now);
  const bool wall_usable = ext.wall_synced && m_clock.wall_synced();
  return std::max(held, wall_usable ? elapsed_ns(received_ns, m_clock.realtime_ns()) : 0);
}

Ages::Verdict Ages::judge(std::uint64_t received_ns, const spool::format::RecordExt& ext, std::uint64_t& age) {
  age = 0;
  if (m_max_age_ns == 0 && !ext.has_expiry) return Verdict::send;  // nothing to read a clock for
  age = age_ns(received_ns, ext);
  if (ext.has_expiry && age / 1'000'000'000 >= ext.expiry_s) return Verdict::expired;
  if (m_max_age_ns != 0 && age > m_max_age_ns) return Verdict::too_old;
  return Verdict::send;
}

void Ages::set_expiry(mqtt::OutMessage& out, std::uint64_t received_ns, const spool::format::RecordExt& ext) {
  out.has_message_expiry = ext.has_expiry;
  if (!ext.has_expiry) return;
  const std::uint64_t spent_s = age_ns(received_ns, ext) / 1'000'000'000;
  out.message_expiry_s = spent_s < ext.expiry_s ? static_cast<std::uint32_t>(ext.expiry_s - spent_s) : 1;
}

}  // namespace edgegw::gateway
