// Parsing of human-written quantities used by the config: byte sizes ("256MiB", "4096")
// and durations ("10ms", "30s"). Pure functions; nothing is allocated.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace edgegw::util {

// "123", "4KiB", "256MiB", "1GiB", "10kB", "5MB" (SI units are powers of 1000). Returns
// nothing for anything else, including overflow.
std::optional<std::uint64_t> parse_bytes(std::string_view text);

// "250us", "10ms", "30s", "5m", "1h"; a bare number is not accepted (the unit is
// required so that a config is never read in the wrong unit).
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

}  // namespace edgegw::util
