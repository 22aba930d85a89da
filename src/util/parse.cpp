#include "util/parse.hpp"

#include <array>
#include <utility>

namespace edgegw::util {
namespace {

// Splits "123unit" into its number and unit; nothing when there is no leading digit or
// the number overflows.
std::optional<std::pair<std::uint64_t, std::string_view>> split_number(std::string_view text) {
  std::uint64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  if (i == 0) return std::nullopt;
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return std::pair{value, unit};
}

template <size_t N>
std::optional<std::uint64_t> scale(std::string_view text,
                                   const std::array<std::pair<std::string_view, std::uint64_t>, N>& units) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  for (const auto& [name, factor] : units) {
    if (parts->second == name) {
      if (parts->first > UINT64_MAX / factor) return std::nullopt;
      return parts->first * factor;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> parse_bytes(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 9> k_units{{{"", 1},
                                                                                      {"B", 1},
                                                                                      {"KiB", 1ull << 10},
                                                                                      {"MiB", 1ull << 20},
                                                                                      {"GiB", 1ull << 30},
                                                                                      {"kB", 1000},
                                                                                      {"KB", 1000},
                                                                                      {"MB", 1000 * 1000},
                                                                                      {"GB", 1000 * 1000 * 1000}}};
  return scale(text, k_units);
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 6> k_units{
      {{"ns", 1},
       {"us", 1000},
       {"ms", 1000 * 1000},
       {"s", 1000ull * 1000 * 1000},
       {"m", 60ull * 1000 * 1000 * 1000},
       {"h", 3600ull * 1000 * 1000 * 1000}}};
  auto ns = scale(text, k_units);
  if (!ns || *ns > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(*ns));
}

}  // namespace edgegw::util
