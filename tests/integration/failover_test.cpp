// Failover (issue 15 item 3), through the whole daemon: uplink.url lists several real
// mosquitto brokers, preferred first; they go away in turn under load. A verifier on
// EVERY upstream broker; their outputs merged: no number missing, duplicates bounded by
// the window (uplink.max_inflight = 32 each switch), no seq given to two messages.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/chaos_proxy.hpp"
#include "support/gateway_rig.hpp"
#include "support/text.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* k_client = "as edgegw-gw-test-up";
constexpr const char* k_timing =
    "max_inflight = 32\nkeepalive = \"5s\"\nconnect_timeout = \"2s\"\nreconnect_min = \"100ms\"\n"
    "reconnect_max = \"1s\"\nprobe_interval = \"1s\"\n";

// The rig (local broker, upstream broker 1) and more upstream brokers, a verifier on each.
struct Brokers {
  std::vector<std::unique_ptr<Broker>> more;
  std::unique_ptr<Rig> rig;
  std::vector<Process> verifiers;

  // `extra` brokers beside the rig's upstream; `first_url` overrides broker 1's url (a proxy).
  explicit Brokers(int extra, const std::string& first_url = "") {
    for (int i = 0; i < extra; ++i) more.push_back(std::make_unique<Broker>(BrokerOptions{.persistent = true}));
    RigOptions o;
    o.uplink = k_timing;
    rig = std::make_unique<Rig>(o);
    std::vector<std::string> urls = {first_url.empty() ? rig->upstream().url() : first_url};
    for (auto& b : more) urls.push_back(b->url());
    rig->set_uplink_urls(urls);
  }
  Broker& broker(int n) { return n == 1 ? rig->upstream() : *more[static_cast<std::size_t>(n - 2)]; }
  std::string file(int n) const { return rig->dir().file("upstream-" + std::to_string(n) + ".txt"); }
  void start_verifiers() {
    for (int n = 1; n <= static_cast<int>(more.size()) + 1; ++n)
      verifiers.push_back(start_upstream_verifier(broker(n), file(n)));
  }
  Tally tally() const {
    std::string all;
    for (int n = 1; n <= static_cast<int>(more.size()) + 1; ++n) all += read_file(file(n));
    return tally_of(all);
  }
  template <typename Done>
  Tally wait(Done done, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Tally t = tally();
    while (!done(t) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(200ms);
      t = tally();
    }
    return t;
  }
  Tally wait_unique(std::size_t n) {
    return wait([n](const Tally& t) { return t.unique.size() >= n; }, 60s);
  }
  // Waits for `what` in the daemon's log; true if it came.
  bool wait_log(const std::string& what, long times = 1, std::chrono::seconds timeout = 60s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (count_of(rig->daemon_log(), what) < times && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(100ms);
    return count_of(rig->daemon_log(), what) >= times;
  }
  ~Brokers() {
    for (Process& v : verifiers) v.kill();
  }
};

void expect_all(const Tally& t, long count, long max_duplicates, const std::string& log) {
  EXPECT_EQ(t.missing(count), 0) << log;
  EXPECT_EQ(t.seq_conflicts, 0);
  EXPECT_EQ(t.malformed, 0);
  EXPECT_LE(t.duplicates(), max_duplicates) << log;
  std::printf("[ measured ] %ld messages, %zu received upstream, %ld duplicates\n", count, t.order.size(),
              t.duplicates());
}

TEST(Failover, preferred_broker_away_under_load_moves_to_the_next_and_back_after_its_connack) {
  Brokers b(1);
  b.start_verifiers();
  b.rig->start_daemon();
  ASSERT_TRUE(b.wait_log("uplink: connected to broker 1 of 2")) << b.rig->daemon_log();
  constexpr long k_count = 6000;
  Process sensors = b.rig->stream(k_count, 400);
  b.wait_unique(1000);
  b.broker(1).stop();
  ASSERT_TRUE(b.wait_log("uplink: connected to broker 2 of 2")) << b.rig->daemon_log();
  const std::size_t before = b.tally().unique.size();
  b.wait_unique(before + 1000);
  b.broker(1).start();
  ASSERT_TRUE(b.wait_log("answered the probe: switching back to the preferred broker")) << b.rig->daemon_log();
  EXPECT_EQ(sensors.wait(60s), 0);
  const Tally t = b.wait([](const Tally& x) { return x.missing(k_count) == 0; }, 90s);
  EXPECT_GE(b.rig->status_counter("uplink_switches"), 1);
  EXPECT_EQ(b.rig->stop_daemon(), 0) << b.rig->daemon_log();
  const std::string log = b.rig->daemon_log();
  expect_all(t, k_count, 2 * 32, log);
  // The working link was never dropped to find out: broker 2 saw one connection of the
  // gateway, and it ended only after the switch (the daemon's log says so in order).
  EXPECT_EQ(count_of(b.broker(2).log(), k_client), 1) << b.broker(2).log();
  const std::size_t on_2 = log.find("uplink: connected to broker 2 of 2");
  const std::size_t back = log.find("answered the probe", on_2);
  ASSERT_NE(back, std::string::npos);
  EXPECT_EQ(log.substr(on_2, back - on_2).find("disconnected from broker 2 of 2"), std::string::npos)
      << log.substr(on_2, back - on_2);
}

TEST(Failover, three_brokers_going_away_in_turn_under_load_lose_nothing) {
  Brokers b(2);
  b.start_verifiers();
  b.rig->start_daemon();
  ASSERT_TRUE(b.wait_log("uplink: connected to broker 1 of 3")) << b.rig->daemon_log();
  constexpr long k_count = 8000;
  Process sensors = b.rig->stream(k_count, 400);
  b.wait_unique(800);
  b.broker(1).stop();
  ASSERT_TRUE(b.wait_log("uplink: connected to broker 2 of 3")) << b.rig->daemon_log();
  b.wait_unique(b.tally().unique.size() + 800);
  b.broker(2).stop();
  ASSERT_TRUE(b.wait_log("uplink: connected to broker 3 of 3")) << b.rig->daemon_log();
  b.wait_unique(b.tally().unique.size() + 800);
  b.broker(1).start();
  b.broker(2).start();
  ASSERT_TRUE(b.wait_log("answered the probe")) << b.rig->daemon_log();
  b.wait_unique(b.tally().unique.size() + 800);
  b.broker(3).stop();  // no longer the current one
  EXPECT_EQ(sensors.wait(60s), 0);
  const Tally t = b.wait([](const Tally& x) { return x.missing(k_count) == 0; }, 90s);
  EXPECT_EQ(b.rig->stop_daemon(), 0) << b.rig->daemon_log();
  expect_all(t, k_count, 4 * 32, b.rig->daemon_log());
}

TEST(Failover, a_preferred_broker_that_never_answers_connect_leaves_the_fallback_alone) {
  Broker preferred(BrokerOptions{.persistent = true});
  ChaosProxy hole("127.0.0.1", preferred.port());
  hole.blackhole(true);  // TCP accepted, CONNECT never answered
  Brokers b(1, hole.url());
  b.start_verifiers();
  b.rig->start_daemon();
  ASSERT_TRUE(b.wait_log("uplink: connected to broker 2 of 2")) << b.rig->daemon_log();
  constexpr long k_count = 3000;
  Process sensors = b.rig->stream(k_count, 300);
  EXPECT_EQ(sensors.wait(60s), 0);
  const Tally t = b.wait([](const Tally& x) { return x.missing(k_count) == 0; }, 60s);
  const long probes = hole.accepted();
  EXPECT_EQ(b.rig->stop_daemon(), 0) << b.rig->daemon_log();
  const std::string log = b.rig->daemon_log();
  std::printf("[ measured ] %ld connections to the black hole\n", probes);
  EXPECT_GE(probes, 3) << "the first attempt and probes after it";
  EXPECT_GE(count_of(log, "the probe of broker 1"), 1) << log;
  EXPECT_EQ(count_of(log, "answered the probe"), 0) << log;
  EXPECT_EQ(count_of(b.broker(2).log(), k_client), 1) << b.broker(2).log();
  EXPECT_EQ(count_of(log.substr(0, log.find("received SIGTERM")), "disconnected from broker 2 of 2"), 0) << log;
  expect_all(t, k_count, 0, log);
}

}  // namespace
}  // namespace edgegw::test
