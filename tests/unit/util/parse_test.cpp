#include <gtest/gtest.h>

#include "util/parse.hpp"

using edgegw::util::parse_bytes;
using edgegw::util::parse_duration;
using namespace std::chrono_literals;

TEST(ParseBytes, accepts_plain_numbers_and_binary_and_si_units) {
  EXPECT_EQ(parse_bytes("4096"), 4096u);
  EXPECT_EQ(parse_bytes("4KiB"), 4096u);
  EXPECT_EQ(parse_bytes("256MiB"), 256u << 20);
  EXPECT_EQ(parse_bytes("1GiB"), 1u << 30);
  EXPECT_EQ(parse_bytes("10kB"), 10000u);
  EXPECT_EQ(parse_bytes("5 MB"), 5000000u);
}

TEST(ParseBytes, rejects_unknown_units_missing_numbers_and_overflow) {
  EXPECT_FALSE(parse_bytes(""));
  EXPECT_FALSE(parse_bytes("MiB"));
  EXPECT_FALSE(parse_bytes("12 parsecs"));
  EXPECT_FALSE(parse_bytes("-4"));
  EXPECT_FALSE(parse_bytes("99999999999999999999"));
  EXPECT_FALSE(parse_bytes("17179869184GiB"));
}

TEST(ParseDuration, requires_a_unit) {
  EXPECT_EQ(parse_duration("10ms"), 10ms);
  EXPECT_EQ(parse_duration("250us"), 250us);
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  EXPECT_FALSE(parse_duration("10"));
  EXPECT_FALSE(parse_duration("10 fortnights"));
  EXPECT_FALSE(parse_duration("99999999999h"));
}
