#include "gateway/refusals.hpp"

#include <gtest/gtest.h>

#include <string>

namespace edgegw::gateway {
namespace {

using mqtt::Reason;

TEST(Refusals, only_reasons_about_the_message_itself_drop_it) {
  for (Reason r : {Reason::topic_name_invalid, Reason::payload_format_invalid, Reason::packet_too_large,
                   Reason::malformed_packet, Reason::protocol_error}) {
    EXPECT_TRUE(Refusals::for_good(r)) << mqtt::reason_name(r);
  }
  // An ACL being fixed, a quota refilling, a busy or confused broker: sent again.
  for (Reason r : {Reason::not_authorized, Reason::quota_exceeded, Reason::unspecified_error,
                   Reason::implementation_specific_error, Reason::packet_id_in_use}) {
    EXPECT_FALSE(Refusals::for_good(r)) << mqtt::reason_name(r);
  }
}

TEST(Refusals, are_counted_by_reason_with_the_rest_as_other) {
  Refusals r;
  r.count(Reason::not_authorized);
  r.count(Reason::not_authorized);
  r.count(Reason::quota_exceeded);
  r.count(Reason::packet_too_large);  // over the broker's Maximum Packet Size
  r.count(Reason::server_busy);       // not a PUBACK reason
  std::string seen;
  for (const auto& c : r.counts()) {
    if (c.count) seen += std::string(c.name) + "=" + std::to_string(c.count) + " ";
  }
  EXPECT_EQ(seen, "not authorized=2 quota exceeded=1 packet too large=1 other=1 ");
}

TEST(Refusals, are_sent_again_after_a_delay_that_doubles_to_a_minute_and_starts_over_once_one_passes) {
  Refusals r;
  const auto s = [](event::Duration d) { return std::chrono::duration_cast<std::chrono::seconds>(d).count(); };
  EXPECT_EQ(s(r.next_delay()), 1);
  EXPECT_EQ(s(r.next_delay()), 2);
  EXPECT_EQ(s(r.next_delay()), 4);
  for (int i = 0; i < 10; ++i) r.next_delay();
  EXPECT_EQ(s(r.next_delay()), 60);
  r.passed();
  EXPECT_EQ(s(r.next_delay()), 1);
}

}  // namespace
}  // namespace edgegw::gateway
