// MQTT topic names and filters (MQTT 3.1.1 4.7, 5.0 4.7): whether a filter matches a topic,
// whether one filter covers or overlaps another (check-config's reasoning about uplink
// rules), and the upstream topic template of a rule ("devices/{2}/{#}"). No allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgegw::util {

// Whether `filter` matches the topic name `topic`. A filter that starts with a wildcard
// does not match a topic that starts with '$' [MQTT-4.7.2-1].
bool topic_matches(std::string_view filter, std::string_view topic);
// Whether every topic `b` matches is matched by `a` too.
bool filter_covers(std::string_view a, std::string_view b);
// Whether some topic is matched by both.
bool filters_overlap(std::string_view a, std::string_view b);
// The filter of a shared subscription ("$share/group/filter" -> "filter"), else `filter`.
std::string_view subscription_filter(std::string_view filter);

// The leading text every topic `filter` matches starts with: up to the first wildcard
// level ("a/b/+/c" -> "a/b/"), without the '/' before a '#' ("a/#" -> "a", as "a/#"
// matches "a"); the whole filter when it has no wildcard.
std::string_view filter_fixed_prefix(std::string_view filter);
// The filter's text before its first wildcard level ("a/#" -> "a/", "a/+/c" -> "a/"); the
// whole filter when it has no wildcard.
std::string_view filter_literal_prefix(std::string_view filter);

// A template: literal text with {N} (the local topic's N-th level, from 1) and {#} (the
// levels from the filter's '#' on, joined with '/'; empty when '#' matched nothing).
// Visits its parts in order; false with `why` set when malformed.
struct TemplatePart {
  enum Kind : std::uint8_t { literal, level, rest } kind;
  std::uint16_t index;    // kind level: from 1
  std::string_view text;  // kind literal
};
template <class F>
bool for_each_template_part(std::string_view text, F&& visit, std::string* why = nullptr);

// Levels of `topic` ("a/b/c": 3); level(topic, n) is the n-th, from 1 (empty if beyond).
std::size_t level_count(std::string_view topic);
std::string_view level(std::string_view topic, std::size_t n);
// The topic's levels from the n-th on ("a/b/c", 2 -> "b/c"; beyond the last: "").
std::string_view levels_from(std::string_view topic, std::size_t n);

// ---- inline ----------------------------------------------------------------------------

template <class F>
bool for_each_template_part(std::string_view text, F&& visit, std::string* why) {
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t open = text.find_first_of("{}", at);
    if (open == std::string_view::npos) {
      visit(TemplatePart{TemplatePart::literal, 0, text.substr(at)});
      break;
    }
    if (open > at) visit(TemplatePart{TemplatePart::literal, 0, text.substr(at, open - at)});
    const std::size_t close = text.find('}', open + 1);
    if (text[open] == '}' || close == std::string_view::npos) {
      if (why) *why = "'{' and '}' must pair, as in {1} or {#}";
      return false;
    }
    std::string_view inside = text.substr(open + 1, close - open - 1);
    if (inside == "#") {
      visit(TemplatePart{TemplatePart::rest, 0, {}});
    } else {
      unsigned n = 0;
      bool ok = !inside.empty() && inside.size() <= 3;
      for (char ch : inside) {
        ok = ok && ch >= '0' && ch <= '9';
        n = n * 10 + static_cast<unsigned>(ch - '0');
      }
      if (!ok || n == 0) {
        if (why) *why = "{" + std::string(inside) + "} is not a level: write {1}, {2}, ... or {#}";
        return false;
      }
      visit(TemplatePart{TemplatePart::level, static_cast<std::uint16_t>(n), {}});
    }
    at = close + 1;
  }
  return true;
}

}  // namespace edgegw::util
