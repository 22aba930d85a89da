#include "gateway/selftest.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "edgegw/build_info.hpp"
#include "gateway/clock.hpp"
#include "gateway/routing.hpp"
#include "observe/control.hpp"
#include "observe/histogram.hpp"

namespace edgegw::gateway {
namespace {

using namespace std::chrono_literals;

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

struct Stage {
  const char* name;
  const char* what;
  const config::Budget* budget;
  observe::Histogram histogram;
  bool ran = false;
  std::string note;  // why it did not run, or what to know about it
};

// How late a 1 ms sleep wakes up, `samples` times.
void measure_intrinsic(Stage& s, int samples) {
  for (int i = 0; i < samples; ++i) {
    const std::uint64_t start = clock_ns(CLOCK_MONOTONIC);
    const timespec one_ms{0, 1'000'000};
    ::clock_nanosleep(CLOCK_MONOTONIC, 0, &one_ms, nullptr);
    const std::uint64_t slept = clock_ns(CLOCK_MONOTONIC) - start;
    s.histogram.record(elapsed_ns(1'000'000, slept));
  }
  s.ran = true;
}

// One batch appended and fdatasynced, `rounds` times, where the spool lives.
void measure_fsync(Stage& s, const std::string& dir, std::size_t batch_bytes, int rounds) {
  ::mkdir(dir.c_str(), 0750);
  const std::string path = dir + "/selftest.tmp";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    s.note = path + ": " + std::strerror(errno);
    return;
  }
  std::vector<std::uint8_t> batch(batch_bytes, 0x5a);
  for (int i = 0; i < rounds; ++i) {
    const std::uint64_t start = clock_ns(CLOCK_MONOTONIC);
    if (::write(fd, batch.data(), batch.size()) != static_cast<ssize_t>(batch.size()) || ::fdatasync(fd) != 0) {
      s.note = path + ": " + std::strerror(errno);
      break;
    }
    s.histogram.record(clock_ns(CLOCK_MONOTONIC) - start);
  }
  ::close(fd);
  ::unlink(path.c_str());
  s.ran = s.note.empty();
}

// The daemon's own stage figures, from its status JSON: "name":{"count":N,"p50":...}.
struct DaemonStage {
  unsigned long long count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};
bool daemon_stage(const std::string& json, const char* name, DaemonStage& out) {
  const std::string key = std::string("\"") + name + "\":{\"count\":";
  const std::size_t at = json.find(key);
  return at != std::string::npos && std::sscanf(json.c_str() + at + key.size(),
                                                "%llu,\"p50\":%lf,\"p90\":%lf,\"p99\":%lf,\"p999\":%lf,\"max\":%lf",
                                                &out.count, &out.p50, &out.p90, &out.p99, &out.p999, &out.max) == 6;
}

// Probes through the running daemon: a publisher on the local broker, a subscriber on
// the upstream broker, both edgegw's own engine.
class Probes final : private mqtt::SessionHandler {
 public:
  Probes(event::Loop& loop, const config::Config& c, Stage& stage) : m_loop(loop), m_config(c), m_stage(stage) {}

  // Returns false (with `why`) if it could not run at all.
  bool run(std::string& why) {
    const config::Config& c = m_config;
    const std::string topic = probe_topic(c);
    if (topic.empty()) {
      why = "no probe topic: ingest.topics has no wildcard filter to publish under; set selftest.probe_topic";
      return false;
    }
    if (!m_sessions.start(m_loop, c, topic, "selftest", 32, m_pub_handler, *this, why)) return false;
    run_until([&] { return m_pub_handler.connected && (m_subscribed || m_sub_refused); }, 10s);
    if (!m_pub_handler.connected) {
      why = "cannot reach the local broker at " + c.ingest.url.text + ": " + m_pub_handler.detail;
      return false;
    }
    if (!m_subscribed) {
      m_stage.note = m_sub_refused ? "the upstream broker refused the probe subscription"
                                   : "the upstream broker could not be subscribed to (" + m_sub_detail + ")";
      m_stage.note += "; the daemon's stages up to the upstream acknowledgement are reported instead";
    }
    // Publish at 50 probes/s, then wait for the stragglers.
    m_run = static_cast<std::uint32_t>(clock_ns(CLOCK_MONOTONIC));
    char payload[96];
    const auto start = m_loop.now();
    for (std::uint32_t i = 0; i < c.selftest.probes;) {
      if (m_loop.now() < start + i * 20ms) {
        m_loop.run_once(1ms);
        continue;
      }
      const int n = std::snprintf(payload, sizeof payload, "edgegw-selftest %u %u %" PRIu64, m_run, i, realtime_ns());
      mqtt::OutMessage m;
      m.topic = topic;
      m.payload = mqtt::Bytes(reinterpret_cast<const std::uint8_t*>(payload), static_cast<std::size_t>(n));
      m.qos = 1;
      if (m_sessions.pub->publish(m, i) == mqtt::PublishStatus::queued) ++i;
      else m_loop.run_once(5ms);
    }
    run_until(
        [&] { return m_pub_handler.acked >= c.selftest.probes && (!m_subscribed || m_received >= c.selftest.probes); },
        10s);
    m_sent = c.selftest.probes;
    m_sessions.stop();
    m_stage.ran = m_subscribed;
    return true;
  }
  std::uint32_t sent() const { return m_sent; }
  std::uint32_t received() const { return m_received; }

 private:
  struct PubHandler final : mqtt::SessionHandler {
    bool connected = false;
    std::uint32_t acked = 0;
    std::string detail = "no answer";
    void on_connected(bool) override { connected = true; }
    void on_disconnected(const mqtt::DisconnectInfo& info) override { detail = info.detail; }
    void on_message(const mqtt::Message&, mqtt::AckToken) override {}
    void on_published(std::uint64_t, mqtt::Reason) override { ++acked; }
  };

  template <typename Done>
  void run_until(Done done, event::Duration timeout) {
    const auto deadline = m_loop.now() + timeout;
    while (!done() && m_loop.now() < deadline) m_loop.run_once(10ms);
  }

  void on_connected(bool) override {}
  void on_disconnected(const mqtt::DisconnectInfo& info) override { m_sub_detail = info.detail; }
  void on_subscribed(mqtt::Bytes reasons) override {
    if (!reasons.empty() && reasons[0] < 0x80) m_subscribed = true;
    else m_sub_refused = true;
  }
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override {
    const std::uint64_t now = realtime_ns();
    char text[96] = {};
    std::memcpy(text, m.payload.data(), std::min(m.payload.size(), sizeof text - 1));
    unsigned run = 0, seq = 0;
    unsigned long long sent = 0;
    if (std::sscanf(text, "edgegw-selftest %u %u %llu", &run, &seq, &sent) == 3 && run == m_run) {
      m_stage.histogram.record(elapsed_ns(sent, now));
      ++m_received;
    }
    m_sessions.pool->release(m.slot);
    if (m.qos) m_sessions.sub->ack(token);
  }

  event::Loop& m_loop;
  const config::Config& m_config;
  Stage& m_stage;
  PubHandler m_pub_handler;
  ProbeSessions m_sessions;
  bool m_subscribed = false, m_sub_refused = false;
  std::string m_sub_detail = "no answer";
  std::uint32_t m_run = 0, m_sent = 0, m_received = 0;
};

// "" when within budget, else "STAGE p99 12.3 ms > 5 ms".
std::string over_budget(const Stage& s) {
  if (!s.ran) return "";
  const config::Budget& b = *s.budget;
  const struct {
    const char* name;
    std::uint64_t value;
    std::chrono::nanoseconds limit;
  } checks[] = {{"p99", s.histogram.percentile(0.99), b.p99},
                {"p999", s.histogram.percentile(0.999), b.p999},
                {"max", s.histogram.max(), b.max}};
  for (const auto& c : checks) {
    if (c.value > static_cast<std::uint64_t>(c.limit.count())) {
      char text[160];
      std::snprintf(text, sizeof text, "%s %s %.3f ms > %.3f ms", s.name, c.name, ms(c.value), ms(c.limit));
      return text;
    }
  }
  return "";
}

}  // namespace

bool ProbeSessions::start(event::Loop& loop, const config::Config& c, const std::string& topic, const char* name,
                          std::uint16_t window, mqtt::SessionHandler& publisher, mqtt::SessionHandler& subscriber,
                          std::string& error) {
  if (!make_link(c.ingest.url, c.ingest.tls, "ingest.tls", pub_link, error) ||
      !make_link(c.uplink.url, c.uplink.tls, "uplink.tls", sub_link, error, &c.uplink.proxy)) {
    return false;
  }
  pool = std::make_unique<mem::Pool>(window, c.pool.slot_bytes);
  mqtt::SessionOptions p;
  p.version = session_version(c.ingest.mqtt_version);
  p.version_fallback = c.ingest.mqtt_version == config::MqttVersion::automatic;
  p.client_id = "edgegw-" + c.gateway.id + "-" + name + "-pub";
  p.clean_start = true;
  p.max_inflight = window;
  set_credentials(p, c.ingest.credentials);
  pub = std::make_unique<mqtt::Session>(loop, *pub_link.transport, nullptr, p, publisher);
  mqtt::SessionOptions s;
  s.version = session_version(c.uplink.mqtt_version);
  s.version_fallback = c.uplink.mqtt_version == config::MqttVersion::automatic;
  s.client_id = "edgegw-" + c.gateway.id + "-" + name + "-sub";
  s.clean_start = true;
  s.subscriptions = {upstream_topic(c, topic)};  // where the uplink rules send it
  s.subscribe_qos = 1;
  s.receive_maximum = window;
  set_credentials(s, c.uplink.credentials);
  sub = std::make_unique<mqtt::Session>(loop, *sub_link.transport, pool.get(), s, subscriber);
  pub->start();
  sub->start();
  return true;
}

void ProbeSessions::stop() {
  if (pub) pub->stop();
  if (sub) sub->stop();
}

std::string probe_topic(const config::Config& config) {
  if (!config.selftest.probe_topic.empty()) return config.selftest.probe_topic;
  for (const std::string& f : config.ingest.topics) {
    const std::size_t wild = f.find_first_of("+#");
    if (wild != std::string::npos) return f.substr(0, wild) + "edgegw-selftest";
  }
  return "";
}

int run_selftest(const config::Config& config, const SelftestOptions& options) {
  Stage stages[] = {
      {"intrinsic", "1 ms sleep, lateness", &config.selftest.intrinsic, {}},
      {"fsync", "batch append + fdatasync", &config.selftest.fsync, {}},
      {"end_to_end", "probe, local -> upstream", &config.selftest.end_to_end, {}},
  };
  // The daemon must be running: the probes go through it.
  std::string before, why;
  if (!observe::query_status(config.gateway.control_socket, true, before, why)) {
    std::fprintf(stderr, "edgegw selftest: could not run: the daemon is not running (%s)\n", why.c_str());
    return 2;
  }
  measure_intrinsic(stages[0], 2000);
  measure_fsync(stages[1], config.gateway.state_dir, std::size_t{config.ingest.receive_maximum} * 256, 200);
  event::Loop loop;
  Probes probes(loop, config, stages[2]);
  if (!probes.run(why)) {
    std::fprintf(stderr, "edgegw selftest: could not run: %s\n", why.c_str());
    return 2;
  }
  std::string after;
  observe::query_status(config.gateway.control_socket, true, after, why);

  std::vector<std::string> over;
  for (const Stage& s : stages) {
    if (std::string o = over_budget(s); !o.empty()) over.push_back(o);
  }
  if (stages[2].ran && probes.received() < probes.sent()) {
    over.push_back("end_to_end: " + std::to_string(probes.sent() - probes.received()) + " of " +
                   std::to_string(probes.sent()) + " probes did not arrive within 10 s");
  }
  const char* daemon_stages[] = {"durable", "to_uplink", "upstream_ack", "end_to_end"};
  const char* verdict = !options.enforce ? "not enforced" : over.empty() ? "within budget" : "over budget";
  // What the daemon's durable path runs with (its latency follows from them).
  const char* sync_name = config.spool.sync == config::SpoolSync::batch ? "batch" : "none";
  const double commit_ms = std::chrono::duration<double, std::milli>(config.spool.commit_interval).count();
  const unsigned window = config.ingest.receive_maximum;

  if (options.json) {
    std::printf(
        "{\"board\":\"%s\",\"processor\":\"%s\",\"verdict\":\"%s\",\"spool_sync\":\"%s\","
        "\"commit_interval_ms\":%.3f,\"ingest_window\":%u,\"stages\":{",
        build::k_board, build::k_system_processor, verdict, sync_name, commit_ms, window);
    for (const Stage& s : stages) {
      const observe::Histogram& h = s.histogram;
      std::printf("%s\"%s\":{\"ran\":%s,\"count\":%" PRIu64
                  ",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,"
                  "\"max_ms\":%.3f,\"budget_ms\":[%.3f,%.3f,%.3f],\"note\":\"%s\"}",
                  &s == stages ? "" : ",", s.name, s.ran ? "true" : "false", h.count(), ms(h.percentile(0.5)),
                  ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()), ms(s.budget->p99), ms(s.budget->p999),
                  ms(s.budget->max), s.note.c_str());
    }
    std::printf("},\"daemon_ms\":{");
    for (const char* name : daemon_stages) {
      DaemonStage d;
      daemon_stage(after, name, d);
      std::printf("%s\"%s\":{\"count\":%llu,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
                  name == daemon_stages[0] ? "" : ",", name, d.count, d.p50, d.p99, d.p999, d.max);
    }
    std::printf("},\"over_budget\":[");
    for (std::size_t i = 0; i < over.size(); ++i) std::printf("%s\"%s\"", i ? "," : "", over[i].c_str());
    std::printf("]}\n");
  } else {
    std::printf("edgegw selftest: board %s (%s); budgets from the board profile unless [selftest] in %s sets them\n",
                build::k_board, build::k_system_processor, config.source.c_str());
    std::printf("  spool sync %s, commit interval %g ms, ingest window %u messages\n", sync_name, commit_ms, window);
    std::printf("  %-11s %-26s %7s %9s %9s %9s %9s   budget p99/p999/max ms\n", "stage (ms)", "", "count", "p50", "p99",
                "p999", "max");
    for (const Stage& s : stages) {
      const observe::Histogram& h = s.histogram;
      std::printf("  %-11s %-26s %7" PRIu64 " %9.3f %9.3f %9.3f %9.3f   %g/%g/%g\n", s.name, s.what, h.count(),
                  ms(h.percentile(0.5)), ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()),
                  ms(s.budget->p99), ms(s.budget->p999), ms(s.budget->max));
      if (!s.note.empty()) std::printf("              %s\n", s.note.c_str());
    }
    std::printf("  the daemon's own stages (since it started, probes included):\n");
    for (const char* name : daemon_stages) {
      DaemonStage d;
      if (daemon_stage(after, name, d)) {
        std::printf("  %-11s %-26s %7llu %9.3f %9.3f %9.3f %9.3f\n", name, "", d.count, d.p50, d.p99, d.p999, d.max);
      }
    }
    std::printf("verdict: %s", verdict);
    for (const std::string& o : over) std::printf("%s%s", &o == over.data() ? ": " : "; ", o.c_str());
    std::printf("\n");
  }
  return options.enforce && !over.empty() ? 1 : 0;
}

}  // namespace edgegw::gateway
