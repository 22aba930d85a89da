// The uplink rules at send time: topic, QoS and retain per rule, the first match winning,
// and the default for a topic no rule matches.
#include "gateway/routing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.hpp"

using namespace edgegw;

namespace {

config::Config parse(const std::string& rules) {
  std::vector<std::string> errors;
  auto cfg = config::parse(
      "[gateway]\nid = \"gw\"\n[ingest]\nurl = \"mqtt://127.0.0.1:1883\"\ntopics = [\"#\"]\n"
      "[uplink]\nurl = \"mqtt://127.0.0.1:1884\"\ntopic_prefix = \"site/\"\nqos = 1\nmax_inflight = 4\n"
      "[pool]\nslots = 16\nslot_bytes = 256\n" +
          rules,
      "gw.toml", errors);
  EXPECT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  return cfg ? *cfg : config::Config{};
}

std::string upstream(const gateway::Route& r) { return std::string(r.prefix) + std::string(r.topic); }

}  // namespace

TEST(Routing, no_rules_is_the_prefix_and_qos_of_the_uplink) {
  config::Config cfg = parse("");
  gateway::Router router(cfg.uplink, cfg.pool.slot_bytes, 4);
  const gateway::Route r = router.route("a/b", true, 0);
  EXPECT_EQ(upstream(r), "site/a/b");
  EXPECT_EQ(r.qos, 1);
  EXPECT_TRUE(r.retain);
  EXPECT_FALSE(r.retain_stripped);
  EXPECT_EQ(router.max_growth(), 5u);
  EXPECT_EQ(router.max_qos(), 1);
}

TEST(Routing, the_first_matching_rule_applies_its_topic_qos_and_retain) {
  config::Config cfg = parse(
      "[[uplink.rule]]\nfilter = \"sensors/+/temp/#\"\ntopic = \"devices/{2}/t/{#}\"\nqos = 0\nretain = \"strip\"\n"
      "[[uplink.rule]]\nfilter = \"sensors/#\"\nstrip = \"sensors/\"\n"
      "[[uplink.rule]]\nfilter = \"+/status\"\nprefix = \"st/\"\n");
  gateway::Router router(cfg.uplink, cfg.pool.slot_bytes, 4);

  gateway::Route r = router.route("sensors/dev7/temp/room/1", true, 0);
  EXPECT_EQ(upstream(r), "devices/dev7/t/room/1");
  EXPECT_EQ(r.qos, 0);
  EXPECT_FALSE(r.retain);
  EXPECT_TRUE(r.retain_stripped);
  // '#' matching nothing: {#} is empty.
  EXPECT_EQ(upstream(router.route("sensors/dev8/temp", false, 1)), "devices/dev8/t/");

  r = router.route("sensors/dev7/humidity", true, 2);
  EXPECT_EQ(upstream(r), "dev7/humidity");
  EXPECT_EQ(r.prefix, "");
  EXPECT_EQ(r.qos, 1);
  EXPECT_TRUE(r.retain);
  EXPECT_FALSE(r.retain_stripped);

  EXPECT_EQ(upstream(router.route("pump/status", false, 3)), "st/pump/status");
  // No rule: the uplink's prefix. "sensors" and "sensors/" would be stripped to nothing:
  // the strip rule passes them on.
  EXPECT_EQ(upstream(router.route("other/x", false, 0)), "site/other/x");
  EXPECT_EQ(upstream(router.route("sensors", false, 0)), "site/sensors");
  EXPECT_EQ(upstream(router.route("sensors/", false, 0)), "site/sensors/");
}

TEST(Routing, each_entry_in_flight_keeps_its_composed_topic) {
  config::Config cfg = parse("[[uplink.rule]]\nfilter = \"+/+\"\ntopic = \"x/{2}/{1}\"\n");
  gateway::Router router(cfg.uplink, cfg.pool.slot_bytes, 2);
  const gateway::Route a = router.route("a/1", false, 0);
  const gateway::Route b = router.route("b/2", false, 1);
  EXPECT_EQ(upstream(a), "x/1/a");
  EXPECT_EQ(upstream(b), "x/2/b");
  const gateway::Route c = router.route("c/3", false, 2);  // entry 2 is entry 0's buffer again
  EXPECT_EQ(upstream(c), "x/3/c");
  EXPECT_EQ(upstream(b), "x/2/b");
  // A template's topic may be its 3 bytes of text plus two levels of a slot each.
  EXPECT_EQ(router.max_growth(), 3u + 2 * 256);
  // The longest topic a slot holds fits.
  const std::string level(250, 'z');
  EXPECT_EQ(upstream(router.route(level + "/" + level.substr(0, 4), false, 0)), "x/zzzz/" + level);
}

TEST(Routing, the_upstream_topic_of_the_selftest_probe_follows_the_rules) {
  config::Config cfg = parse("[[uplink.rule]]\nfilter = \"sensors/#\"\nprefix = \"p/\"\n");
  EXPECT_EQ(gateway::upstream_topic(cfg, "sensors/edgegw-selftest"), "p/sensors/edgegw-selftest");
  EXPECT_EQ(gateway::upstream_topic(cfg, "x/y"), "site/x/y");
}

TEST(Routing, a_template_longer_than_mqtt_allows_is_too_long_not_cut) {
  config::Config cfg = parse("[[uplink.rule]]\nfilter = \"+\"\ntopic = \"x{1}{1}\"\n");
  gateway::Router router(cfg.uplink, 1u << 20, 1);  // slots of 1 MiB: a level may be longer than MQTT allows
  EXPECT_EQ(router.max_growth(), 65535u);
  const std::string topic(40000, 'a');
  gateway::Route r = router.route(topic, false, 0);
  EXPECT_TRUE(r.too_long);
  r = router.route(topic.substr(0, 30000), false, 0);
  EXPECT_FALSE(r.too_long);
  EXPECT_EQ(r.topic.size(), 60001u);
}
