// The downlink against real brokers: commands published upstream arrive at the local
// broker under the mapped topic, none lost across a restart of the local broker, of
// edgegw (SIGKILL) or of the upstream broker; what came down never goes back up.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <thread>

#include "support/clients.hpp"
#include "support/gateway_rig.hpp"
#include "support/text.hpp"

using namespace edgegw::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* k_downlink = R"(
[downlink]
slots = 16
session_expiry = "10m"
[[downlink.rule]]
filter = "cmd/gw-test/#"
strip = "cmd/gw-test/"
prefix = "commands/"
)";

RigOptions downlink_rig() {
  RigOptions o;
  o.extra = k_downlink;
  o.local_persistent = true;  // the local verifier's session (and what it has not read) survives its restart
  return o;
}

// A persistent QoS 1 subscriber to commands/# on the local broker, printing "user
// properties|payload"; returned once it saw a probe.
Process start_local_verifier(Rig& rig) {
  const std::string file = rig.dir().file("local.txt");
  Process verifier(with_broker(rig.local(), {"mosquitto_sub", "-V", "mqttv5", "-q", "1", "-c", "-i", "local-verifier",
                                             "-x", "86400", "-t", "commands/#", "-F", "%P|%p"}),
                   Redirects{.stdout_file = file});
  for (int i = 0; i < 500; ++i) {
    publish(rig.local(), "commands/probe", "probe", 1);
    if (read_file(file).find("probe") != std::string::npos) return verifier;
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "the local verifier never subscribed";
  return verifier;
}

void start_with_downlink(Rig& rig) {
  rig.start_daemon();
  for (int i = 0; i < 1000 && rig.daemon_log().find("downlink: subscribed upstream") == std::string::npos; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_NE(rig.daemon_log().find("downlink: subscribed upstream to all 1 filters"), std::string::npos)
      << rig.daemon_log();
}

// Commands "first".."first+count-1" on cmd/gw-test/valve upstream, at `rate` per second.
Process commands(Rig& rig, long count, int rate, long first = 0) {
  return publish_stream(rig.upstream(), "cmd/gw-test/valve", count, rate, 1, first);
}

Tally local_tally(Rig& rig, long count, std::chrono::seconds timeout) {
  return wait_for_tally(
      rig.dir().file("local.txt"), [count](const Tally& t) { return t.missing(count) == 0; }, timeout);
}

void print_latency(Rig& rig, const char* what) {
  const std::string json = rig.status_json();
  const std::size_t at = json.find("\"downlink\":{");
  const std::size_t lat = at == std::string::npos ? at : json.find("\"latency_ms\":", at);
  const std::size_t end = lat == std::string::npos ? lat : json.find('}', lat);
  std::printf("[ downlink ] %s: %s\n", what,
              end == std::string::npos ? "no status" : json.substr(lat, end - lat + 1).c_str());
}

}  // namespace

// The plain path: every command arrives once, in order, under the mapped topic, marked as
// edgegw's; the counters say so; the latency is printed (not asserted).
TEST(Downlink, a_stream_of_commands_arrives_locally_in_order_under_the_mapped_topic) {
  constexpr long k_count = 500;
  RigOptions o = downlink_rig();
  // Without it mosquitto's Nagle meets the peer's delayed ACK: 40 ms on some messages.
  o.broker_head = "set_tcp_nodelay true\n";
  Rig rig(o);
  Process verifier = start_local_verifier(rig);
  start_with_downlink(rig);
  Process upstream = commands(rig, k_count, 500);
  Tally t = local_tally(rig, k_count, 20s);
  EXPECT_EQ(upstream.wait(10s), 0);
  EXPECT_EQ(t.missing(k_count), 0);
  EXPECT_EQ(t.duplicates(), 0);
  ASSERT_EQ(t.order.size(), static_cast<std::size_t>(k_count));
  for (long i = 0; i < k_count; ++i) EXPECT_EQ(t.order[static_cast<std::size_t>(i)], i);
  const std::string local = read_file(rig.dir().file("local.txt"));
  EXPECT_NE(local.find("edgegw-downlink:gw-test|0\n"), std::string::npos) << local.substr(0, 200);
  EXPECT_EQ(rig.wait_for_counter("downlink_delivered", k_count, 5s), k_count);
  EXPECT_EQ(rig.status_counter("downlink_received"), k_count);
  EXPECT_EQ(rig.status_counter("downlink_refused"), 0);
  EXPECT_EQ(rig.status_counter("downlink_in_flight"), 0);
  print_latency(rig, "500 commands at 500/s");
  std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
  argv.insert(argv.end(), {"status", "--config", rig.config_path()});
  std::string text;
  EXPECT_EQ(run(argv, &text), 0);
  EXPECT_NE(text.find("downlink 0 of 16 slots in use; received 500, delivered 500"), std::string::npos) << text;
  EXPECT_NE(text.find("  downlink           500 "), std::string::npos) << text;  // the latency row's count
  EXPECT_EQ(rig.stop_daemon(), 0);
}

// 1,000 commands at 250/s; 1.5 s in, `interrupt` runs; none may be lost. Returns the
// local tally.
template <typename Interrupt>
Tally interrupted_stream(Rig& rig, Interrupt interrupt) {
  constexpr long k_count = 1000;
  Process verifier = start_local_verifier(rig);
  start_with_downlink(rig);
  Process upstream = commands(rig, k_count, 250);
  std::this_thread::sleep_for(1500ms);
  interrupt();
  Tally t = local_tally(rig, k_count, 20s);
  EXPECT_EQ(upstream.wait(10s), 0);
  EXPECT_EQ(t.missing(k_count), 0) << rig.daemon_log();
  EXPECT_GE(rig.wait_for_counter("downlink_delivered", 1, 5s), 1);
  EXPECT_EQ(rig.status_counter("downlink_refused"), 0);
  return t;
}

// The local broker stops for a second mid-stream: the commands edgegw holds are not
// acknowledged upstream until the restarted broker has them; none is lost.
TEST(Downlink, a_local_broker_restart_mid_stream_loses_no_command) {
  Rig rig(downlink_rig());
  Tally t = interrupted_stream(rig, [&] {
    rig.local().stop();
    std::this_thread::sleep_for(1s);
    rig.local().start();
  });
  std::printf("[ downlink ] local broker restart: %ld duplicates of 1000\n", t.duplicates());
  EXPECT_GE(rig.wait_for_counter("downlink_delivered", 1000, 5s), 1000);
}

// edgegw is killed (SIGKILL) mid-stream and started again: what it held unacknowledged
// comes down again from its upstream session; none is lost (duplicates counted).
TEST(Downlink, an_edgegw_kill_mid_stream_loses_no_command) {
  Rig rig(downlink_rig());
  Tally t = interrupted_stream(rig, [&] {
    rig.daemon().kill();
    std::this_thread::sleep_for(500ms);
    rig.start_daemon();
  });
  std::printf("[ downlink ] edgegw SIGKILL: %ld duplicates of 1000, %ld redelivered (DUP) after the restart\n",
              t.duplicates(), rig.status_counter("downlink_redelivered"));
  EXPECT_NE(rig.daemon_log().find("mqtt edgegw-gw-test-up: connected (MQTT 5.0, session resumed"), std::string::npos);
}

// The local broker is down, so edgegw holds downlink.slots commands unacknowledged and
// more wait upstream; then edgegw is killed (SIGKILL) and the upstream broker restarts
// (persistent, as a production broker is): the session and the commands in it survive,
// and all arrive once edgegw and the local broker are back. Acknowledging upstream before
// the local PUBACK would lose the 16 edgegw held.
TEST(Downlink, commands_held_through_an_edgegw_kill_and_an_upstream_broker_restart_are_not_lost) {
  constexpr long k_count = 200;
  Rig rig(downlink_rig());
  Process verifier = start_local_verifier(rig);
  start_with_downlink(rig);
  rig.local().stop();
  Process upstream = commands(rig, k_count, 0);
  EXPECT_EQ(upstream.wait(10s), 0);
  // edgegw holds downlink.slots of them unacknowledged; the rest wait upstream.
  EXPECT_EQ(rig.wait_for_counter("downlink_in_flight", 16, 5s), 16);
  rig.daemon().kill();
  rig.upstream().stop();
  rig.upstream().start();
  rig.local().start();
  rig.start_daemon();
  Process more = commands(rig, 100, 0, k_count);
  Tally t = local_tally(rig, k_count + 100, 20s);
  EXPECT_EQ(more.wait(10s), 0);
  EXPECT_EQ(t.missing(k_count + 100), 0) << rig.daemon_log();
  std::printf("[ downlink ] edgegw kill + upstream broker restart, local broker down: %ld duplicates of %ld\n",
              t.duplicates(), k_count + 100);
}

// A message carrying the downlink's mark that reaches ingest (here published by hand, as
// another gateway's downlink would) is not sent up; check-config refuses the overlap
// that would make edgegw do it to itself (DownlinkConfig unit tests).
TEST(Downlink, a_marked_message_is_never_sent_back_up) {
  Rig rig(downlink_rig());
  rig.start_verifier();
  start_with_downlink(rig);
  std::string out;
  ASSERT_EQ(run(with_broker(rig.local(), {"mosquitto_pub", "-V", "mqttv5", "-t", "sensors/loop", "-m", "7", "-q", "1",
                                          "-D", "publish", "user-property", "edgegw-downlink", "gw-other"}),
                &out),
            0)
      << out;
  publish(rig.local(), "sensors/after", "8", 1);
  Tally t = rig.wait_for_unique(1, 10s);
  EXPECT_EQ(t.unique.count(8), 1u);
  EXPECT_EQ(t.unique.count(7), 0u);
  EXPECT_EQ(rig.wait_for_counter("downlink_loops_refused", 1, 5s), 1);
}

TEST(Downlink, check_config_refuses_a_rule_whose_local_topics_go_back_up) {
  Rig rig(RigOptions{.extra = "[[downlink.rule]]\nfilter = \"cmd/#\"\nprefix = \"sensors/\"\n"});
  std::string out;
  std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
  argv.insert(argv.end(), {"check-config", "--config", rig.config_path()});
  EXPECT_EQ(run(argv, &out), 1);
  EXPECT_NE(out.find("downlink.rule[1].filter: its local topics \"sensors/cmd/#\" overlap ingest.topics \"sensors/#\""),
            std::string::npos)
      << out;
}

// Two upstream brokers (failover): each keeps its own session of edgegw's. Commands sent
// to the broker edgegw has left wait there, and come down once edgegw is back on it.
TEST(Downlink, with_several_upstream_brokers_each_keeps_the_commands_sent_to_it) {
  Broker second(BrokerOptions{.persistent = true});
  RigOptions o = downlink_rig();
  o.uplink =
      "keepalive = \"5s\"\nconnect_timeout = \"2s\"\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n"
      "probe_interval = \"1s\"\n";
  Rig rig(o);
  rig.set_uplink_urls({rig.upstream().url(), second.url()});
  Process verifier = start_local_verifier(rig);
  start_with_downlink(rig);
  const auto wait_log = [&](const std::string& what, long times) {
    for (int i = 0; i < 200 && count_of(rig.daemon_log(), what) < times; ++i) std::this_thread::sleep_for(100ms);
    return count_of(rig.daemon_log(), what) >= times;
  };
  // Broker 1 goes: edgegw subscribes on broker 2, and its commands come down.
  rig.upstream().stop();
  ASSERT_TRUE(wait_log("downlink: subscribed upstream", 2)) << rig.daemon_log();
  EXPECT_EQ(publish_stream(second, "cmd/gw-test/valve", 100, 0, 1, 0).wait(10s), 0);
  EXPECT_EQ(local_tally(rig, 100, 10s).missing(100), 0);
  // Broker 1 is back: the probe takes edgegw there. Commands sent to broker 2 meanwhile
  // wait in edgegw's session there; broker 1's come down.
  rig.upstream().start();
  ASSERT_TRUE(wait_log("answered the probe", 1)) << rig.daemon_log();
  EXPECT_EQ(publish_stream(second, "cmd/gw-test/valve", 100, 0, 1, 100).wait(10s), 0);
  EXPECT_EQ(commands(rig, 100, 0, 200).wait(10s), 0);
  Tally t = wait_for_tally(
      rig.dir().file("local.txt"), [](const Tally& seen) { return seen.unique.size() >= 200; }, 10s);
  EXPECT_EQ(t.unique.size(), 200u);  // 0-99 and 200-299: broker 2's wait
  for (long i = 100; i < 200; ++i) EXPECT_EQ(t.unique.count(i), 0u) << i;
  // Broker 1 goes again: back on broker 2, its waiting commands come down.
  rig.upstream().stop();
  t = local_tally(rig, 300, 15s);
  EXPECT_EQ(t.missing(300), 0) << rig.daemon_log();
  std::printf("[ downlink ] failover between two brokers: %ld duplicates of 300\n", t.duplicates());
}
