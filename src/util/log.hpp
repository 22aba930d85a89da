// Logging for a daemon under journald: one line per call on stderr, prefixed with the
// syslog priority (<3> error ... <7> debug) so journald keeps the level. Formatting goes
// through a stack buffer, so logging never allocates. Single-threaded (the event loop).
#pragma once

#include <cstdint>

namespace edgegw::util {

enum class Level : int {
  silent = 0,
  error = 3,
  warning = 4,
  notice = 5,
  info = 6,
  debug = 7
};  // silent: tests, fuzzing

void set_log_level(Level level);
Level log_level();
bool log_enabled(Level level);

// printf-style; lines longer than 1 KiB are cut.
void log(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// A budget for one log call site that may repeat (a reconnect failing every few seconds
// for hours, a damaged stretch of spool): k_burst lines per k_window, then silence,
// counted; the next line logged says how many were suppressed.
class RateLimit {
 public:
  static constexpr unsigned k_burst = 5;
  static constexpr std::int64_t k_window_ns = 60'000'000'000;  // one minute

  // May a line be logged at `now_ns` (monotonic)? If so, `suppressed` is how many were
  // dropped since the last one.
  bool allow(std::int64_t now_ns, std::uint64_t& suppressed);

 private:
  std::int64_t m_window_start = 0;
  bool m_started = false;
  unsigned m_in_window = 0;
  std::uint64_t m_suppressed = 0;
};

std::int64_t monotonic_ns();

}  // namespace edgegw::util

// EGW_LOG for a line that may repeat: at most RateLimit::k_burst a minute from this call
// site; the next one logged after a quiet spell ends with "(N similar lines suppressed)".
#define EGW_LOG_LIMITED(level, fmt, ...)                                                                       \
  do {                                                                                                         \
    static ::edgegw::util::RateLimit egw_limit_;                                                               \
    std::uint64_t egw_suppressed_ = 0;                                                                         \
    if (::edgegw::util::log_enabled(::edgegw::util::Level::level) &&                                           \
        egw_limit_.allow(::edgegw::util::monotonic_ns(), egw_suppressed_)) {                                   \
      if (egw_suppressed_ == 0) ::edgegw::util::log(::edgegw::util::Level::level, fmt, __VA_ARGS__);           \
      else                                                                                                     \
        ::edgegw::util::log(::edgegw::util::Level::level, fmt " (%llu similar lines suppressed)", __VA_ARGS__, \
                            static_cast<unsigned long long>(egw_suppressed_));                                 \
    }                                                                                                          \
  } while (0)

#define EGW_LOG(level, ...)                                           \
  do {                                                                \
    if (::edgegw::util::log_enabled(::edgegw::util::Level::level))    \
      ::edgegw::util::log(::edgegw::util::Level::level, __VA_ARGS__); \
  } while (0)
