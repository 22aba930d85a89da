// [[uplink.rule]]: what check-config accepts, and the line and key it names when not.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"

using namespace edgegw;

namespace {

// Rules are appended from line 11 on.
constexpr const char* k_base = R"([gateway]
id = "gw"
[ingest]
url = "mqtt://127.0.0.1:1883"
topics = ["sensors/#", "$share/g/plant/+/state"]
[uplink]
url = "mqtt://127.0.0.1:1884"
topic_prefix = "site/"
qos = 1
[pool]
)";

std::vector<std::string> errors_of(const std::string& rules) {
  std::vector<std::string> errors;
  EXPECT_FALSE(config::parse(std::string(k_base) + rules, "gw.toml", errors)) << rules;
  return errors;
}

}  // namespace

TEST(ConfigRules, reads_rules_in_order_with_their_defaults) {
  std::vector<std::string> errors;
  auto cfg = config::parse(std::string(k_base) +
                               "[[uplink.rule]]\nfilter = \"sensors/temp/#\"\ntopic = \"t/{2}/{#}\"\nqos = 0\n"
                               "retain = \"strip\"\n"
                               "[[uplink.rule]]\nfilter = \"sensors/#\"\nstrip = \"sensors/\"\n"
                               "[[uplink.rule]]\nfilter = \"plant/+/state\"\nprefix = \"\"\n",
                           "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  ASSERT_EQ(cfg->uplink.rules.size(), 3u);
  const auto& r = cfg->uplink.rules;
  EXPECT_EQ(r[0].filter, "sensors/temp/#");
  EXPECT_EQ(r[0].action, config::UplinkRule::Action::topic);
  EXPECT_EQ(r[0].text, "t/{2}/{#}");
  EXPECT_EQ(r[0].qos, 0);
  EXPECT_TRUE(r[0].strip_retain);
  EXPECT_EQ(r[0].line, 11u);
  EXPECT_EQ(r[1].action, config::UplinkRule::Action::strip);
  EXPECT_EQ(r[1].qos, 1);  // uplink.qos
  EXPECT_FALSE(r[1].strip_retain);
  EXPECT_EQ(r[2].action, config::UplinkRule::Action::prefix);
  EXPECT_EQ(r[2].text, "");
}

TEST(ConfigRules, a_rule_an_earlier_one_covers_never_matches) {
  auto errors = errors_of(
      "[[uplink.rule]]\nfilter = \"sensors/#\"\nprefix = \"a/\"\n"
      "[[uplink.rule]]\nfilter = \"sensors/+/x\"\nprefix = \"b/\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "gw.toml:15: uplink.rule[2].filter: never matches: uplink.rule[1] (line 11), filter \"sensors/#\", comes "
            "first and takes every topic it matches");
}

TEST(ConfigRules, a_rule_no_ingest_filter_overlaps_never_matches) {
  auto errors = errors_of("[[uplink.rule]]\nfilter = \"other/#\"\nprefix = \"a/\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "gw.toml:12: uplink.rule[1].filter: never matches: no filter of ingest.topics takes a topic it matches");
  // A shared subscription's filter counts, without its $share/group/.
  std::vector<std::string> none;
  EXPECT_TRUE(config::parse(std::string(k_base) + "[[uplink.rule]]\nfilter = \"plant/x/state\"\nprefix = \"p/\"\n",
                            "gw.toml", none));
}

TEST(ConfigRules, a_strip_rule_passes_on_topics_it_would_leave_empty_so_it_shadows_only_longer_ones) {
  std::vector<std::string> errors;
  // "sensors" is not taken by the strip rule ("sensors/#" with "sensors/"): the second can match.
  EXPECT_TRUE(config::parse(std::string(k_base) + "[[uplink.rule]]\nfilter = \"sensors/#\"\nstrip = \"sensors/\"\n"
                                                  "[[uplink.rule]]\nfilter = \"sensors\"\nprefix = \"x/\"\n",
                            "gw.toml", errors))
      << (errors.empty() ? "" : errors[0]);
  errors = errors_of(
      "[[uplink.rule]]\nfilter = \"sensors/#\"\nstrip = \"sensors/\"\n"
      "[[uplink.rule]]\nfilter = \"sensors/a/+\"\nprefix = \"x/\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("gw.toml:15: uplink.rule[2].filter: never matches: uplink.rule[1]"), std::string::npos);
}

TEST(ConfigRules, rejects_bad_rules_with_line_key_and_reason) {
  const std::pair<std::string, std::string> cases[] = {
      {"filter = \"sensors/#\"\ntopic = \"t/{3}\"",
       "gw.toml:13: uplink.rule[1].topic: {3} is beyond the 1 level every topic of \"sensors/#\" has"},
      {"filter = \"sensors/+\"\ntopic = \"t/{#}\"",
       "gw.toml:13: uplink.rule[1].topic: {#} needs a filter that ends with '#'"},
      {"filter = \"sensors/#\"\ntopic = \"t/+/{1}\"",
       "gw.toml:13: uplink.rule[1].topic: cannot hold the wildcards '+' or '#' (the levels are {1}, {2}, ... and {#})"},
      {"filter = \"sensors/#\"\ntopic = \"{1}{#}\"",
       "gw.toml:13: uplink.rule[1].topic: needs some text besides {N} and {#} (a level may be empty)"},
      {"filter = \"sensors/#\"\ntopic = \"t/{x}\"",
       "gw.toml:13: uplink.rule[1].topic: {x} is not a level: write {1}, {2}, ... or {#}"},
      {"filter = \"sensors/#\"\nprefix = \"a/#\"",
       "gw.toml:13: uplink.rule[1].prefix: cannot hold the wildcards '+' or '#'"},
      {"filter = \"sensors/#\"\nstrip = \"sens/\"",
       "gw.toml:13: uplink.rule[1].strip: the topics of \"sensors/#\" do not all start with \"sens/\" (they start with "
       "\"sensors/\")"},
      {"filter = \"sensors/a\"\nstrip = \"sensors/a\"",
       "gw.toml:13: uplink.rule[1].strip: would leave nothing of the one topic \"sensors/a\" the filter matches"},
      {"filter = \"sensors/#\"", "gw.toml:11: uplink.rule[1]: needs exactly one of prefix, strip or topic"},
      {"filter = \"sensors/#\"\nprefix = \"a/\"\nstrip = \"sensors/\"",
       "gw.toml:11: uplink.rule[1]: needs exactly one of prefix, strip or topic"},
      {"filter = \"sensors/#/x\"\nprefix = \"a/\"",
       "gw.toml:12: uplink.rule[1].filter: '#' must be the last level: \"sensors/#/x\""},
      {"prefix = \"a/\"", "gw.toml:11: uplink.rule[1].filter: required"},
      {"filter = \"sensors/#\"\nprefix = \"a/\"\nqos = 2",
       "gw.toml:14: uplink.rule[1].qos: must be from 0 to 1, not 2"},
      {"filter = \"sensors/#\"\nprefix = \"a/\"\nretain = \"drop\"",
       "gw.toml:14: uplink.rule[1].retain: must be one of \"keep\", \"strip\", not \"drop\""},
      {"filter = \"sensors/#\"\nprefix = \"a/\"\nfiltre = \"x\"", "gw.toml:14: uplink.rule[1].filtre: unknown key"},
  };
  for (const auto& [rule, expected] : cases) {
    auto errors = errors_of("[[uplink.rule]]\n" + rule + "\n");
    ASSERT_EQ(errors.size(), 1u) << rule << "\n" << (errors.empty() ? "" : errors[0]);
    EXPECT_EQ(errors[0], expected) << rule;
  }
  auto errors = errors_of("[uplink.rule]\nfilter = \"sensors/#\"\n");
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0], "gw.toml:11: uplink.rule: must be an array of tables: [[uplink.rule]]");
}

TEST(ConfigRules, the_example_rules_of_the_shipped_example_are_valid_once_uncommented) {
  std::ifstream in(std::string(EDGEGW_SOURCE_DIR) + "/docs/edgegw.example.toml");
  std::string text, line;
  bool in_rules = false;
  while (std::getline(in, line)) {
    if (line.starts_with("# [[uplink.rule]]")) in_rules = true;
    if (in_rules && line.empty()) in_rules = false;
    text += (in_rules ? line.substr(2) : line) + "\n";
  }
  std::vector<std::string> errors;
  auto cfg = config::parse(text, "edgegw.example.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  ASSERT_EQ(cfg->uplink.rules.size(), 2u);
  EXPECT_EQ(cfg->uplink.rules[0].text, "devices/{2}/temp");
  EXPECT_EQ(cfg->uplink.rules[1].action, config::UplinkRule::Action::strip);
}
