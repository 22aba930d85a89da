#include "config/config.hpp"

#define TOML_EXCEPTIONS 0
// toml++ 3.3 asserts preconditions its own parser does not keep: malformed text such as
// "n=[}" trips them (found by tests/fuzz/config_fuzz.cpp). Release builds compile them out,
// and the parser goes on to report a parse error; debug builds would abort instead. Off
// here too, so that every build parses as the shipped one does (and the fuzzer, with ASan
// and UBSan, checks that path). Where toml++ turns one into an assumption (clang with
// NDEBUG), the text is refused before it gets there: see bad_table_header().
#define TOML_ASSERT(expr) static_assert(true)
#include <toml++/toml.h>

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "edgegw/build_info.hpp"
#include "util/parse.hpp"

namespace edgegw::config {
namespace {

// Walks one document, checking each key and collecting every error with its line.
class Checker {
 public:
  Checker(const std::string& source, std::vector<std::string>& errors) : m_source(source), m_errors(errors) {}

  void error(const toml::source_region& where, std::string_view key, std::string_view reason) {
    m_errors.push_back(located(where, key, reason));
  }
  std::string located(const toml::source_region& where, std::string_view key, std::string_view reason) const {
    std::ostringstream out;
    out << m_source << ':' << where.begin.line << ": " << key << ": " << reason;
    return out.str();
  }

  // Keys not in `known` are errors (a misspelt key must never be silently ignored).
  void only_known(const toml::table& table, std::string_view prefix, std::initializer_list<std::string_view> known) {
    for (auto&& [key, node] : table) {
      bool ok = false;
      for (std::string_view k : known) ok = ok || key.str() == k;
      if (!ok) error(key.source(), join(prefix, key.str()), "unknown key");
    }
  }

  // A sub-table (or nothing when absent); anything else is an error.
  const toml::table* table(const toml::table& parent, std::string_view prefix, std::string_view key, bool required) {
    const toml::node* node = parent.get(key);
    if (!node) {
      if (required) error(parent.source(), join(prefix, key), "missing table");
      return nullptr;
    }
    if (!node->is_table()) {
      error(node->source(), join(prefix, key), "must be a table");
      return nullptr;
    }
    return node->as_table();
  }

  bool string(const toml::table* t, std::string_view prefix, std::string_view key, std::string& out, bool required) {
    const toml::node* node = get(t, prefix, key, required);
    if (!node) return false;
    if (!node->is_string()) {
      error(node->source(), join(prefix, key), "must be a string");
      return false;
    }
    out = node->as_string()->get();
    m_last = node->source();
    return true;
  }

  // An integer in [min, max].
  template <class T>
  void integer(const toml::table* t, std::string_view prefix, std::string_view key, T& out, std::int64_t min,
               std::int64_t max) {
    const toml::node* node = get(t, prefix, key, false);
    if (!node) return;
    if (!node->is_integer()) {
      error(node->source(), join(prefix, key), "must be an integer");
      return;
    }
    std::int64_t v = node->as_integer()->get();
    if (v < min || v > max) {
      error(node->source(), join(prefix, key),
            "must be from " + std::to_string(min) + " to " + std::to_string(max) + ", not " + std::to_string(v));
      return;
    }
    out = static_cast<T>(v);
  }

  // A byte size: an integer or a string with a unit ("256MiB"), in [min, max].
  void bytes(const toml::table* t, std::string_view prefix, std::string_view key, std::uint64_t& out,
             std::uint64_t min, std::uint64_t max) {
    const toml::node* node = get(t, prefix, key, false);
    if (!node) return;
    std::optional<std::uint64_t> v;
    if (node->is_integer() && node->as_integer()->get() >= 0) v = static_cast<std::uint64_t>(node->as_integer()->get());
    else if (node->is_string()) v = util::parse_bytes(node->as_string()->get());
    if (!v) {
      error(node->source(), join(prefix, key), "must be a size such as 4096, \"64KiB\" or \"256MiB\"");
      return;
    }
    if (*v < min || *v > max) {
      error(node->source(), join(prefix, key),
            "must be from " + std::to_string(min) + " to " + std::to_string(max) + " bytes, not " + std::to_string(*v));
      return;
    }
    out = *v;
  }

  void duration(const toml::table* t, std::string_view prefix, std::string_view key, std::chrono::nanoseconds& out,
                std::chrono::nanoseconds min, std::chrono::nanoseconds max) {
    std::string text;
    if (!string(t, prefix, key, text, false)) return;
    auto v = util::parse_duration(text);
    if (!v) {
      error(m_last, join(prefix, key), "must be a duration with a unit, such as \"10ms\" or \"30s\"");
      return;
    }
    if (*v < min || *v > max) {
      error(m_last, join(prefix, key), "out of range (" + describe(min) + " to " + describe(max) + ")");
      return;
    }
    out = *v;
  }

  // One of the given words; returns its index or -1.
  int choice(const toml::table* t, std::string_view prefix, std::string_view key,
             std::initializer_list<std::string_view> words) {
    std::string text;
    if (!string(t, prefix, key, text, false)) return -1;
    int i = 0;
    std::string list;
    for (std::string_view w : words) {
      if (text == w) return i;
      list += (i++ ? ", \"" : "\"") + std::string(w) + "\"";
    }
    error(m_last, join(prefix, key), "must be one of " + list + ", not \"" + text + "\"");
    return -1;
  }

  bool strings(const toml::table* t, std::string_view prefix, std::string_view key, std::vector<std::string>& out,
               bool required) {
    const toml::node* node = get(t, prefix, key, required);
    if (!node) return false;
    const toml::array* arr = node->as_array();
    if (!arr) {
      error(node->source(), join(prefix, key), "must be an array of strings");
      return false;
    }
    out.clear();
    for (const toml::node& el : *arr) {
      if (!el.is_string()) {
        error(el.source(), join(prefix, key), "must be an array of strings");
        return false;
      }
      out.push_back(el.as_string()->get());
    }
    m_last = node->source();
    return true;
  }

  const toml::source_region& last() const { return m_last; }

  static std::string join(std::string_view prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
  }

 private:
  const toml::node* get(const toml::table* t, std::string_view prefix, std::string_view key, bool required) {
    const toml::node* node = t ? t->get(key) : nullptr;
    if (!node && required) error(t ? t->source() : toml::source_region{}, join(prefix, key), "required");
    return node;
  }

  static std::string describe(std::chrono::nanoseconds d) {
    using namespace std::chrono;
    if (d % seconds(1) == nanoseconds::zero()) return std::to_string(duration_cast<seconds>(d).count()) + "s";
    return std::to_string(duration_cast<milliseconds>(d).count()) + "ms";
  }

  const std::string& m_source;
  std::vector<std::string>& m_errors;
  toml::source_region m_last;
};

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return false;
  }
  return true;
}

// A topic filter as MQTT 4.7.1 defines it: '#' alone and last, '+' alone in its level.
bool valid_filter(std::string_view filter, std::string& why) {
  if (filter.empty()) {
    why = "a topic filter cannot be empty";
    return false;
  }
  for (std::size_t start = 0; start <= filter.size();) {
    std::size_t end = filter.find('/', start);
    if (end == std::string_view::npos) end = filter.size();
    std::string_view level = filter.substr(start, end - start);
    if (level.find_first_of("+#") != std::string_view::npos && level.size() != 1) {
      why = "'+' and '#' must stand alone in a level: \"" + std::string(filter) + "\"";
      return false;
    }
    if (level == "#" && end != filter.size()) {
      why = "'#' must be the last level: \"" + std::string(filter) + "\"";
      return false;
    }
    start = end + 1;
  }
  return true;
}

void read_tls(Checker& c, const toml::table& parent, std::string_view prefix, Tls& tls) {
  const toml::table* t = c.table(parent, prefix, "tls", false);
  if (!t) return;
  const std::string p = Checker::join(prefix, "tls");
  c.only_known(*t, p, {"ca_file", "cert_file", "key_file", "server_name", "alpn"});
  c.string(t, p, "ca_file", tls.ca_file, false);
  c.string(t, p, "cert_file", tls.cert_file, false);
  c.string(t, p, "key_file", tls.key_file, false);
  c.string(t, p, "server_name", tls.server_name, false);
  c.strings(t, p, "alpn", tls.alpn, false);
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    c.error(t->source(), p, "cert_file and key_file go together (mutual TLS needs both)");
  }
}

void read_url(Checker& c, const toml::table* t, std::string_view prefix, Url& url) {
  std::string text;
  if (!c.string(t, prefix, "url", text, true)) return;
  std::string why;
  if (auto parsed = parse_url(text, why)) url = *parsed;
  else c.error(c.last(), Checker::join(prefix, "url"), why);
}

void read_version(Checker& c, const toml::table* t, std::string_view prefix, MqttVersion& out) {
  int v = c.choice(t, prefix, "mqtt_version", {"3.1.1", "5", "auto"});
  if (v >= 0) out = v == 0 ? MqttVersion::v311 : v == 1 ? MqttVersion::v5 : MqttVersion::automatic;
}

void read_keepalive(Checker& c, const toml::table* t, std::string_view prefix, std::uint16_t& out) {
  std::chrono::nanoseconds ka = std::chrono::seconds(out);
  c.duration(t, prefix, "keepalive", ka, std::chrono::seconds(0), std::chrono::seconds(65535));
  out = static_cast<std::uint16_t>(std::chrono::duration_cast<std::chrono::seconds>(ka).count());
}

void read_retry(Checker& c, const toml::table* t, std::string_view prefix, Retry& out) {
  using namespace std::chrono_literals;
  c.duration(t, prefix, "connect_timeout", out.connect_timeout, 100ms, 10min);
  c.duration(t, prefix, "reconnect_min", out.reconnect_min, 10ms, 1h);
  c.duration(t, prefix, "reconnect_max", out.reconnect_max, 10ms, 1h);
  if (out.reconnect_max < out.reconnect_min) {
    c.error(c.last(), Checker::join(prefix, "reconnect_max"), "cannot be less than reconnect_min");
  }
}

}  // namespace

// toml++ 3.3 (Debian's) calls its key parser on whatever follows a table header's '[' and
// asserts (built with clang and NDEBUG: assumes) that it starts a key: "[&", "[[[" or "[\0"
// abort a debug build (found by tests/fuzz/config_fuzz.cpp; upstream issue
// marzer/tomlplusplus#294). Such lines are refused before toml++ sees them: the line
// number of the first, or 0. Lines inside a multi-line array or string are looked at too,
// which for edgegw's keys (strings and arrays of strings) refuses nothing it could use.
static std::size_t bad_table_header(std::string_view text) {
  auto key_start = [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '"' || ch == '\'' || ch == ']';
  };
  std::size_t line = 1;
  for (std::size_t at = 0; at < text.size(); ++line) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view l = text.substr(at, end - at);
    const bool newline_follows = end < text.size();
    at = end + 1;
    const std::size_t first = l.find_first_not_of(" \t");
    if (first == std::string_view::npos || l[first] != '[') continue;
    l.remove_prefix(first + 1);
    if (!l.empty() && l[0] == '[') l.remove_prefix(1);  // [[array of tables]]
    const std::size_t key = l.find_first_not_of(" \t");
    if (key == std::string_view::npos ? newline_follows : !key_start(l[key])) return line;  // (a newline is no key)
  }
  return 0;
}

// toml++ 3.3 reaches an "unreachable" point (undefined behaviour) when it checks a
// non-ASCII character outside a string for whitespace ("\u00e9d = 1", "n = 5\"\u00e9";
// found by tests/fuzz/config_fuzz.cpp). TOML allows none there (bare keys and values are
// ASCII, whitespace is space and tab), so such text is refused before toml++ sees it: the
// line of the first, or 0. A quote opens a string only where a key or value can start
// (after = [ { , . or at the start of a line), as toml++ reads it; elsewhere it is part
// of a malformed bare value, which toml++ scans for whitespace.
static std::size_t non_ascii_outside_strings(std::string_view text) {
  std::size_t line = 1;
  std::string_view quote;  // the open string's delimiter: " ' \"\"\" or '''
  bool comment = false;
  char prev = '\n';  // the last character outside strings and comments, blanks aside
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\n') {
      ++line;
      comment = false;
      if (quote.size() == 1) quote = {};  // a one-line string cannot go on (toml++ reports it)
      if (quote.empty()) prev = '\n';
      continue;
    }
    if (comment) continue;
    if (!quote.empty()) {
      if (ch == '\\' && quote[0] == '"') ++i;  // an escape: the next character is not a delimiter
      else if (text.substr(i, quote.size()) == quote) i += quote.size() - 1, quote = {}, prev = ch;
      continue;
    }
    if (ch == ' ' || ch == '\t') continue;
    if (ch == '#') {
      comment = true;
    } else if ((ch == '"' || ch == '\'') && std::string_view("=[{,.\n").find(prev) != std::string_view::npos) {
      quote = text.substr(i, text.substr(i, 3) == std::string(3, ch) ? 3 : 1);
      i += quote.size() - 1;
    } else if (static_cast<unsigned char>(ch) >= 0x80) {
      return line;
    } else {
      prev = ch;
    }
  }
  return 0;
}

std::optional<Config> parse(std::string_view text, const std::string& source, std::vector<std::string>& errors) {
  const std::size_t errors_before = errors.size();
  Checker c(source, errors);
  if (const std::size_t line = non_ascii_outside_strings(text)) {
    toml::source_region where;
    where.begin.line = static_cast<toml::source_index>(line);
    c.error(where, "syntax", "a non-ASCII character outside a string or comment (keys are ASCII; quote the value)");
    return std::nullopt;
  }
  if (const std::size_t line = bad_table_header(text)) {
    toml::source_region where;
    where.begin.line = static_cast<toml::source_index>(line);
    c.error(where, "syntax", "a table header must start with a key ([name] or [[name]])");
    return std::nullopt;
  }
  toml::parse_result doc = toml::parse(text, std::string_view(source));
  if (!doc) {
    c.error(doc.error().source(), "syntax", doc.error().description());
    return std::nullopt;
  }
  const toml::table& root = doc.table();
  Config cfg;
  cfg.source = source;
  cfg.pool.slots = build::k_default_pool_slots;
  cfg.pool.slot_bytes = build::k_default_slot_bytes;
  cfg.spool.max_bytes = *util::parse_bytes(build::k_default_spool_max_bytes);
  cfg.spool.commit_interval = *util::parse_duration(build::k_default_commit_interval);
  cfg.ingest.receive_maximum = build::k_default_receive_maximum;
  c.only_known(root, "", {"gateway", "ingest", "uplink", "pool", "spool", "metrics", "selftest"});
  cfg.selftest.intrinsic = *parse_budget(build::k_budget_intrinsic);
  cfg.selftest.fsync = *parse_budget(build::k_budget_fsync);
  cfg.selftest.end_to_end = *parse_budget(build::k_budget_end_to_end);

  if (const toml::table* g = c.table(root, "", "gateway", true)) {
    c.only_known(*g, "gateway", {"id", "state_dir", "log_level", "control_socket"});
    if (c.string(g, "gateway", "id", cfg.gateway.id, true) && !valid_id(cfg.gateway.id)) {
      c.error(c.last(), "gateway.id", "1 to 64 characters of A-Z a-z 0-9 . _ -");
    }
    if (c.string(g, "gateway", "state_dir", cfg.gateway.state_dir, false) && cfg.gateway.state_dir.empty()) {
      c.error(c.last(), "gateway.state_dir", "cannot be empty");
    }
    int level = c.choice(g, "gateway", "log_level", {"error", "warning", "notice", "info", "debug"});
    if (level >= 0) cfg.gateway.log_level = static_cast<util::Level>(level + 3);
    c.string(g, "gateway", "control_socket", cfg.gateway.control_socket, false);
  }

  if (const toml::table* in = c.table(root, "", "ingest", true)) {
    c.only_known(*in, "ingest",
                 {"url", "topics", "qos", "mqtt_version", "client_id", "keepalive", "receive_maximum", "connect_timeout",
                  "reconnect_min", "reconnect_max", "tls"});
    read_url(c, in, "ingest", cfg.ingest.url);
    if (c.strings(in, "ingest", "topics", cfg.ingest.topics, true)) {
      if (cfg.ingest.topics.empty()) c.error(c.last(), "ingest.topics", "needs at least one topic filter");
      std::string why;
      for (const std::string& f : cfg.ingest.topics) {
        if (!valid_filter(f, why)) c.error(c.last(), "ingest.topics", why);
      }
    }
    c.integer(in, "ingest", "qos", cfg.ingest.qos, 0, 2);
    read_version(c, in, "ingest", cfg.ingest.mqtt_version);
    c.string(in, "ingest", "client_id", cfg.ingest.client_id, false);
    read_keepalive(c, in, "ingest", cfg.ingest.keepalive_s);
    c.integer(in, "ingest", "receive_maximum", cfg.ingest.receive_maximum, 1, 65535);
    read_retry(c, in, "ingest", cfg.ingest.retry);
    read_tls(c, *in, "ingest", cfg.ingest.tls);
  }

  if (const toml::table* up = c.table(root, "", "uplink", true)) {
    c.only_known(*up, "uplink",
                 {"url", "topic_prefix", "qos", "max_inflight", "mqtt_version", "client_id", "keepalive", "drain_rate",
                  "connect_timeout", "reconnect_min", "reconnect_max", "tls"});
    read_url(c, up, "uplink", cfg.uplink.url);
    if (c.string(up, "uplink", "topic_prefix", cfg.uplink.topic_prefix, false) &&
        cfg.uplink.topic_prefix.find_first_of("+#") != std::string::npos) {
      c.error(c.last(), "uplink.topic_prefix", "cannot hold the wildcards '+' or '#'");
    }
    c.integer(up, "uplink", "qos", cfg.uplink.qos, 0, 1);
    c.integer(up, "uplink", "max_inflight", cfg.uplink.max_inflight, 1, 65000);
    read_version(c, up, "uplink", cfg.uplink.mqtt_version);
    c.string(up, "uplink", "client_id", cfg.uplink.client_id, false);
    read_keepalive(c, up, "uplink", cfg.uplink.keepalive_s);
    c.integer(up, "uplink", "drain_rate", cfg.uplink.drain_rate, 0, 1'000'000);
    read_retry(c, up, "uplink", cfg.uplink.retry);
    read_tls(c, *up, "uplink", cfg.uplink.tls);
  }

  if (const toml::table* p = c.table(root, "", "pool", false)) {
    c.only_known(*p, "pool", {"slots", "slot_bytes"});
    c.integer(p, "pool", "slots", cfg.pool.slots, 1, 1'000'000);
    std::uint64_t slot_bytes = cfg.pool.slot_bytes;
    c.bytes(p, "pool", "slot_bytes", slot_bytes, 64, 16ull << 20);
    cfg.pool.slot_bytes = static_cast<std::uint32_t>(slot_bytes);
  }

  if (const toml::table* s = c.table(root, "", "spool", false)) {
    c.only_known(*s, "spool", {"max_bytes", "sync", "commit_interval", "batch_max_delay", "when_full"});
    c.bytes(s, "spool", "max_bytes", cfg.spool.max_bytes, 1ull << 20, 1ull << 40);
    int sync = c.choice(s, "spool", "sync", {"batch", "none"});
    if (sync >= 0) cfg.spool.sync = sync == 0 ? SpoolSync::batch : SpoolSync::none;
    c.duration(s, "spool", "commit_interval", cfg.spool.commit_interval, std::chrono::nanoseconds(0),
               std::chrono::seconds(10));
    // Before 0.2: a timer from the first message of a batch to its commit. Its value is
    // still honoured, as the least time between two syncs, and the user told what to write.
    if (const toml::node* old = s->get("batch_max_delay")) {
      std::chrono::nanoseconds value = cfg.spool.commit_interval;
      c.duration(s, "spool", "batch_max_delay", value, std::chrono::nanoseconds(0), std::chrono::seconds(10));
      if (s->get("commit_interval")) {
        c.error(old->source(), "spool.batch_max_delay", "replaced by spool.commit_interval, which is set too: remove this line");
      } else {
        cfg.spool.commit_interval = value;
        const std::string written = old->is_string() ? old->as_string()->get() : "0ms";
        cfg.warnings.push_back(c.located(
            old->source(), "spool.batch_max_delay",
            "replaced by spool.commit_interval (a sync now starts as soon as the disk is free; this sets the least time "
            "between two syncs): write commit_interval = \"" + written + "\", or remove the line for the board's default (" +
                build::k_default_commit_interval + ")"));
      }
    }
    int full = c.choice(s, "spool", "when_full", {"backpressure", "drop-oldest"});
    if (full >= 0) cfg.spool.when_full = full == 0 ? WhenFull::backpressure : WhenFull::drop_oldest;
  }

  // Sizes that must fit together. The error names the key where it was set (line 1 when
  // it is a board default).
  auto where = [&](const char* table, const char* key) {
    const toml::node* n = root[table][key].node();
    return n ? n->source() : root.source();
  };
  if (cfg.pool.slots < cfg.uplink.max_inflight + 2u) {
    c.error(where("pool", "slots"), "pool.slots",
            "must be at least uplink.max_inflight + 2 (" + std::to_string(cfg.uplink.max_inflight + 2u) +
                "): each unacknowledged upstream message holds a slot, and replay from the spool needs one more");
  }
  const std::uint64_t largest_record = std::uint64_t{cfg.pool.slot_bytes} + 36;
  if (cfg.spool.max_bytes < 4 * largest_record) {
    c.error(where("spool", "max_bytes"), "spool.max_bytes",
            "must hold at least four of the largest messages (4 x (pool.slot_bytes + 36) = " +
                std::to_string(4 * largest_record) + " bytes)");
  }

  if (const toml::table* m = c.table(root, "", "metrics", false)) {
    c.only_known(*m, "metrics", {"textfile", "interval"});
    if (c.string(m, "metrics", "textfile", cfg.metrics.textfile, false) &&
        (cfg.metrics.textfile.empty() || cfg.metrics.textfile.back() == '/')) {
      c.error(c.last(), "metrics.textfile", "must name a file, such as \"/var/lib/prometheus/node-exporter/edgegw.prom\"");
    }
    c.duration(m, "metrics", "interval", cfg.metrics.interval, std::chrono::seconds(1), std::chrono::hours(1));
  }

  if (const toml::table* t = c.table(root, "", "selftest", false)) {
    c.only_known(*t, "selftest",
                 {"probe_topic", "probes", "budget_intrinsic", "budget_fsync", "budget_end_to_end", "canary_interval"});
    c.duration(t, "selftest", "canary_interval", cfg.selftest.canary_interval, std::chrono::seconds(0), std::chrono::hours(24));
    if (c.string(t, "selftest", "probe_topic", cfg.selftest.probe_topic, false) &&
        (cfg.selftest.probe_topic.empty() || cfg.selftest.probe_topic.find_first_of("+#") != std::string::npos)) {
      c.error(c.last(), "selftest.probe_topic", "must be a topic (no wildcards) that ingest.topics match");
    }
    c.integer(t, "selftest", "probes", cfg.selftest.probes, 10, 100'000);
    const std::pair<const char*, Budget*> budgets[] = {{"budget_intrinsic", &cfg.selftest.intrinsic},
                                                       {"budget_fsync", &cfg.selftest.fsync},
                                                       {"budget_end_to_end", &cfg.selftest.end_to_end}};
    for (const auto& [key, budget] : budgets) {
      std::string value;
      if (!c.string(t, "selftest", key, value, false)) continue;
      if (auto b = parse_budget(value)) *budget = *b;
      else c.error(c.last(), std::string("selftest.") + key, "three durations in order, \"p99 p999 max\", such as \"1ms 2ms 10ms\"");
    }
  }

  if (cfg.gateway.control_socket.empty()) cfg.gateway.control_socket = cfg.gateway.state_dir + "/edgegw.sock";
  if (cfg.ingest.client_id.empty()) cfg.ingest.client_id = "edgegw-" + cfg.gateway.id + "-in";
  if (cfg.uplink.client_id.empty()) cfg.uplink.client_id = "edgegw-" + cfg.gateway.id + "-up";
  if (errors.size() != errors_before) return std::nullopt;
  return cfg;
}

std::optional<Budget> parse_budget(std::string_view text) {
  std::chrono::nanoseconds v[3];
  std::size_t n = 0, at = 0;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find(' ', at), text.size());
    if (end > at) {
      auto d = util::parse_duration(text.substr(at, end - at));
      if (!d || n == 3) return std::nullopt;
      v[n++] = *d;
    }
    at = end + 1;
  }
  if (n != 3 || v[0] > v[1] || v[1] > v[2]) return std::nullopt;
  return Budget{v[0], v[1], v[2]};
}

std::optional<Config> load(const std::string& path, std::vector<std::string>& errors) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) errno = EISDIR;
  std::ifstream in(path, std::ios::binary);
  if (!in || S_ISDIR(st.st_mode)) {
    errors.push_back(path + ":0: file: cannot read: " + std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    errors.push_back(path + ":0: file: read error: " + std::strerror(errno));
    return std::nullopt;
  }
  return parse(text.str(), path, errors);
}

}  // namespace edgegw::config
