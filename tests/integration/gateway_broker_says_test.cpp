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
#include "support/chaos_proxy.hpp"
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

// With uplink.status_topic the Last Will is QoS 1, and mosquitto with max_qos 0 refuses
// such a CONNECT (QoS Not Supported): edgegw never connected, even with uplink.qos = 0.
// Now the will goes at QoS 0 from the next attempt on, and so do online/offline (a QoS 1
// publish would end the session).
TEST(GatewayBrokerSays, a_broker_below_qos_1_gets_the_status_and_the_will_at_qos_0_and_everything_arrives) {
  RigOptions o;
  o.upstream_broker = "max_qos 0\n";
  o.uplink += "\nqos = 0\nstatus_topic = \"site/gw-test/status\"\n";
  Rig rig(o);
  // The rig's verifier subscribes and probes at QoS 1, which this broker refuses.
  const std::string seen = rig.dir().file("upstream.txt");
  Process verifier(with_broker(rig.upstream(), {"mosquitto_sub", "-V", "mqttv5", "-t", "up/#", "-F", "%P|%p"}),
                   Redirects{.stdout_file = seen});
  for (int i = 0; i < 500 && read_file(seen).find("probe") == std::string::npos; ++i) {
    publish(rig.upstream(), "up/probe", "probe", 0);
    std::this_thread::sleep_for(20ms);
  }
  rig.start_daemon();
  constexpr long k_count = 50;
  Process sensors = rig.stream(k_count, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  EXPECT_EQ(rig.wait_for_all(k_count, 60s).missing(k_count), 0) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("uplink_reconnects"), 0) << rig.daemon_log();
  std::string status;
  run(with_broker(rig.upstream(), {"mosquitto_sub", "-t", "site/+/status", "-C", "1", "-W", "5"}), &status, 10s);
  EXPECT_NE(status.find("\"state\":\"online\""), std::string::npos) << status << rig.daemon_log();
  rig.daemon().kill();  // no DISCONNECT: the broker publishes the will
  for (int i = 0; i < 10 && status.find("offline") == std::string::npos; ++i) {
    status.clear();
    run(with_broker(rig.upstream(), {"mosquitto_sub", "-t", "site/+/status", "-C", "1", "-W", "2"}), &status, 10s);
  }
  EXPECT_EQ(status, "{\"state\":\"offline\"}\n") << rig.daemon_log();
  const std::string log = rig.daemon_log();
  EXPECT_NE(log.find("connection refused: QoS not supported (for the Last Will): it goes at QoS 0"), std::string::npos)
      << log;
  EXPECT_EQ(connections_of(rig.upstream(), "edgegw-gw-test-up"), 1) << "one refused CONNECT, then one session";
  verifier.kill();
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

// Sensors: "first".."first+count-1" on sensors/stream, then "first+count" padded past 512
// bytes on sensors/big, then as many more small ones; returns the big one's number.
long publish_around_a_big_one(Rig& rig, long first, long count) {
  EXPECT_EQ(rig.stream(count, 0, 1, first).wait(60s), 0);
  publish(rig.local(), "sensors/big", std::to_string(first + count) + " " + std::string(600, 'x'), 1);
  EXPECT_EQ(rig.stream(count, 0, 1, first + count + 1).wait(60s), 0);
  return first + count;
}

// Waits until the verifier holds every number below `count` but one; returns the tally.
Tally wait_for_all_but_one(Rig& rig, long count) {
  return rig.wait_until([count](const Tally& t) { return t.missing(count) <= 1; }, 60s);
}

// mosquitto's max_packet_size: its CONNACK says Maximum Packet Size 512, and it would
// disconnect a client over a larger packet (again after every reconnect). The one message
// over it is dropped before it is sent, counted; everything around it arrives.
TEST(GatewayBrokerSays, a_message_over_the_brokers_maximum_packet_size_is_dropped_and_counted_and_the_rest_arrive) {
  RigOptions o;
  o.upstream_broker = "max_packet_size 512\n";
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  const long big = publish_around_a_big_one(rig, 0, 20);
  const Tally t = wait_for_all_but_one(rig, 41);
  EXPECT_EQ(t.missing(41), 1) << rig.daemon_log();
  EXPECT_EQ(t.unique.count(big), 0u);
  EXPECT_EQ(rig.wait_for_counter("dropped_refused", 1, 10s), 1) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("refused_upstream"), 1);
  EXPECT_NE(rig.status_json().find("\"packet too large\":1"), std::string::npos) << rig.status_json();
  EXPECT_EQ(rig.status_counter("uplink_reconnects"), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_NE(rig.daemon_log().find("is larger than the upstream broker accepts; dropped"), std::string::npos);
}

// The same message sent before the broker set the limit (into a link that lost it), and
// sent again after the reconnect to a broker that now says 512: dropped then, counted,
// and the rest sent again arrive.
TEST(GatewayBrokerSays, a_message_resent_after_a_reconnect_respects_the_new_maximum_packet_size) {
  Rig rig;
  ChaosProxy proxy(rig.upstream().host(), rig.upstream().port());
  rig.set_uplink_url(proxy.url());
  rig.start_verifier();
  rig.start_daemon();
  proxy.blackhole(true);  // sent, never acknowledged
  const long big = publish_around_a_big_one(rig, 0, 20);
  ASSERT_EQ(rig.wait_for_counter("durable", 41, 30s), 41) << rig.daemon_log();
  rig.upstream().stop();
  rig.upstream().set_extra_config("max_packet_size 512\n");
  rig.upstream().start();
  proxy.reset_all();
  proxy.blackhole(false);
  const Tally t = wait_for_all_but_one(rig, 41);
  EXPECT_EQ(t.missing(41), 1) << rig.daemon_log();
  EXPECT_EQ(t.unique.count(big), 0u);
  EXPECT_EQ(rig.wait_for_counter("dropped_refused", 1, 10s), 1) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("uplink_reconnects"), 1) << "no disconnect over the big one" << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_NE(rig.daemon_log().find("for good (packet too large); dropped"), std::string::npos) << rig.daemon_log();
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

// Fills a 1 MiB spool with the upstream broker stopped: 5000 ~440-byte messages from the
// sensors (~2.2 MB), so ingest is held. Returns once the daemon says the spool is full.
void fill_the_spool(Rig& rig) {
  rig.upstream().stop();
  rig.start_daemon();
  rig.publish_padded(0, 5000);
  for (int i = 0; i < 600 && rig.daemon_log().find("spool: full") == std::string::npos; ++i)
    std::this_thread::sleep_for(50ms);
  ASSERT_NE(rig.daemon_log().find("spool: full"), std::string::npos) << rig.daemon_log();
}

RigOptions held_by_a_full_spool() {
  RigOptions o;
  o.spool = "max_bytes = \"1MiB\"\nsync = \"batch\"";
  o.ingest = "keepalive = \"2s\"";
  return o;
}

// A spool full for longer than several keepalives: ingest stops reading at the next
// PUBLISH, yet its session stays (PINGREQs go on; a dead broker would show through TCP).
TEST(GatewayBrokerSays, ingest_held_by_a_full_spool_keeps_its_session) {
  Rig rig(held_by_a_full_spool());
  rig.start_verifier();
  fill_the_spool(rig);
  std::this_thread::sleep_for(8s);  // four keepalives with ingest held
  EXPECT_EQ(rig.status_counter("ingest_reconnects"), 0) << rig.daemon_log();
  rig.upstream().start();
  Tally t = rig.wait_for_all(5000, 300s);
  EXPECT_EQ(t.missing(5000), 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(rig.daemon_log().find("no PINGRESP"), std::string::npos) << rig.daemon_log();
}

// The local broker dies while ingest is held (not reading): the reset or close is seen at
// once (EPOLLERR, EPOLLRDHUP), not left to a keepalive that cannot be read, and ingest
// connects again once the broker is back. What edgegw had received all goes upstream;
// what the broker held for it died with the broker (not persistent).
TEST(GatewayBrokerSays, ingest_held_by_a_full_spool_sees_its_broker_die_and_connects_again) {
  Rig rig(held_by_a_full_spool());
  rig.start_verifier();
  fill_the_spool(rig);
  rig.local().stop();
  // mosquitto going away resets the connection (or closes it: "the broker closed ...").
  for (int i = 0; i < 200 && rig.daemon_log().find("while edgegw held its input") == std::string::npos; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_NE(rig.daemon_log().find("while edgegw held its input"), std::string::npos) << rig.daemon_log();
  const long received = rig.status_counter("received");
  rig.local().start();
  EXPECT_EQ(rig.wait_for_counter("ingest_reconnects", 1, 60s), 1) << rig.daemon_log();
  rig.upstream().start();
  Tally t = rig.wait_for_all(received, 300s);
  EXPECT_EQ(t.missing(received), 0) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("received"), received) << "nothing more came: the sensors were done";
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf("[ measured ] %ld of 5000 received before the local broker died, all forwarded\n", received);
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
