// Small helpers for what tests read: logs, broker output.
#pragma once

#include <string>

namespace edgegw::test {

// How often `what` occurs in `text` (overlapping occurrences counted).
inline long count_of(const std::string& text, const std::string& what) {
  long n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace edgegw::test
