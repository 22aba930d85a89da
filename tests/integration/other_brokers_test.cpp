// Another broker implementation than mosquitto (issue 15 item 2): aedes 0.51 (npm), which
// speaks MQTT 3.1.1 only, as the uplink and as the ingest broker with mqtt_version =
// "3.1.1": forwarding, an outage (aedes stopped and started: it keeps everything in
// memory, so it comes back empty), a restart of edgegw; nothing lost. And failover between
// aedes and mosquitto. aedes records what it receives itself (tests/support/aedes.hpp), a
// verifier that cannot miss messages while resubscribing after aedes's restart.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/aedes.hpp"
#include "support/gateway_rig.hpp"
#include "support/text.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

template <typename Done>
bool wait_for(Done done, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(100ms);
  return done();
}

constexpr const char* k_uplink_311 =
    "max_inflight = 32\nkeepalive = \"5s\"\nmqtt_version = \"3.1.1\"\nreconnect_min = \"100ms\"\n"
    "reconnect_max = \"1s\"\n";

// aedes writes the PUBACK of a QoS 1 PUBLISH before it handles the message
// (lib/handlers/publish.js), so stopping it under load loses the last it acknowledged:
// aedes's loss, not edgegw's to prevent. The outage therefore starts with nothing in
// flight; the messages of the outage go into the spool and up after it. The restart of
// edgegw is under load.
TEST(OtherBrokers, aedes_as_the_uplink_through_an_outage_and_a_restart_loses_nothing) {
  TempDir dir;
  const std::string record = dir.file("aedes-received.txt");
  Aedes aedes(record);
  RigOptions o;
  o.uplink_url = aedes.url();
  o.uplink = k_uplink_311;
  Rig rig(o);
  rig.start_daemon();
  constexpr long k_part = 1500, k_count = 3 * k_part;
  const auto received = [&] { return tally_of(read_file(record)); };
  Process before = rig.stream(k_part, 500);
  EXPECT_EQ(before.wait(60s), 0);
  EXPECT_TRUE(wait_for([&] { return received().missing(k_part) == 0; }, 60s)) << rig.daemon_log();
  aedes.stop();
  Process during = rig.stream(k_part, 500, 1, k_part);
  EXPECT_EQ(during.wait(60s), 0);
  EXPECT_GE(rig.wait_for_counter("durable", 2 * k_part, 30s), 2 * k_part);
  aedes.start();
  Process after = rig.stream(k_part, 300, 1, 2 * k_part);
  EXPECT_TRUE(wait_for([&] { return received().unique.size() >= 2 * k_part + 300; }, 60s)) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  rig.start_daemon();
  EXPECT_EQ(after.wait(60s), 0);
  const Tally t = wait_for_tally(
      record, [](const Tally& x) { return x.missing(k_count) == 0; }, 90s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf("[ measured ] aedes uplink: %ld messages, %zu received, %ld duplicates\n", k_count, t.order.size(),
              t.duplicates());
  EXPECT_EQ(t.missing(k_count), 0) << rig.daemon_log();
  EXPECT_EQ(t.malformed, 0);
  EXPECT_LE(t.duplicates(), 2 * 32 + 64) << "an outage's window, a restart's unpersisted acks";
  EXPECT_EQ(rig.daemon_log().find("malformed"), std::string::npos) << rig.daemon_log();
}

TEST(OtherBrokers, aedes_as_the_ingest_broker_through_an_outage_and_a_restart_loses_nothing) {
  Aedes aedes;
  RigOptions o;
  o.ingest_url = aedes.url();
  o.ingest = "mqtt_version = \"3.1.1\"\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n";
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  const std::vector<std::string> sensor_args = {"-h", "127.0.0.1", "-p", std::to_string(aedes.port()),
                                                "-V", "mqttv311"};
  constexpr long k_half = 2500;
  Process first = publish_stream_to(sensor_args, "sensors/stream", k_half, 500, 1);
  EXPECT_EQ(first.wait(60s), 0);
  // aedes keeps messages in memory only: what it holds when it stops is lost with it,
  // edgegw's or not, so the outage comes once everything it took is forwarded.
  EXPECT_EQ(rig.wait_for_all(k_half, 60s).missing(k_half), 0) << rig.daemon_log();
  aedes.stop();
  std::this_thread::sleep_for(2s);
  aedes.start();
  EXPECT_TRUE(wait_for([&] { return count_of(rig.daemon_log(), "ingest: subscribed") >= 2; }, 30s)) << rig.daemon_log();
  Process second = publish_stream_to(sensor_args, "sensors/stream", k_half, 400, 1, k_half);
  EXPECT_TRUE(wait_for([&] { return rig.tally().unique.size() >= k_half + 800; }, 60s)) << rig.daemon_log();
  // A restart of edgegw: aedes queues for its session (clean session 0) meanwhile.
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  rig.start_daemon();
  EXPECT_EQ(second.wait(60s), 0);
  const Tally t = rig.wait_for_all(2 * k_half, 90s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf("[ measured ] aedes ingest: %ld messages, %zu received, %ld duplicates\n", 2 * k_half, t.order.size(),
              t.duplicates());
  EXPECT_EQ(t.missing(2 * k_half), 0) << rig.daemon_log();
  EXPECT_EQ(t.seq_conflicts, 0);
  EXPECT_LE(t.duplicates(), 3 * 32 + 64);
}

// The MQTT 5 ingest (the default) meeting aedes: the log names the setting to change.
TEST(OtherBrokers, an_mqtt5_ingest_to_aedes_is_told_which_setting_to_change) {
  Aedes aedes;
  RigOptions o;
  o.ingest_url = aedes.url();
  Rig rig(o);
  rig.start_daemon(false);
  const std::string wanted = "set ingest.mqtt_version = \"3.1.1\" (or \"auto\")";
  EXPECT_TRUE(wait_for([&] { return rig.daemon_log().find(wanted) != std::string::npos; }, 30s)) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(rig.daemon_log().find("malformed"), std::string::npos) << rig.daemon_log();
}

// Failover between two implementations at once: mosquitto preferred (the rig's upstream,
// with its verifier), aedes the fallback, both MQTT 3.1.1. Mosquitto is the one stopped
// under load (aedes could lose what it acknowledged last: see above).
TEST(OtherBrokers, failover_between_mosquitto_and_aedes_loses_nothing) {
  TempDir dir;
  const std::string record = dir.file("aedes-received.txt");
  Aedes aedes(record);
  RigOptions o;
  o.uplink = std::string(k_uplink_311) + "connect_timeout = \"2s\"\nprobe_interval = \"1s\"\n";
  Rig rig(o);
  rig.set_uplink_urls({rig.upstream().url(), aedes.url()});
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 5000;
  Process sensors = rig.stream(k_count, 400);
  const auto merged = [&] { return tally_of(read_file(record) + read_file(rig.dir().file("upstream.txt"))); };
  EXPECT_TRUE(wait_for([&] { return merged().unique.size() >= 800; }, 60s));
  rig.upstream().stop();
  EXPECT_TRUE(wait_for([&] { return count_of(rig.daemon_log(), "uplink: connected to broker 2 of 2") >= 1; }, 60s))
      << rig.daemon_log();
  const std::size_t before = merged().unique.size();
  EXPECT_TRUE(wait_for([&] { return merged().unique.size() >= before + 800; }, 60s));
  EXPECT_GT(tally_of(read_file(record)).unique.size(), 0u) << "aedes took messages";
  rig.upstream().start();
  EXPECT_TRUE(wait_for([&] { return count_of(rig.daemon_log(), "answered the probe") >= 1; }, 60s)) << rig.daemon_log();
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = merged();
  EXPECT_TRUE(wait_for(
      [&] {
        t = merged();
        return t.missing(k_count) == 0;
      },
      90s));
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf("[ measured ] mosquitto <-> aedes failover: %ld messages, %zu received, %ld duplicates\n", k_count,
              t.order.size(), t.duplicates());
  EXPECT_EQ(t.missing(k_count), 0) << rig.daemon_log();
  EXPECT_LE(t.duplicates(), 2 * 32);
}

}  // namespace
}  // namespace edgegw::test
