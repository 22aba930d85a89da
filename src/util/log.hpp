// Logging for a daemon under journald: one line per call on stderr, prefixed with the
// syslog priority (<3> error ... <7> debug) so journald keeps the level. Formatting goes
// through a stack buffer, so logging never allocates. Single-threaded (the event loop).
#pragma once

namespace edgegw::util {

enum class Level : int { silent = 0, error = 3, warning = 4, notice = 5, info = 6, debug = 7 };  // silent: tests, fuzzing

void set_log_level(Level level);
Level log_level();
bool log_enabled(Level level);

// printf-style; lines longer than 1 KiB are cut.
void log(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace edgegw::util

#define EGW_LOG(level, ...)                                                      \
  do {                                                                           \
    if (::edgegw::util::log_enabled(::edgegw::util::Level::level))               \
      ::edgegw::util::log(::edgegw::util::Level::level, __VA_ARGS__);            \
  } while (0)
