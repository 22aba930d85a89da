#include "util/topic.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace edgegw::util;

TEST(Topic, a_filter_matches_as_mqtt_says) {
  EXPECT_TRUE(topic_matches("a/b", "a/b"));
  EXPECT_FALSE(topic_matches("a/b", "a/b/c"));
  EXPECT_FALSE(topic_matches("a/b/c", "a/b"));
  EXPECT_TRUE(topic_matches("a/+/c", "a/x/c"));
  EXPECT_TRUE(topic_matches("a/+/c", "a//c"));  // '+' matches an empty level
  EXPECT_FALSE(topic_matches("a/+", "a"));
  EXPECT_TRUE(topic_matches("a/#", "a"));  // '#' matches the parent level too
  EXPECT_TRUE(topic_matches("a/#", "a/b/c"));
  EXPECT_FALSE(topic_matches("a/#", "ab"));
  EXPECT_TRUE(topic_matches("#", "x/y"));
  EXPECT_TRUE(topic_matches("+/+", "/x"));
  EXPECT_FALSE(topic_matches("#", "$SYS/x"));  // a wildcard first never matches a '$' topic
  EXPECT_FALSE(topic_matches("+/x", "$SYS/x"));
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/x"));
}

TEST(Topic, covers_means_every_topic_of_the_second_is_matched_by_the_first) {
  EXPECT_TRUE(filter_covers("#", "a/b"));
  EXPECT_TRUE(filter_covers("a/#", "a/b/+"));
  EXPECT_TRUE(filter_covers("a/#", "a"));
  EXPECT_TRUE(filter_covers("a/#", "a/#"));
  EXPECT_TRUE(filter_covers("+/b", "a/b"));
  EXPECT_TRUE(filter_covers("+/b", "+/b"));
  EXPECT_FALSE(filter_covers("a/b", "+/b"));
  EXPECT_FALSE(filter_covers("a/+", "a/#"));
  EXPECT_FALSE(filter_covers("a/+", "a"));
  EXPECT_FALSE(filter_covers("a/b/#", "a/#"));
  EXPECT_FALSE(filter_covers("#", "$SYS/#"));
}

TEST(Topic, overlap_means_some_topic_matches_both) {
  EXPECT_TRUE(filters_overlap("a/+", "+/b"));
  EXPECT_TRUE(filters_overlap("a/b/#", "a/+"));  // "a/b"
  EXPECT_TRUE(filters_overlap("sensors/#", "sensors"));
  EXPECT_FALSE(filters_overlap("a/+", "a"));
  EXPECT_FALSE(filters_overlap("a/b", "a/c"));
  EXPECT_FALSE(filters_overlap("x/#", "y/#"));
  EXPECT_FALSE(filters_overlap("#", "$SYS/x"));
  EXPECT_EQ(subscription_filter("$share/g/a/#"), "a/#");
  EXPECT_EQ(subscription_filter("a/#"), "a/#");
}

TEST(Topic, fixed_and_literal_prefixes_of_a_filter) {
  EXPECT_EQ(filter_fixed_prefix("a/b/+/c"), "a/b/");
  EXPECT_EQ(filter_fixed_prefix("a/#"), "a");
  EXPECT_EQ(filter_fixed_prefix("#"), "");
  EXPECT_EQ(filter_fixed_prefix("a/b"), "a/b");
  EXPECT_EQ(filter_literal_prefix("a/#"), "a/");
  EXPECT_EQ(filter_literal_prefix("a/+/c"), "a/");
  EXPECT_EQ(filter_literal_prefix("#"), "");
  EXPECT_EQ(filter_literal_prefix("a/b"), "a/b");
}

TEST(Topic, levels_of_a_topic) {
  EXPECT_EQ(level_count("a/b/c"), 3u);
  EXPECT_EQ(level_count("/"), 2u);
  EXPECT_EQ(level("a/b/c", 2), "b");
  EXPECT_EQ(level("a//c", 2), "");
  EXPECT_EQ(level("a/b", 3), "");
  EXPECT_EQ(levels_from("a/b/c", 2), "b/c");
  EXPECT_EQ(levels_from("a", 2), "");
}

TEST(Topic, a_template_is_literals_levels_and_the_rest) {
  std::string seen, why;
  auto visit = [&](const TemplatePart& p) {
    if (p.kind == TemplatePart::literal) seen += "'" + std::string(p.text) + "'";
    else if (p.kind == TemplatePart::level) seen += "L" + std::to_string(p.index);
    else seen += "R";
  };
  EXPECT_TRUE(for_each_template_part("dev/{2}/x{10}/{#}", visit, &why));
  EXPECT_EQ(seen, "'dev/'L2'/x'L10'/'R");
  for (const char* bad : {"a/{0}", "a/{x}", "a/{", "a}/b", "{}", "{1234}"}) {
    why.clear();
    EXPECT_FALSE(for_each_template_part(bad, visit, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}
