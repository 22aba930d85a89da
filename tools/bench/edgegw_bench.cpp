// edgegw-bench: measures an edgegw gateway from outside, with libmosquitto, an MQTT
// implementation independent of edgegw's own engine (so the engine cannot hide its own
// mistakes).
//
//  - sensor simulator: publishes `count` sequenced messages of `size` bytes to the local
//    broker at `rate` messages/s (0: as fast as the broker takes them, at most `window`
//    unacknowledged);
//  - upstream verifier: a persistent QoS 1 subscriber on the upstream broker that counts
//    every sequence number: lost, duplicated, reordered, end-to-end latency;
//  - the relay's cost (--pid: the edgegw daemon, or whatever process relays between the
//    two brokers, e.g. a mosquitto bridge): RSS, CPU time per message and bytes written
//    to storage per message, from /proc/PID;
//  - the end-to-end latency percentile curve, for plotting (--curve FILE);
//  - baseline (--baseline): the same publisher with a bare libmosquitto consumer on the
//    local broker itself, run first; edgegw's throughput is printed as a ratio of it.
//
// A payload is "EGWB", a run id (u32), the sequence number (u64) and the send time
// (u64 ns, CLOCK_MONOTONIC), little-endian, padded with '.' to `size`. Messages of other
// runs (a persistent session may hold some) are counted as foreign and ignored.
//
// Exit: 0 nothing lost, 1 messages lost, 2 could not run.
#include <mosquitto.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "config/url.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t k_header = 24;

struct Options {
  std::string local = "mqtt://127.0.0.1:1883";
  std::string upstream = "mqtt://127.0.0.1:1884";
  std::string topic = "sensors/bench";
  std::string upstream_topic;  // default: "#"-free prefix + topic, given by --prefix
  std::string prefix;
  std::string baseline_topic = "edgegw-bench/baseline";
  long count = 10000;
  long rate = 0;
  std::size_t size = 64;
  int qos = 1;
  int window = 256;
  long pid = 0;
  bool baseline = false;
  bool json = false;
  double settle_s = 30;
  std::string label = "edgegw";  // names the relay in the output ("edgegw", "bridge")
  std::string curve;             // --curve FILE: the latency percentile curve
};

std::uint64_t mono_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

// One libmosquitto client with its own network thread. Callbacks run on that thread.
class Client {
 public:
  Client(const std::string& id, bool clean) : m_mosq(mosquitto_new(id.c_str(), clean, this)) {
    if (!m_mosq) return;
    mosquitto_int_option(m_mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(m_mosq, [](mosquitto*, void* self, int rc) {
      auto* c = static_cast<Client*>(self);
      std::lock_guard lock(c->m_mutex);
      c->m_connected = rc == 0;
      if (rc == 0 && !c->m_subscription.empty())
        mosquitto_subscribe(c->m_mosq, nullptr, c->m_subscription.c_str(), c->m_qos);
      c->m_cv.notify_all();
    });
    mosquitto_subscribe_callback_set(m_mosq, [](mosquitto*, void* self, int, int, const int*) {
      auto* c = static_cast<Client*>(self);
      std::lock_guard lock(c->m_mutex);
      c->m_subscribed = true;
      c->m_cv.notify_all();
    });
    mosquitto_publish_callback_set(m_mosq, [](mosquitto*, void* self, int) {
      auto* c = static_cast<Client*>(self);
      std::lock_guard lock(c->m_mutex);
      --c->m_outstanding;
      c->m_cv.notify_all();
    });
    mosquitto_disconnect_callback_set(m_mosq, [](mosquitto*, void* self, int) {
      auto* c = static_cast<Client*>(self);
      std::lock_guard lock(c->m_mutex);
      c->m_connected = false;
    });
    mosquitto_reconnect_delay_set(m_mosq, 1, 2, false);
  }
  ~Client() {
    if (!m_mosq) return;
    mosquitto_disconnect(m_mosq);
    mosquitto_loop_stop(m_mosq, false);
    mosquitto_destroy(m_mosq);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects (and subscribes to `filter`, again after every reconnect); false with a
  // message on stderr if that does not happen within 10 s.
  bool connect(const edgegw::config::Url& url, const std::string& filter, int qos) {
    if (!m_mosq) return complain(url, "cannot create a libmosquitto client");
    m_subscription = filter;
    m_qos = qos;
    int rc = mosquitto_connect_async(m_mosq, url.host.c_str(), url.port, 30);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_loop_start(m_mosq);
    if (rc != MOSQ_ERR_SUCCESS) return complain(url, mosquitto_strerror(rc));
    std::unique_lock lock(m_mutex);
    if (!m_cv.wait_for(lock, 10s, [&] { return m_connected && (filter.empty() || m_subscribed); })) {
      return complain(url, filter.empty() ? "no connection within 10 s" : "no subscription within 10 s");
    }
    return true;
  }

  // Publishes once fewer than `window` are unacknowledged; retries while disconnected.
  void publish(const std::string& topic, const std::vector<std::uint8_t>& payload, int qos, int window) {
    for (;;) {
      {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_outstanding < window; });
        ++m_outstanding;
      }
      int rc = mosquitto_publish(m_mosq, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                                 false);
      if (rc == MOSQ_ERR_SUCCESS) {
        if (qos == 0) {
          std::lock_guard lock(m_mutex);
          --m_outstanding;
        }
        return;
      }
      {
        std::lock_guard lock(m_mutex);
        --m_outstanding;
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  // Waits until every QoS 1 publish is acknowledged (at most `timeout`).
  bool drain(std::chrono::seconds timeout) {
    std::unique_lock lock(m_mutex);
    return m_cv.wait_for(lock, timeout, [&] { return m_outstanding == 0; });
  }

  template <typename F>
  void on_message(F* handler) {
    m_handler = handler;
    mosquitto_message_callback_set(m_mosq, [](mosquitto*, void* self, const mosquitto_message* m) {
      auto* c = static_cast<Client*>(self);
      (*static_cast<F*>(c->m_handler))(static_cast<const std::uint8_t*>(m->payload),
                                       static_cast<std::size_t>(m->payloadlen));
    });
  }

 private:
  static bool complain(const edgegw::config::Url& url, const char* why) {
    std::fprintf(stderr, "edgegw-bench: %s: %s\n", url.text.c_str(), why);
    return false;
  }

  mosquitto* m_mosq;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_connected = false;
  bool m_subscribed = false;
  int m_outstanding = 0;
  std::string m_subscription;
  int m_qos = 1;
  void* m_handler = nullptr;
};

// What the verifier saw. Fed from the subscriber's network thread.
class Tally {
 public:
  Tally(std::uint32_t run, long count) : m_run(run), m_seen(static_cast<std::size_t>(count), 0) {
    m_latency_ns.reserve(static_cast<std::size_t>(count));
  }
  void operator()(const std::uint8_t* p, std::size_t n) {
    const std::uint64_t now = mono_ns();
    std::lock_guard lock(m_mutex);
    if (n < k_header || std::memcmp(p, "EGWB", 4) != 0 || static_cast<std::uint32_t>(get64(p + 4)) != m_run) {
      ++m_foreign;
      return;
    }
    const std::uint64_t seq = get64(p + 8);
    if (seq >= m_seen.size()) {
      ++m_foreign;
      return;
    }
    ++m_total;
    if (m_seen[seq]++) {
      ++m_duplicates;
      return;
    }
    if (m_unique > 0 && seq < m_max_seq) ++m_reordered;
    m_max_seq = std::max(m_max_seq, seq);
    ++m_unique;
    m_last_ns = now;
    m_latency_ns.push_back(now - get64(p + 16));
  }
  long unique() {
    std::lock_guard lock(m_mutex);
    return m_unique;
  }

  struct Summary {
    long unique, total, duplicates, reordered, foreign;
    std::uint64_t last_ns;
    std::vector<std::uint64_t> latency_ns;  // sorted
  };
  Summary summary() {
    std::lock_guard lock(m_mutex);
    Summary s{m_unique, m_total, m_duplicates, m_reordered, m_foreign, m_last_ns, m_latency_ns};
    std::sort(s.latency_ns.begin(), s.latency_ns.end());
    return s;
  }

 private:
  std::mutex m_mutex;
  std::uint32_t m_run;
  std::vector<std::uint8_t> m_seen;
  std::vector<std::uint64_t> m_latency_ns;
  long m_unique = 0, m_total = 0, m_duplicates = 0, m_reordered = 0, m_foreign = 0;
  std::uint64_t m_max_seq = 0, m_last_ns = 0;
};

// The daemon's resident memory and CPU time, from /proc.
struct ProcSample {
  bool ok = false;
  long rss_kib = 0, hwm_kib = 0;
  double cpu_s = 0;
  bool io_ok = false;                  // /proc/PID/io needs the process's user or root
  unsigned long long write_bytes = 0;  // bytes the process caused to be written to storage
};
ProcSample sample(long pid) {
  ProcSample s;
  if (pid <= 0) return s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atol(line.c_str() + 6);
    if (line.rfind("VmHWM:", 0) == 0) s.hwm_kib = std::atol(line.c_str() + 6);
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::size_t paren = text.rfind(')');
  if (paren == std::string::npos) return s;
  std::istringstream fields(text.substr(paren + 2));
  std::string f;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {  // field 3 is the state; 14 utime, 15 stime
    if (i == 14) utime = std::stoul(f);
    if (i == 15) {
      stime = std::stoul(f);
      break;
    }
  }
  s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  s.ok = true;
  std::ifstream io("/proc/" + std::to_string(pid) + "/io");
  for (std::string line; std::getline(io, line);) {
    if (line.rfind("write_bytes:", 0) == 0) {
      s.write_bytes = std::strtoull(line.c_str() + 12, nullptr, 10);
      s.io_ok = true;
    }
  }
  return s;
}

struct Phase {
  const char* name;
  long published = 0;
  Tally::Summary seen;
  double seconds = 0;  // first publish to last new message received
  double rate() const { return seconds > 0 ? static_cast<double>(seen.unique) / seconds : 0; }
  double percentile(double q) const {
    if (seen.latency_ns.empty()) return 0;
    std::size_t i =
        std::min(seen.latency_ns.size() - 1, static_cast<std::size_t>(q * static_cast<double>(seen.latency_ns.size())));
    return static_cast<double>(seen.latency_ns[i]) / 1e6;
  }
};

// Publishes to `pub_url`/`pub_topic` while a verifier subscribed at `sub_url`/`sub_topic`
// counts; returns once every message arrived, or nothing new came for settle_s.
std::optional<Phase> run_phase(const char* name, const Options& o, const edgegw::config::Url& pub_url,
                               const std::string& pub_topic, const edgegw::config::Url& sub_url,
                               const std::string& sub_topic, bool persistent_verifier) {
  const std::uint32_t run = static_cast<std::uint32_t>(std::random_device{}());
  const std::string id = "edgegw-bench-" + std::to_string(::getpid()) + "-" + name;
  Tally tally(run, o.count);
  // A persistent verifier session keeps what arrives upstream while the verifier itself
  // reconnects (the demo restarts the upstream broker under load).
  Client verifier(persistent_verifier ? "edgegw-bench-verifier" : id + "-sub", !persistent_verifier);
  verifier.on_message(&tally);
  if (!verifier.connect(sub_url, sub_topic, 1)) return std::nullopt;
  Client publisher(id + "-pub", true);
  if (!publisher.connect(pub_url, "", 0)) return std::nullopt;

  Phase phase{name};
  std::vector<std::uint8_t> payload(std::max(o.size, k_header), '.');
  std::memcpy(payload.data(), "EGWB", 4);
  put64(payload.data() + 4, run);
  const auto start = Clock::now();
  const std::uint64_t start_ns = mono_ns();
  for (long i = 0; i < o.count; ++i) {
    if (o.rate > 0) std::this_thread::sleep_until(start + std::chrono::nanoseconds(i * 1'000'000'000 / o.rate));
    put64(payload.data() + 8, static_cast<std::uint64_t>(i));
    put64(payload.data() + 16, mono_ns());
    publisher.publish(pub_topic, payload, o.qos, o.window);
    ++phase.published;
  }
  if (!publisher.drain(60s))
    std::fprintf(stderr, "edgegw-bench: %s: the local broker did not acknowledge every publish\n", name);
  long last = -1;
  auto progress_at = Clock::now();
  while (tally.unique() < o.count) {
    long now = tally.unique();
    if (now != last) last = now, progress_at = Clock::now();
    if (Clock::now() - progress_at > std::chrono::duration<double>(o.settle_s)) break;
    std::this_thread::sleep_for(20ms);
  }
  phase.seen = tally.summary();
  phase.seconds = static_cast<double>(phase.seen.last_ns > start_ns ? phase.seen.last_ns - start_ns : 0) / 1e9;
  return phase;
}

void print_phase(const Phase& p, long count) {
  std::printf("%-9s published %ld, received %ld, lost %ld, duplicated %ld, reordered %ld\n", p.name, p.published,
              p.seen.unique, count - p.seen.unique, p.seen.duplicates, p.seen.reordered);
  std::printf("%-9s throughput %.0f msg/s; latency ms p50 %.3f  p99 %.3f  p999 %.3f  max %.3f\n", p.name, p.rate(),
              p.percentile(0.5), p.percentile(0.99), p.percentile(0.999),
              p.seen.latency_ns.empty() ? 0.0 : static_cast<double>(p.seen.latency_ns.back()) / 1e6);
}

// The latency percentile curve, one "percentile latency_ms nines" line per point, for
// gnuplot: every whole percentile from 0 to 99, then 99.1 ... 99.9, 99.91 ... 99.99 and
// so on while a point still stands for at least one sample, then the maximum (100).
// "nines" is -log10(1 - p/100), the x of a log-scale percentile plot (50 -> 0.301,
// 99 -> 2, 99.9 -> 3); the maximum is placed at log10(samples), where the 1-in-N point
// would be.
bool write_curve(const std::string& path, const Phase& p) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return std::fprintf(stderr, "edgegw-bench: --curve %s: %s\n", path.c_str(), std::strerror(errno)), false;
  const double n = static_cast<double>(p.seen.latency_ns.size());
  std::fprintf(f, "# %s: end-to-end latency percentiles of %zu messages\n# percentile latency_ms nines\n", p.name,
               p.seen.latency_ns.size());
  const auto covered = [&](double pct) { return (1 - pct / 100) * n >= 1 - 1e-6; };
  const auto point = [&](double pct) {
    std::fprintf(f, "%.7g %.3f %.4f\n", pct, p.percentile(pct / 100), 0.0 - std::log10(1 - pct / 100));
  };
  if (n > 0) {
    for (int i = 0; i <= 99 && covered(i); ++i) point(i);
    for (double base = 99, step = 0.1; covered(base + step); base += 9 * step, step /= 10) {
      for (int j = 1; j <= 9 && covered(base + j * step); ++j) point(base + j * step);
    }
    std::fprintf(f, "100 %.3f %.4f\n", static_cast<double>(p.seen.latency_ns.back()) / 1e6, std::log10(n));
  }
  return std::fclose(f) == 0;
}

void json_phase(std::string& out, const Phase& p, long count) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "\"%s\":{\"published\":%ld,\"received\":%ld,\"lost\":%ld,\"duplicated\":%ld,\"reordered\":%ld,"
                "\"throughput_msg_s\":%.1f,\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}}",
                p.name, p.published, p.seen.unique, count - p.seen.unique, p.seen.duplicates, p.seen.reordered,
                p.rate(), p.percentile(0.5), p.percentile(0.99), p.percentile(0.999),
                p.seen.latency_ns.empty() ? 0.0 : static_cast<double>(p.seen.latency_ns.back()) / 1e6);
  out += buf;
}

constexpr const char* k_usage =
    "usage: edgegw-bench [options]\n"
    "  --local URL           local broker edgegw ingests from (mqtt://127.0.0.1:1883)\n"
    "  --upstream URL        upstream broker edgegw forwards to (mqtt://127.0.0.1:1884)\n"
    "  --topic T             local topic to publish on (sensors/bench)\n"
    "  --prefix P            edgegw's uplink.topic_prefix: the verifier subscribes to P+T\n"
    "  --count N             messages (10000)\n"
    "  --rate R              messages/s, 0 = as fast as the local broker takes them (0)\n"
    "  --size B              payload bytes, at least 24 (64)\n"
    "  --qos Q               publish QoS 0 or 1 (1)\n"
    "  --window W            unacknowledged publishes at most (256)\n"
    "  --pid PID             the relay process (the edgegw daemon, or a bridge broker): report\n"
    "                        its RSS, CPU time and bytes written to storage per message\n"
    "  --label NAME          name of the relay in the output (edgegw)\n"
    "  --curve FILE          write the latency percentile curve (percentile, ms, nines)\n"
    "  --baseline            first measure a bare libmosquitto consumer on the local broker\n"
    "  --settle S            give up S seconds after the last new message arrived (30)\n"
    "  --json                one JSON object instead of the table\n";

bool parse_args(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--baseline") o.baseline = true;
    else if (a == "--json") o.json = true;
    else if (a == "--help" || a == "-h") return std::fputs(k_usage, stdout), std::exit(0), false;
    else if (!(v = value()))
      return std::fprintf(stderr, "edgegw-bench: %s needs a value\n%s", a.c_str(), k_usage), false;
    else if (a == "--local") o.local = v;
    else if (a == "--upstream") o.upstream = v;
    else if (a == "--topic") o.topic = v;
    else if (a == "--prefix") o.prefix = v;
    else if (a == "--count") o.count = std::atol(v);
    else if (a == "--rate") o.rate = std::atol(v);
    else if (a == "--size") o.size = static_cast<std::size_t>(std::atol(v));
    else if (a == "--qos") o.qos = std::atoi(v);
    else if (a == "--window") o.window = std::atoi(v);
    else if (a == "--pid") o.pid = std::atol(v);
    else if (a == "--settle") o.settle_s = std::atof(v);
    else if (a == "--label") o.label = v;
    else if (a == "--curve") o.curve = v;
    else return std::fprintf(stderr, "edgegw-bench: unknown option %s\n%s", a.c_str(), k_usage), false;
  }
  if (o.label.empty() || o.label.size() > 9 || o.label.find_first_of(" \t\n\"\\") != std::string::npos ||
      o.label == "baseline") {
    std::fprintf(stderr, "edgegw-bench: --label must be one word of 1 to 9 characters, not \"baseline\"\n");
    return false;
  }
  if (o.count <= 0 || o.rate < 0 || o.qos < 0 || o.qos > 1 || o.window <= 0 || o.settle_s <= 0) {
    std::fprintf(stderr, "edgegw-bench: --count, --window and --settle must be positive, --rate >= 0, --qos 0 or 1\n");
    return false;
  }
  o.upstream_topic = o.prefix + o.topic;
  return true;
}

std::optional<edgegw::config::Url> tcp_url(const std::string& text) {
  std::string why;
  auto url = edgegw::config::parse_url(text, why);
  if (!url || url->scheme != edgegw::config::Scheme::mqtt) {
    std::fprintf(stderr, "edgegw-bench: %s: %s\n", text.c_str(),
                 url ? "only mqtt://host:port is supported" : why.c_str());
    return std::nullopt;
  }
  return url;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_args(argc, argv, o)) return 2;
  auto local = tcp_url(o.local), upstream = tcp_url(o.upstream);
  if (!local || !upstream) return 2;
  mosquitto_lib_init();

  std::optional<Phase> baseline;
  if (o.baseline) {
    baseline = run_phase("baseline", o, *local, o.baseline_topic, *local, o.baseline_topic, false);
    if (!baseline) return 2;
  }
  const ProcSample before = sample(o.pid);
  if (o.pid > 0 && !before.ok) {
    std::fprintf(stderr, "edgegw-bench: --pid %ld: no such process\n", o.pid);
    return 2;
  }
  std::optional<Phase> gw = run_phase(o.label.c_str(), o, *local, o.topic, *upstream, o.upstream_topic, true);
  if (!gw) return 2;
  const ProcSample after = sample(o.pid);
  mosquitto_lib_cleanup();

  const long lost = o.count - gw->seen.unique;
  const double ratio = baseline && baseline->rate() > 0 ? gw->rate() / baseline->rate() : 0;
  const double cpu_us =
      gw->seen.unique > 0 && after.ok ? (after.cpu_s - before.cpu_s) * 1e6 / static_cast<double>(gw->seen.unique) : 0;
  const bool io_ok = gw->seen.unique > 0 && after.ok && before.io_ok && after.io_ok;
  const double written =
      io_ok ? static_cast<double>(after.write_bytes - before.write_bytes) / static_cast<double>(gw->seen.unique) : 0;
  if (!o.curve.empty() && !write_curve(o.curve, *gw)) return 2;
  if (o.json) {
    std::string out = "{\"count\":" + std::to_string(o.count) + ",\"rate\":" + std::to_string(o.rate) +
                      ",\"size\":" + std::to_string(o.size) + ",\"qos\":" + std::to_string(o.qos) + ",";
    if (baseline) json_phase(out, *baseline, o.count), out += ",";
    json_phase(out, *gw, o.count);
    char buf[256];
    if (baseline) std::snprintf(buf, sizeof buf, ",\"throughput_ratio\":%.3f", ratio), out += buf;
    if (after.ok) {
      std::snprintf(
          buf, sizeof buf,
          ",\"daemon\":{\"rss_kib_before\":%ld,\"rss_kib_after\":%ld,\"hwm_kib\":%ld,\"cpu_us_per_msg\":%.2f,",
          before.rss_kib, after.rss_kib, after.hwm_kib, cpu_us);
      out += buf;
      if (io_ok) std::snprintf(buf, sizeof buf, "\"bytes_written_per_msg\":%.1f}", written);
      else std::snprintf(buf, sizeof buf, "\"bytes_written_per_msg\":null}");
      out += buf;
    }
    std::printf("%s}\n", out.c_str());
  } else {
    std::printf("edgegw-bench: %ld messages of %zu bytes, QoS %d, rate %s\n", o.count, std::max(o.size, k_header),
                o.qos, o.rate ? (std::to_string(o.rate) + " msg/s").c_str() : "unlimited");
    if (baseline) print_phase(*baseline, o.count);
    print_phase(*gw, o.count);
    if (baseline) std::printf("ratio     %s throughput / baseline = %.3f\n", o.label.c_str(), ratio);
    if (after.ok) {
      std::printf("daemon    RSS %ld KiB before, %ld KiB after, peak %ld KiB; CPU %.2f us per message; ",
                  before.rss_kib, after.rss_kib, after.hwm_kib, cpu_us);
      if (io_ok) std::printf("%.1f bytes written/msg\n", written);
      else if (gw->seen.unique == 0) std::printf("n/a bytes written/msg (nothing received)\n");
      else std::printf("n/a bytes written/msg (/proc/%ld/io unreadable)\n", o.pid);
    }
  }
  return lost == 0 ? 0 : 1;
}
