// [downlink] in the config: its rules, its defaults, and the loops check-config refuses.
#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace edgegw;

namespace {

constexpr const char* k_base = R"([gateway]
id = "gw-1"
[ingest]
url = "mqtt://127.0.0.1:1883"
topics = ["sensors/#", "door/+"]
[uplink]
url = "mqtt://broker.example.com:1883"
topic_prefix = "site-a/"
)";

std::optional<config::Config> parse(const std::string& downlink, std::vector<std::string>& errors) {
  return config::parse(std::string(k_base) + downlink, "gw.toml", errors);
}

std::string joined(const std::vector<std::string>& errors) {
  std::string all;
  for (const std::string& e : errors) all += e + "\n";
  return all;
}

}  // namespace

TEST(DownlinkConfig, rules_map_an_upstream_filter_to_a_local_prefix) {
  std::vector<std::string> errors;
  auto cfg = parse(R"(
[downlink]
slots = 16
session_expiry = "2h"
[[downlink.rule]]
filter = "cmd/gw-1/#"
strip = "cmd/gw-1/"
prefix = "commands/"
[[downlink.rule]]
filter = "fleet/broadcast"
prefix = "commands/"
qos = 0
)",
                   errors);
  ASSERT_TRUE(cfg) << joined(errors);
  ASSERT_EQ(cfg->downlink.rules.size(), 2u);
  EXPECT_EQ(cfg->downlink.slots, 16u);
  EXPECT_EQ(cfg->downlink.session_expiry, std::chrono::hours(2));
  EXPECT_EQ(cfg->downlink.rules[0].local_filter, "commands/#");
  EXPECT_EQ(cfg->downlink.rules[0].qos, 1);
  EXPECT_EQ(cfg->downlink.rules[1].local_filter, "commands/fleet/broadcast");
  EXPECT_EQ(cfg->downlink.rules[1].qos, 0);
}

TEST(DownlinkConfig, none_by_default_and_defaults_when_given) {
  std::vector<std::string> errors;
  auto none = parse("", errors);
  ASSERT_TRUE(none) << joined(errors);
  EXPECT_TRUE(none->downlink.rules.empty());
  auto one = parse("[[downlink.rule]]\nfilter = \"cmd/#\"\n", errors);
  ASSERT_TRUE(one) << joined(errors);
  EXPECT_EQ(one->downlink.slots, 32u);
  EXPECT_EQ(one->downlink.session_expiry, std::chrono::hours(1));
  EXPECT_EQ(one->downlink.rules[0].local_filter, "cmd/#");
}

// What comes down would be taken by an ingest filter and sent back up: refused, naming
// the rule, its line and the ingest filter.
TEST(DownlinkConfig, check_config_refuses_local_topics_that_ingest_takes_back_up) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse("\n[[downlink.rule]]\nfilter = \"cmd/#\"\nstrip = \"cmd/\"\nprefix = \"sensors/cmd/\"\n", errors));
  ASSERT_EQ(errors.size(), 1u) << joined(errors);
  EXPECT_NE(errors[0].find("gw.toml:11: downlink.rule[1].filter"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("\"sensors/cmd/#\" overlap ingest.topics \"sensors/#\""), std::string::npos) << errors[0];
  errors.clear();
  // a single level wildcard of ingest ("door/+") meets a literal local topic
  EXPECT_FALSE(parse("[[downlink.rule]]\nfilter = \"x/door/open\"\nstrip = \"x/\"\n", errors));
  EXPECT_NE(joined(errors).find("overlap ingest.topics \"door/+\""), std::string::npos) << joined(errors);
}

// What the uplink publishes (topic_prefix + ingest filter) would come back down.
TEST(DownlinkConfig, check_config_refuses_a_filter_over_what_the_uplink_publishes) {
  std::vector<std::string> errors;
  EXPECT_FALSE(parse("[[downlink.rule]]\nfilter = \"site-a/+/x\"\nprefix = \"commands/\"\n", errors));
  EXPECT_NE(joined(errors).find("overlaps \"site-a/sensors/#\", where the uplink publishes"), std::string::npos)
      << joined(errors);
}

// With uplink rules, what they publish on would come back down too (a template's levels
// as '+'), and a filter that takes none of it passes.
TEST(DownlinkConfig, check_config_refuses_a_filter_over_what_an_uplink_rule_publishes) {
  const std::string rule = "[[uplink.rule]]\nfilter = \"door/+\"\ntopic = \"devices/{2}/state\"\n";
  std::vector<std::string> errors;
  EXPECT_FALSE(parse(rule + "[[downlink.rule]]\nfilter = \"devices/front/state\"\nprefix = \"cmd/\"\n", errors));
  EXPECT_NE(joined(errors).find("overlaps \"devices/+/state\", where the uplink publishes (uplink.rule[1])"),
            std::string::npos)
      << joined(errors);
  errors.clear();
  EXPECT_TRUE(parse(rule + "[[downlink.rule]]\nfilter = \"devices/front/set\"\nprefix = \"cmd/\"\n", errors))
      << joined(errors);
}

TEST(DownlinkConfig, rejects_bad_rules_with_reasons) {
  const std::pair<const char*, const char*> cases[] = {
      {"[[downlink.rule]]\nprefix = \"a/\"\n", "downlink.rule[1].filter: required"},
      {"[[downlink.rule]]\nfilter = \"cmd/#/x\"\n", "'#' must be the last level"},
      {"[[downlink.rule]]\nfilter = \"cmd/#\"\nstrip = \"other/\"\n", "downlink.rule[1].strip: must be the start"},
      {"[[downlink.rule]]\nfilter = \"cmd/#\"\nprefix = \"a/+/\"\n", "downlink.rule[1].prefix: cannot hold"},
      {"[[downlink.rule]]\nfilter = \"cmd/x\"\nstrip = \"cmd/x\"\n", "maps to an empty local topic"},
      {"[[downlink.rule]]\nfilter = \"cmd/#\"\nqos = 2\n", "downlink.rule[1].qos: must be from 0 to 1"},
      {"[[downlink.rule]]\nfilter = \"cmd/#\"\nto = \"x\"\n", "downlink.rule[1].to: unknown key"},
      {"[downlink]\nslots = 0\n[[downlink.rule]]\nfilter = \"cmd/#\"\n", "downlink.slots: must be from 1"},
      {"[downlink]\nsession_expiry = \"1s\"\n[[downlink.rule]]\nfilter = \"cmd/#\"\n",
       "downlink.session_expiry: out of range"},
      {"[downlink]\nslots = 8\n", "downlink.rule: required"},
  };
  for (const auto& [text, expected] : cases) {
    std::vector<std::string> errors;
    EXPECT_FALSE(parse(text, errors)) << text;
    EXPECT_NE(joined(errors).find(expected), std::string::npos) << text << "\n" << joined(errors);
  }
}
