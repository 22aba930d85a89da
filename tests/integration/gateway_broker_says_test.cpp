// Honour what the broker says, through the whole daemon against mosquitto configured the
// way hosted brokers are: a lower Maximum QoS, no retained messages, an ACL that refuses
// and then allows (after the broker reloads it), a server keepalive, and a spool full long
// enough for keepalives to matter; and a scripted local broker that refuses a
// subscription once. Counts are asserted, never times.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "support/aedes.hpp"
#include "support/gateway_rig.hpp"
#include "support/scripted_broker.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

// How many times `client_id` connected to `broker`, from its log.
long connections_of(const Broker& broker, const std::string& client_id) {
  const std::string log = broker.log(), key = " as " + client_id + " ";
  long n = 0;
  for (std::size_t at = log.find(key); at != std::string::npos; at = log.find(key, at + 1)) ++n;
  return n;
}

TEST(GatewayBrokerSays, a_broker_below_the_uplink_qos_is_one_clear_error_not_a_reconnect_loop) {
  RigOptions o;
  o.upstream_broker = "max_qos 0\n";
  Rig rig(o);
  rig.start_daemon();
  std::this_thread::sleep_for(5s);
  const long attempts = connections_of(rig.upstream(), "edgegw-gw-test-up");
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const std::string log = rig.daemon_log();
  std::printf("[ measured ] %ld connections to a max_qos 0 broker in 5 s\n", attempts);
  EXPECT_LE(attempts, 2) << "retried at reconnect_max (30 s), not in a loop";
  EXPECT_NE(log.find("the broker takes publishes up to QoS 0 only (Maximum QoS in its CONNACK), and uplink.qos is 1: "
                     "set uplink.qos = 0"),
            std::string::npos)
      << log;
}

TEST(GatewayBrokerSays, a_broker_without_retained_messages_gets_them_without_the_flag_and_all_arrive) {
  RigOptions o;
  o.upstream_broker = "retain_available false\n";
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  publish(rig.local(), "sensors/r", "0", 1);
  publish(rig.local(), "sensors/r", "1", 1, true);  // retained at the sensor
  publish(rig.local(), "sensors/r", "2", 1);
  Tally t = rig.wait_for_all(3, 60s);
  EXPECT_EQ(t.missing(3), 0) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("retain_stripped"), 1);
  EXPECT_EQ(rig.status_counter("uplink_reconnects"), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_NE(rig.daemon_log().find("Retain Available 0"), std::string::npos);
}

TEST(GatewayBrokerSays, messages_the_acl_refuses_are_kept_and_arrive_once_the_acl_allows_them) {
  TempDir acl_dir;
  const std::string acl = acl_dir.write("acl", "topic read up/#\ntopic write up/probe\n");
  RigOptions o;
  o.upstream_broker = "acl_file " + acl + "\n";
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 200;
  Process sensors = rig.stream(k_count, 200);
  EXPECT_EQ(sensors.wait(60s), 0);
  ASSERT_GE(rig.wait_for_counter("refused_upstream", 1, 30s), 1) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("dropped_refused"), 0);
  EXPECT_EQ(rig.tally().unique.size(), 0u) << "the ACL lets nothing through yet";
  const std::string json = rig.status_json();
  EXPECT_NE(json.find("\"not authorized\":"), std::string::npos) << json;

  acl_dir.write("acl", "topic readwrite up/#\n");  // the operator fixes the ACL
  rig.upstream().reload();
  Tally t = rig.wait_for_all(k_count, 120s);
  EXPECT_EQ(t.missing(k_count), 0) << rig.daemon_log();
  const long refusals = rig.status_counter("refused_upstream");
  EXPECT_EQ(rig.status_counter("dropped_refused"), 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf("[ measured ] %ld refusals (not authorized) until the ACL changed; then %zu of %ld arrived, %ld twice\n",
              refusals, t.unique.size(), k_count, t.duplicates());
}

// mosquitto's acl_file cannot refuse a subscription (it filters what it delivers), so a
// scripted local broker refuses the first SUBSCRIBE (not authorized) and grants the next.
TEST(GatewayBrokerSays, a_refused_ingest_subscription_shows_in_status_and_is_asked_for_again) {
  std::atomic<int> subscribes{0};
  ScriptedBroker local([&](ScriptedConnection& c, int) {
    std::uint8_t first;
    std::vector<std::uint8_t> body;
    if (!c.read_until(1, body)) return;
    c.send_packet(0x20, {0x00, 0x00, 0x00});
    while (c.read(first, body, 60s)) {
      if (first >> 4 == 8)
        c.send_packet(0x90, {body[0], body[1], 0x00, subscribes++ == 0 ? std::uint8_t{0x87} : std::uint8_t{0x01}});
      else if (first >> 4 == 12) c.send_packet(0xd0, {});
      else if (first >> 4 == 14) return;
    }
  });
  RigOptions o;
  o.ingest_url = local.url();
  Rig rig(o);
  rig.start_daemon(false);
  const auto status_shows = [&](const std::string& what) {
    std::string json;
    for (int i = 0; i < 300 && json.find(what) == std::string::npos; ++i) {
      std::this_thread::sleep_for(100ms);
      json = rig.status_json();
    }
    return json;
  };
  std::string json = status_shows("refused: sensors/# (not authorized)");
  EXPECT_NE(json.find("\"subscriptions\":\"0 of 1 topic filters subscribed; refused: sensors/# (not authorized)\""),
            std::string::npos)
      << json << rig.daemon_log();
  json = status_shows("subscribed to all 1 topic filters");
  EXPECT_NE(json.find("\"subscriptions\":\"subscribed to all 1 topic filters\""), std::string::npos)
      << json << rig.daemon_log();
  EXPECT_EQ(subscribes, 2);
  EXPECT_EQ(rig.status_counter("ingest_reconnects"), 0) << "asked again on the same connection";
  EXPECT_EQ(rig.status_counter("subscribe_refusals"), 1);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

TEST(GatewayBrokerSays, the_servers_keepalive_is_kept_while_the_session_is_idle) {
  RigOptions o;
  o.local_broker = "max_keepalive 10\n";  // mosquitto's least; edgegw asks for 60 s
  o.ingest = "keepalive = \"60s\"";
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  std::this_thread::sleep_for(16s);  // mosquitto drops a client silent for 15 s
  EXPECT_EQ(rig.status_counter("ingest_reconnects"), 0) << rig.daemon_log();
  Process sensors = rig.stream(50, 0);
  EXPECT_EQ(sensors.wait(30s), 0);
  EXPECT_EQ(rig.wait_for_all(50, 60s).missing(50), 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

// A spool full for longer than several keepalives: ingest stops reading at the next
// PUBLISH, yet its session stays (PINGREQs go on; a dead broker would show through TCP).
TEST(GatewayBrokerSays, ingest_held_by_a_full_spool_keeps_its_session) {
  RigOptions o;
  o.spool = "max_bytes = \"1MiB\"\nsync = \"batch\"";
  o.ingest = "keepalive = \"2s\"";
  Rig rig(o);
  rig.start_verifier();
  rig.upstream().stop();
  rig.start_daemon();
  constexpr long k_count = 5000;  // ~2.2 MB of 440-byte messages into a 1 MiB spool
  const std::string path = rig.dir().file("big.txt");
  {
    std::ofstream f(path);
    for (long i = 0; i < k_count; ++i) f << i << ' ' << std::string(400, 'x') << '\n';
  }
  std::string cmd;
  for (const std::string& a : with_broker(rig.local(), {"mosquitto_pub", "-t", "sensors/big", "-q", "1", "-l"}))
    cmd += a + " ";
  Process sensors({"sh", "-c", cmd + "< " + path});
  EXPECT_EQ(sensors.wait(120s), 0);
  for (int i = 0; i < 600 && rig.daemon_log().find("spool: full") == std::string::npos; ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_NE(rig.daemon_log().find("spool: full"), std::string::npos) << rig.daemon_log();
  std::this_thread::sleep_for(8s);  // four keepalives with ingest held
  EXPECT_EQ(rig.status_counter("ingest_reconnects"), 0) << rig.daemon_log();
  rig.upstream().start();
  Tally t = rig.wait_for_all(k_count, 300s);
  EXPECT_EQ(t.missing(k_count), 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(rig.daemon_log().find("no PINGRESP"), std::string::npos) << rig.daemon_log();
}

// aedes 0.51 speaks MQTT 3.1.1 only: it answers an MQTT 5 CONNECT with a 3.1.1 CONNACK,
// "unacceptable protocol version". Before, edgegw took that for a malformed packet and
// tried MQTT 5 again and again.
TEST(GatewayBrokerSays, an_mqtt5_uplink_to_a_311_only_broker_is_told_which_setting_to_change) {
  Aedes aedes;
  RigOptions o;
  o.uplink_url = aedes.url();
  Rig rig(o);
  rig.start_daemon();
  const std::string wanted = "the broker speaks MQTT 3.1.1 only";
  for (int i = 0; i < 300 && rig.daemon_log().find(wanted) == std::string::npos; ++i) std::this_thread::sleep_for(20ms);
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const std::string log = rig.daemon_log();
  EXPECT_NE(log.find(wanted + " (it refused this MQTT 5 CONNECT as an unacceptable protocol version): set "
                              "uplink.mqtt_version = \"3.1.1\" (or \"auto\")"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("malformed"), std::string::npos) << log;
  long attempts = 0;
  const std::string a = aedes.log();
  for (std::size_t at = a.find("unacceptable protocol version"); at != std::string::npos;
       at = a.find("unacceptable protocol version", at + 1)) {
    ++attempts;
  }
  EXPECT_EQ(attempts, 1) << "the next attempt waits reconnect_max\n" << a;
}

TEST(GatewayBrokerSays, mqtt_version_auto_forwards_everything_to_a_311_only_broker) {
  Aedes aedes;
  RigOptions o;
  o.uplink_url = aedes.url();
  o.uplink += "\nmqtt_version = \"auto\"";
  Rig rig(o);
  const std::string out = rig.dir().file("aedes-sub.txt");
  Process sub({"mosquitto_sub", "-V", "mqttv311", "-h", "127.0.0.1", "-p", std::to_string(aedes.port()), "-q", "1",
               "-t", "up/#", "-F", "%p"},
              Redirects{.stdout_file = out});
  std::this_thread::sleep_for(500ms);
  rig.start_daemon();
  constexpr long k_count = 500;
  Process sensors = rig.stream(k_count, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  std::set<long> got;
  for (int i = 0; i < 600 && static_cast<long>(got.size()) < k_count; ++i) {
    std::this_thread::sleep_for(100ms);
    got.clear();
    std::istringstream in(read_file(out));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) got.insert(std::stol(line));
    }
  }
  EXPECT_EQ(static_cast<long>(got.size()), k_count) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_NE(rig.daemon_log().find("using MQTT 3.1.1 (uplink.mqtt_version = \"auto\")"), std::string::npos);
  sub.kill();
}

// The same with aedes as the local broker: after falling back to 3.1.1 the ingest's
// SUBSCRIBE carried its MQTT 5 subscription options (retain as published, retain
// handling) in the byte 3.1.1 keeps for the QoS alone, a malformed packet to a 3.1.1
// broker, and it never subscribed (found by tests/fuzz/session_fuzz.cpp).
TEST(GatewayBrokerSays, mqtt_version_auto_ingest_subscribes_on_a_311_only_local_broker) {
  Aedes aedes;
  RigOptions o;
  o.ingest_url = aedes.url();
  o.ingest = "mqtt_version = \"auto\"";
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();  // waits for "ingest: subscribed"
  constexpr long k_count = 200;
  Process sensors({"sh", "-c",
                   "seq 0 " + std::to_string(k_count - 1) + " | mosquitto_pub -V mqttv311 -h 127.0.0.1 -p " +
                       std::to_string(aedes.port()) + " -q 1 -t sensors/a -l"});
  EXPECT_EQ(sensors.wait(60s), 0);
  const Tally t = rig.wait_for_all(k_count, 60s);
  EXPECT_EQ(t.missing(k_count), 0) << rig.daemon_log() << aedes.log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_NE(rig.daemon_log().find("using MQTT 3.1.1 (ingest.mqtt_version = \"auto\")"), std::string::npos)
      << rig.daemon_log();
  std::printf("[ measured ] %zu of %ld messages from a 3.1.1-only local broker forwarded upstream\n", t.unique.size(),
              k_count);
}

}  // namespace
}  // namespace edgegw::test
