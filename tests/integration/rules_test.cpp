// [[uplink.rule]] end to end: local mosquitto -> edgegw run -> upstream mosquitto, with
// two rules mapping topics differently, a retain flag stripped, QoS per rule, and a backlog
// sent under the rules of the restart that sends it (they apply at send time).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/gateway_rig.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

// What the upstream subscriber saw, "topic|qos|payload" lines, once it holds every line of
// `expected` (or after `timeout`).
std::string wait_for_lines(const std::string& file, const std::vector<std::string>& expected,
                           std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const std::string text = read_file(file);
    bool all = true;
    for (const std::string& line : expected) all = all && text.find(line + "\n") != std::string::npos;
    if (all || std::chrono::steady_clock::now() > deadline) return text;
    std::this_thread::sleep_for(50ms);
  }
}

// The retained messages the upstream broker holds under `filter`, as sorted "topic payload"
// lines (what a new subscriber gets at once; it gives up after 1 s).
std::string retained_upstream(Broker& upstream, const std::string& filter) {
  std::string out;
  run(with_broker(upstream, {"mosquitto_sub", "-t", filter, "-W", "1", "--retained-only", "-F", "%t %p"}), &out);
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line != "Timed out") lines.push_back(line + "\n");  // mosquitto_sub's, at -W
  std::sort(lines.begin(), lines.end());
  std::string sorted;
  for (const std::string& line : lines) sorted += line;
  return sorted;
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(UplinkRules, MapTopicsPerRuleStripRetainSetQosAndApplyToTheBacklogAfterARestart) {
  const std::string temp_rule =
      "[[uplink.rule]]\nfilter = \"sensors/temp/+\"\ntopic = \"t/{3}/temperature\"\nqos = 0\nretain = \"strip\"\n";
  const std::string hum_rule = "[[uplink.rule]]\nfilter = \"sensors/hum/#\"\nstrip = \"sensors/\"\n";
  Rig rig(RigOptions{.extra = temp_rule + hum_rule});
  // Upstream: every topic, with the QoS each message came with (a QoS 1 subscription).
  const std::string seen = rig.dir().file("seen.txt");
  Process sub(with_broker(rig.upstream(), {"mosquitto_sub", "-V", "mqttv5", "-q", "1", "-c", "-i", "rules-sub", "-x",
                                           "86400", "-t", "#", "-F", "%t|%q|%p"}),
              Redirects{.stdout_file = seen});
  for (int i = 0; i < 500 && read_file(seen).find("probe") == std::string::npos; ++i) {
    publish(rig.upstream(), "probe", "probe", 1);
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(read_file(seen).find("probe"), std::string::npos);
  rig.start_daemon();

  // Retained, QoS 1, from the sensors: each goes by its rule, or the default (up/ + topic).
  publish(rig.local(), "sensors/temp/kitchen", "21", 1, true);
  publish(rig.local(), "sensors/hum/kitchen", "40", 1, true);
  publish(rig.local(), "sensors/misc", "7", 1, true);
  std::string text =
      wait_for_lines(seen, {"t/kitchen/temperature|0|21", "hum/kitchen|1|40", "up/sensors/misc|1|7"}, 20s);
  EXPECT_NE(text.find("t/kitchen/temperature|0|21\n"), std::string::npos) << text;  // rule 1: template, QoS 0
  EXPECT_NE(text.find("hum/kitchen|1|40\n"), std::string::npos) << text;            // rule 2: strip, uplink.qos
  EXPECT_NE(text.find("up/sensors/misc|1|7\n"), std::string::npos) << text;         // no rule: the prefix
  EXPECT_EQ(text.find("sensors/temp"), std::string::npos) << text;
  // Rule 1 strips the retain flag; the others keep it.
  EXPECT_EQ(retained_upstream(rig.upstream(), "#"), "hum/kitchen 40\nup/sensors/misc 7\n");
  EXPECT_EQ(rig.status_counter("retain_stripped_by_rule"), 1);
  EXPECT_NE(rig.daemon_log().find("retain = \"strip\""), std::string::npos) << rig.daemon_log();

  // A backlog spooled under these rules while the upstream broker is down...
  rig.upstream().stop();
  publish(rig.local(), "sensors/temp/cellar", "12", 1);
  publish(rig.local(), "sensors/hum/cellar", "55", 1);
  ASSERT_EQ(rig.wait_for_counter("durable", 5, 20s), 5);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  // ... goes under the rules of the restart: the spool keeps the local topic.
  std::string config = read_file(rig.config_path());
  config = replace(config, "topic = \"t/{3}/temperature\"\nqos = 0", "topic = \"temperature/{3}\"\nqos = 1");
  config = replace(config, "strip = \"sensors/\"", "prefix = \"h/\"");
  std::ofstream(rig.config_path()) << config;
  rig.upstream().start();
  rig.start_daemon();
  text = wait_for_lines(seen, {"temperature/cellar|1|12", "h/sensors/hum/cellar|1|55"}, 20s);
  EXPECT_NE(text.find("temperature/cellar|1|12\n"), std::string::npos) << text << rig.daemon_log();
  EXPECT_NE(text.find("h/sensors/hum/cellar|1|55\n"), std::string::npos) << text << rig.daemon_log();
  EXPECT_EQ(text.find("cellar|0|"), std::string::npos) << text;  // not under the old rules
  EXPECT_EQ(text.find("\nhum/cellar"), std::string::npos) << text;
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stat("replayed"), 2) << rig.daemon_log();
  sub.kill();
}

}  // namespace
}  // namespace edgegw::test
