// Message age with real brokers (docs/SPOOL.md, "Message age"): a sensor's MQTT 5 Message
// Expiry Interval through an upstream outage. The clock rules themselves (wall clock jumps,
// earlier boots) are shown on a manual clock in tests/unit/gateway/pipeline_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>

#include "support/gateway_rig.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

// A sensor publishes with mosquitto_pub over MQTT 5; expiry_s < 0: no expiry interval.
void publish_v5(const Broker& b, const std::string& topic, const std::string& payload, long expiry_s) {
  std::vector<std::string> args = {"mosquitto_pub", "-V", "mqttv5", "-t", topic, "-m", payload, "-q", "1"};
  if (expiry_s >= 0) args.insert(args.end(), {"-D", "publish", "message-expiry-interval", std::to_string(expiry_s)});
  std::string out;
  ASSERT_EQ(run(with_broker(b, args), &out), 0) << out;
}

// The line "EXPIRY|PAYLOAD" a subscriber wrote for `payload` ("" if none; EXPIRY is empty
// when the message had no interval).
std::string line_for(const std::string& text, const std::string& payload) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const std::size_t bar = line.find('|');
    if (bar != std::string::npos && line.substr(bar + 1) == payload) return line;
  }
  return "";
}

// Three MQTT 5 messages while the upstream broker is down: one with a 2 s expiry interval,
// one with 600 s, one with none. After more than 2 s the broker is back: the first is
// dropped (counted, logged), the second arrives with its interval less the whole seconds
// it spent in edgegw, the third with none.
TEST(MessageAge, AnExpiredMessageIsDroppedAndALiveOneGoesUpstreamWithItsIntervalReduced) {
  RigOptions o;
  o.ingest = "mqtt_version = \"5\"";
  o.uplink = "max_inflight = 32\nkeepalive = \"5s\"\nmqtt_version = \"5\"";
  o.spool = "sync = \"batch\"\nmax_age = \"1h\"";
  Rig rig(o);
  // A persistent MQTT 5 subscriber upstream that prints each message's expiry interval: it
  // gets what was sent while it was away (the broker restarts with its session).
  const std::string out = rig.dir().file("expiry.txt");
  Process sub(with_broker(rig.upstream(), {"mosquitto_sub", "-V", "mqttv5", "-q", "1", "-c", "-i", "age-verifier", "-x",
                                           "86400", "-t", "up/#", "-F", "%E|%p"}),
              Redirects{.stdout_file = out});
  for (int i = 0; i < 500 && line_for(read_file(out), "probe").empty(); ++i) {
    publish(rig.upstream(), "up/probe", "probe", 1);
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(line_for(read_file(out), "probe").empty()) << "the subscriber never subscribed";

  rig.upstream().stop();
  rig.start_daemon();
  publish_v5(rig.local(), "sensors/a", "short", 2);
  publish_v5(rig.local(), "sensors/a", "long", 600);
  publish_v5(rig.local(), "sensors/a", "none", -1);
  ASSERT_GE(rig.wait_for_counter("durable", 3, 30s), 3) << rig.daemon_log();
  const auto published = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(3500ms);  // the 2 s interval passes, by 3 whole seconds at least
  rig.upstream().start();

  for (int i = 0; i < 300 && (line_for(read_file(out), "long").empty() || line_for(read_file(out), "none").empty());
       ++i) {
    std::this_thread::sleep_for(100ms);
  }
  const long held_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - published).count();
  const std::string got = read_file(out);
  const std::string long_line = line_for(got, "long");
  ASSERT_FALSE(long_line.empty()) << got << rig.daemon_log();
  const long interval = std::stol(long_line);
  std::printf("[ measured ] held %ld s: the 600 s interval went upstream as %ld\n", held_s, interval);
  EXPECT_LE(interval, 600 - 3) << "sent on with what the sensor set, not less the time spent: " << long_line;
  EXPECT_GE(interval, 600 - held_s - 2)
      << long_line;  // the time it was held, and no more (a second's rounding each way)
  EXPECT_EQ(line_for(got, "none"), "|none") << "no interval where the sensor set none";
  EXPECT_EQ(line_for(got, "short"), "") << "an expired message went upstream: " << got;
  EXPECT_EQ(rig.wait_for_counter("dropped_expired", 1, 10s), 1) << rig.status_json();
  EXPECT_EQ(rig.status_counter("dropped_expiry_interval"), 1) << rig.status_json();
  EXPECT_EQ(rig.wait_for_counter("forwarded", 3, 10s), 3) << "the dropped one is done with too: " << rig.status_json();
  EXPECT_NE(rig.daemon_log().find("expired"), std::string::npos) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0);
  sub.kill();
}

}  // namespace
}  // namespace edgegw::test
