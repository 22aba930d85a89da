#include "util/topic.hpp"

namespace edgegw::util {
namespace {

// Splits off the first level: returns it, and leaves `rest` after its '/' (or `done`
// true when it was the last level).
struct Levels {
  std::string_view text;
  bool done = false;
  std::string_view next() {
    const std::size_t slash = text.find('/');
    std::string_view l = text.substr(0, slash);
    if (slash == std::string_view::npos) done = true;
    else text.remove_prefix(slash + 1);
    return l;
  }
};

bool starts_with_wildcard(std::string_view filter) { return !filter.empty() && (filter[0] == '+' || filter[0] == '#'); }
bool starts_with_dollar(std::string_view s) { return !s.empty() && s[0] == '$'; }

}  // namespace

bool topic_matches(std::string_view filter, std::string_view topic) {
  if (starts_with_wildcard(filter) && starts_with_dollar(topic)) return false;
  Levels f{filter}, t{topic};
  for (;;) {
    const std::string_view fl = f.next();
    if (fl == "#") return true;
    const std::string_view tl = t.next();
    if (fl != "+" && fl != tl) return false;
    if (f.done || t.done) {
      if (f.done && t.done) return true;
      // "a/#" matches "a": the topic ended, the filter's next and last level is '#'.
      return t.done && f.text == "#";
    }
  }
}

bool filter_covers(std::string_view a, std::string_view b) {
  if (starts_with_wildcard(a) && starts_with_dollar(b)) return false;
  Levels x{a}, y{b};
  for (;;) {
    const std::string_view al = x.next();
    if (al == "#") return true;
    const std::string_view bl = y.next();
    if (bl == "#") return false;
    if (al != "+" && (bl == "+" || al != bl)) return false;
    if (x.done || y.done) {
      if (x.done && y.done) return true;
      return y.done && x.text == "#";
    }
  }
}

bool filters_overlap(std::string_view a, std::string_view b) {
  if ((starts_with_wildcard(a) && starts_with_dollar(b)) || (starts_with_wildcard(b) && starts_with_dollar(a)))
    return false;
  Levels x{a}, y{b};
  for (;;) {
    const std::string_view al = x.next();
    const std::string_view bl = y.next();
    if (al == "#" || bl == "#") return true;
    if (al != "+" && bl != "+" && al != bl) return false;
    if (x.done || y.done) {
      if (x.done && y.done) return true;
      return (x.done && y.text == "#") || (y.done && x.text == "#");
    }
  }
}

std::string_view subscription_filter(std::string_view filter) {
  constexpr std::string_view k_share = "$share/";
  if (!filter.starts_with(k_share)) return filter;
  const std::size_t slash = filter.find('/', k_share.size());
  return slash == std::string_view::npos ? std::string_view{} : filter.substr(slash + 1);
}

std::string_view filter_fixed_prefix(std::string_view filter) {
  std::size_t at = 0;
  for (;;) {
    const std::size_t slash = filter.find('/', at);
    const std::string_view l = filter.substr(at, slash == std::string_view::npos ? slash : slash - at);
    if (l == "+") return filter.substr(0, at);
    if (l == "#") return filter.substr(0, at == 0 ? 0 : at - 1);
    if (slash == std::string_view::npos) return filter;
    at = slash + 1;
  }
}

std::string_view filter_literal_prefix(std::string_view filter) {
  const std::string_view fixed = filter_fixed_prefix(filter);
  // filter_fixed_prefix dropped the '/' before a '#'; put it back.
  return fixed.size() < filter.size() && filter[fixed.size()] == '/' ? filter.substr(0, fixed.size() + 1) : fixed;
}

std::size_t level_count(std::string_view topic) {
  std::size_t n = 1;
  for (char ch : topic) n += ch == '/';
  return n;
}

std::string_view level(std::string_view topic, std::size_t n) {
  Levels t{topic};
  for (std::size_t i = 1;; ++i) {
    const std::string_view l = t.next();
    if (i == n) return l;
    if (t.done) return {};
  }
}

std::string_view levels_from(std::string_view topic, std::size_t n) {
  std::size_t at = 0;
  for (std::size_t i = 1; i < n; ++i) {
    const std::size_t slash = topic.find('/', at);
    if (slash == std::string_view::npos) return {};
    at = slash + 1;
  }
  return topic.substr(at);
}

}  // namespace edgegw::util
