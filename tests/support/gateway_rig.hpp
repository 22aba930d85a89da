// A whole store-and-forward setup on loopback for tests: a local broker, an upstream
// broker (persistent, so it can be stopped and restarted without forgetting the
// verifier's subscription), the edgegw daemon as a process, sensors publishing with
// mosquitto_pub and a verifier subscribed upstream with mosquitto_sub.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/broker.hpp"
#include "support/certs.hpp"
#include "support/clients.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::test {

struct RigOptions {
  std::string spool = "sync = \"batch\"";                        // [spool] keys
  std::string uplink = "max_inflight = 32\nkeepalive = \"5s\"";  // extra [uplink] keys
  std::string ingest;                                            // extra [ingest] keys
  int receive_maximum = 32;                                      // the ingest window
  // The daemon: "edgegw", or the test build "edgegw-test-disk" (its disk slowed or stalled
  // by EDGEGW_TEST_DISK in start_daemon's environment).
  std::string binary = "edgegw";
  std::uint32_t slots = 256;
  std::uint32_t slot_bytes = 1024;
  bool uplink_tls = false;               // uplink over mutual TLS to a second, TLS listener upstream
  std::string extra;                     // more TOML at the end of the config (e.g. a [metrics] table)
  std::string local_broker;              // more mosquitto.conf lines for the local broker
  bool local_persistent = false;         // the local broker keeps sessions across its restart
  std::string upstream_broker;           // ... and for the upstream one
  std::string broker_head;               // mosquitto.conf lines before the listeners, for both brokers
  std::string ingest_url;                // another local broker than the rig's (a scripted one)
  std::string uplink_url;                // another upstream broker than the rig's (aedes)
  std::vector<std::string> uplink_urls;  // several upstream brokers, preferred first (failover)
  std::string state_dir;                 // gateway.state_dir elsewhere (a test's own file system); empty: in dir()
};

// What the verifier saw, as numbers (the sensors publish "0", "1", ...).
struct Tally {
  std::vector<long> order;  // as received
  std::set<long> unique;
  // The gateway's `seq` user property must never repeat for a different message: a
  // consumer that drops duplicates by seq would drop real data.
  std::map<long, long> payload_of_seq;
  long seq_conflicts = 0;
  long malformed = 0;  // lines that start like a sensor number but are not one
  long duplicates() const { return static_cast<long>(order.size() - unique.size()); }
  long missing(long count) const {
    long n = 0;
    for (long i = 0; i < count; ++i) n += unique.count(i) ? 0 : 1;
    return n;
  }
};

// What a verifier wrote ("gw:ID seq:N|payload" lines), tallied.
inline Tally tally_of(const std::string& text) {
  Tally t;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const std::size_t bar = line.find('|');
    // probes of the test's own, and the daemon's canary probes, are not sensor numbers
    if (bar == std::string::npos || bar + 1 >= line.size() ||
        !std::isdigit(static_cast<unsigned char>(line[bar + 1]))) {
      continue;
    }
    // "N", or "N padding": anything else after the digits is a damaged message
    if (std::size_t end = line.find_first_not_of("0123456789", bar + 1); end != std::string::npos && line[end] != ' ') {
      ++t.malformed;
      continue;
    }
    long v = std::stol(line.substr(bar + 1));
    t.order.push_back(v);
    t.unique.insert(v);
    const std::size_t seq_at = line.find("seq:");
    if (seq_at == std::string::npos || seq_at > bar) continue;
    auto [it, inserted] = t.payload_of_seq.emplace(std::stol(line.substr(seq_at + 4)), v);
    if (!inserted && it->second != v) ++t.seq_conflicts;
  }
  return t;
}

// A persistent QoS 1 subscriber to up/# on `upstream`, writing to `out_file`; returned
// once it saw a probe.
inline Process start_upstream_verifier(Broker& upstream, const std::string& out_file) {
  Process verifier(with_broker(upstream, {"mosquitto_sub", "-V", "mqttv5", "-q", "1", "-c", "-i", "verifier", "-x",
                                          "86400", "-t", "up/#", "-F", "%P|%p"}),
                   Redirects{.stdout_file = out_file});
  for (int i = 0; i < 500; ++i) {
    publish(upstream, "up/probe", "probe", 1);
    if (read_file(out_file).find("probe") != std::string::npos) return verifier;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "the upstream verifier never subscribed";
  return verifier;
}

// Tallies the verifier's file every 200 ms until done(tally) or the timeout; returns the
// last tally.
template <typename Done>
Tally wait_for_tally(const std::string& file, Done done, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Tally t = tally_of(read_file(file));
  while (!done(t) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    t = tally_of(read_file(file));
  }
  return t;
}

class Rig {
 public:
  explicit Rig(RigOptions options = {})
      : m_options(std::move(options)), m_tls_port(m_options.uplink_tls ? free_port() : 0),
        m_local(BrokerOptions{.persistent = m_options.local_persistent,
                              .extra_config = m_options.local_broker,
                              .head_config = m_options.broker_head}),
        m_upstream(BrokerOptions{.persistent = true,
                                 .extra_config = m_options.upstream_broker + tls_listener(),
                                 .head_config = m_options.broker_head}) {
    write_config();
  }
  ~Rig() {
    m_daemon.kill();
    m_verifier.kill();
  }

  const TempDir& dir() const { return m_dir; }
  Broker& local() { return m_local; }
  Broker& upstream() { return m_upstream; }
  std::string state_dir() const { return m_options.state_dir.empty() ? m_dir.file("state") : m_options.state_dir; }
  const std::string& config_path() const { return m_config; }
  // The upstream's TLS listener (uplink_tls), 0 without one.
  std::uint16_t tls_port() const { return m_tls_port; }
  // Points the uplink elsewhere (a proxy in front of the rig's upstream broker, made after
  // the rig); takes effect at the next start_daemon().
  void set_uplink_url(const std::string& url) {
    m_options.uplink_url = url;
    write_config();
  }
  void set_uplink_urls(std::vector<std::string> urls) {
    m_options.uplink_urls = std::move(urls);
    write_config();
  }
  void set_ingest_url(const std::string& url) {
    m_options.ingest_url = url;
    write_config();
  }

  void write_config() {
    std::ostringstream c;
    c << "[gateway]\nid = \"gw-test\"\nstate_dir = \"" << state_dir() << "\"\nlog_level = \"info\"\n"
      << "[ingest]\nurl = \"" << (m_options.ingest_url.empty() ? m_local.url() : m_options.ingest_url)
      << "\"\ntopics = [\"sensors/#\"]\nreceive_maximum = " << m_options.receive_maximum << "\n"
      << m_options.ingest << "\n"
      << "[uplink]\nurl = " << uplink_urls() << "\ntopic_prefix = \"up/\"\n"
      << m_options.uplink << "\n"
      << (m_tls_port ? "[uplink.tls]\nca_file = \"" + cert("ca.pem") + "\"\ncert_file = \"" + cert("client.pem") +
                           "\"\nkey_file = \"" + cert("client.key") + "\"\n"
                     : "")
      << "[pool]\nslots = " << m_options.slots << "\nslot_bytes = " << m_options.slot_bytes << "\n"
      << "[spool]\n"
      << m_options.spool << "\n"
      << m_options.extra << "\n";
    m_config = m_dir.write("edgegw.toml", c.str());
  }

  // Starts the daemon (with `env`, "NAME=value" entries, added to its environment) and
  // waits until its ingest subscription is in place.
  void start_daemon(bool wait_subscribed = true, const std::vector<std::string>& env = {}) {
    std::string log = m_dir.file("daemon-" + std::to_string(++m_starts) + ".log");
    std::vector<std::string> argv = {"env"};
    argv.insert(argv.end(), env.begin(), env.end());
    for (const std::string& a : own_binary(std::string(EDGEGW_BIN_DIR) + "/" + m_options.binary)) argv.push_back(a);
    argv.insert(argv.end(), {"run", "--config", m_config});
    m_daemon = Process(argv, Redirects{.stderr_file = log});
    if (!wait_subscribed) return;
    for (int i = 0; i < 3000 && read_file(log).find("ingest: subscribed") == std::string::npos; ++i) {
      ASSERT_TRUE(m_daemon.running()) << read_file(log);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_NE(read_file(log).find("ingest: subscribed"), std::string::npos) << read_file(log);
  }
  Process& daemon() { return m_daemon; }
  int stop_daemon() {
    m_daemon.signal(SIGTERM);
    return m_daemon.wait(std::chrono::seconds(30));
  }
  std::string daemon_log() const {
    std::string all;
    for (int i = 1; i <= m_starts; ++i) all += read_file(m_dir.file("daemon-" + std::to_string(i) + ".log"));
    return all;
  }
  int starts() const { return m_starts; }

  void start_verifier() { m_verifier = start_upstream_verifier(m_upstream, m_dir.file("upstream.txt")); }

  Tally tally() const { return tally_of(read_file(m_dir.file("upstream.txt"))); }

  // Waits until the verifier holds every number below `count`; returns the tally.
  Tally wait_for_all(long count, std::chrono::seconds timeout) {
    return wait_until([count](const Tally& t) { return t.missing(count) == 0; }, timeout);
  }
  // Waits until the verifier holds `unique` different numbers; returns the tally.
  Tally wait_for_unique(std::size_t unique, std::chrono::seconds timeout) {
    return wait_until([unique](const Tally& t) { return t.unique.size() >= unique; }, timeout);
  }
  template <typename Done>
  Tally wait_until(Done done, std::chrono::seconds timeout) {
    return wait_for_tally(m_dir.file("upstream.txt"), done, timeout);
  }

  // Sensors: "first".."first+count-1" on sensors/big, each padded to ~440 bytes (so that a
  // 64 KiB segment holds about 150), published at once; returns when all are published.
  void publish_padded(long first, long count) {
    const std::string path = m_dir.file("padded-" + std::to_string(first) + ".txt");
    {
      std::ofstream f(path);
      for (long i = first; i < first + count; ++i) f << i << ' ' << std::string(400, 'x') << '\n';
    }
    std::string cmd;
    for (const std::string& a : with_broker(m_local, {"mosquitto_pub", "-t", "sensors/big", "-q", "1", "-l"}))
      cmd += a + " ";
    Process sensors({"sh", "-c", cmd + "< " + path});
    EXPECT_EQ(sensors.wait(std::chrono::seconds(60)), 0);
  }

  // Sensors: "0".."count-1" on sensors/stream at about `rate` messages/s (0: flat out).
  Process stream(long count, int rate, int qos = 1, long first = 0) {
    return publish_stream(m_local, "sensors/stream", count, rate, qos, first);
  }

  // The running daemon's `edgegw status --json`, or "" if it did not answer.
  std::string status_json() const {
    std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
    argv.insert(argv.end(), {"status", "--json", "--config", m_config});
    std::string json;
    return run(argv, &json) == 0 ? json : "";
  }
  // A number of it (a counter such as "durable"), or -1.
  long status_counter(const std::string& name) const {
    const std::string json = status_json(), key = "\"" + name + "\":";
    const std::size_t at = json.find(key);
    return at == std::string::npos ? -1 : std::stol(json.substr(at + key.size()));
  }
  // Polls it every 100 ms until it is at least `at_least` or the timeout; returns the last.
  long wait_for_counter(const std::string& name, long at_least, std::chrono::seconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    long v = status_counter(name);
    while (v < at_least && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      v = status_counter(name);
    }
    return v;
  }

  // A number from the daemon's last "gateway: stopped:" line, e.g. stat("replayed").
  long stat(const std::string& name) const {
    std::string log = daemon_log();
    std::size_t line = log.rfind("gateway: stopped:");
    if (line == std::string::npos) return -1;
    std::size_t at = log.find(name + " ", line);
    return at == std::string::npos ? -1 : std::stol(log.substr(at + name.size() + 1));
  }

 private:
  // The upstream's second listener, for the uplink over mutual TLS (the verifier stays on
  // the plain one).
  std::string tls_listener() const {
    if (!m_tls_port) return "";
    return "listener " + std::to_string(m_tls_port) + " 127.0.0.1\n" +
           listener("server.pem", "require_certificate true\n");
  }
  // uplink.url's value: the url, or the array of uplink_urls
  std::string uplink_urls() const {
    if (m_options.uplink_urls.empty()) return "\"" + uplink_url() + "\"";
    std::string list = "[";
    for (const std::string& u : m_options.uplink_urls) list += (list.size() > 1 ? ", \"" : "\"") + u + "\"";
    return list + "]";
  }
  std::string uplink_url() const {
    if (!m_options.uplink_url.empty()) return m_options.uplink_url;
    return m_tls_port ? "mqtts://127.0.0.1:" + std::to_string(m_tls_port) : m_upstream.url();
  }

  RigOptions m_options;
  std::uint16_t m_tls_port;
  TempDir m_dir;
  Broker m_local;
  Broker m_upstream;
  std::string m_config;
  Process m_daemon;
  Process m_verifier;
  int m_starts = 0;
};

}  // namespace edgegw::test
