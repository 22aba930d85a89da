#include "util/log.hpp"

#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>

namespace edgegw::util {
namespace {
Level g_level = Level::info;
}

void set_log_level(Level level) { g_level = level; }
Level log_level() { return g_level; }
bool log_enabled(Level level) { return static_cast<int>(level) <= static_cast<int>(g_level); }

void log(Level level, const char* fmt, ...) {
  char line[1024];
  int n = std::snprintf(line, sizeof line, "<%d>", static_cast<int>(level));
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  // One write per line keeps lines whole when several processes share the journal stream.
  ssize_t ignored = ::write(STDERR_FILENO, line, len);
  (void)ignored;
}

bool RateLimit::allow(std::int64_t now_ns, std::uint64_t& suppressed) {
  if (!m_started || now_ns - m_window_start >= k_window_ns) {
    m_started = true;
    m_window_start = now_ns;
    m_in_window = 0;
  }
  if (m_in_window >= k_burst) {
    ++m_suppressed;
    return false;
  }
  ++m_in_window;
  suppressed = m_suppressed;
  m_suppressed = 0;
  return true;
}

std::int64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace edgegw::util
