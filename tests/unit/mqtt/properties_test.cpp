#include "mqtt/codec/packets.hpp"
#include "unit/mqtt/codec_support.hpp"

using namespace edgegw::mqtt;
using edgegw::test::bytes_of;
using edgegw::test::ByteVec;

namespace {

Reason decode_block(const ByteVec& block, unsigned packet, Properties& out) {
  Reader in(block);
  return decode_properties(in, packet, out);
}

constexpr unsigned k_connack = static_cast<unsigned>(PacketType::connack);
constexpr unsigned k_publish = static_cast<unsigned>(PacketType::publish);

}  // namespace

TEST(Properties, every_type_round_trips) {
  UserProperty user[] = {{"k1", "v1"}, {"k2", "v2"}};
  Properties p;
  p.payload_format = 1;
  p.mark(PropertyId::payload_format);
  p.message_expiry = 70000;
  p.mark(PropertyId::message_expiry);
  p.content_type = "text/plain";
  p.mark(PropertyId::content_type);
  p.correlation_data = Bytes(reinterpret_cast<const std::uint8_t*>("\x01\x02"), 2);
  p.mark(PropertyId::correlation_data);
  p.subscription_id = 300;
  p.mark(PropertyId::subscription_id);
  p.user = user;
  std::uint8_t buf[256];
  Writer w(buf);
  encode_properties(w, p);
  ASSERT_TRUE(w.ok());
  Properties back;
  Reader in(Bytes(buf, w.size()));
  ASSERT_EQ(decode_properties(in, k_publish, back), Reason::success);
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(back.payload_format, 1);
  EXPECT_EQ(back.message_expiry, 70000u);
  EXPECT_EQ(back.content_type, "text/plain");
  EXPECT_EQ(back.correlation_data.size(), 2u);
  EXPECT_EQ(back.subscription_id, 300u);
  std::vector<std::string> seen;
  for_each_user_property(
      back, [&](const UserProperty& u) { seen.push_back(std::string(u.key) + "=" + std::string(u.value)); });
  EXPECT_EQ(seen, (std::vector<std::string>{"k1=v1", "k2=v2"}));
}

TEST(Properties, a_repeated_property_is_a_protocol_error_except_user_properties) {
  Properties p;
  EXPECT_EQ(decode_block(bytes_of({0x06, 0x21, 0x00, 0x01, 0x21, 0x00, 0x02}), k_connack, p), Reason::protocol_error);
  Properties q;
  EXPECT_EQ(
      decode_block(bytes_of({0x0a, 0x26, 0x00, 0x01, 'a', 0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00}), k_connack, q),
      Reason::malformed_packet);  // length 10 but 11 bytes of properties follow: cut short
  Properties r;
  EXPECT_EQ(
      decode_block(bytes_of({0x0b, 0x26, 0x00, 0x01, 'a', 0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00}), k_connack, r),
      Reason::success);
}

TEST(Properties, a_property_in_the_wrong_packet_is_a_protocol_error) {
  Properties p;
  EXPECT_EQ(decode_block(bytes_of({0x03, 0x23, 0x00, 0x01}), k_connack, p), Reason::protocol_error);  // topic alias
  Properties q;
  EXPECT_EQ(decode_block(bytes_of({0x02, 0x24, 0x01}), k_publish, q), Reason::protocol_error);  // maximum QoS
}

TEST(Properties, forbidden_values_are_protocol_errors) {
  Properties p;
  EXPECT_EQ(decode_block(bytes_of({0x03, 0x21, 0x00, 0x00}), k_connack, p), Reason::protocol_error);  // receive max 0
  Properties q;
  EXPECT_EQ(decode_block(bytes_of({0x02, 0x24, 0x02}), k_connack, q), Reason::protocol_error);  // maximum QoS 2
  Properties r;
  EXPECT_EQ(decode_block(bytes_of({0x05, 0x27, 0x00, 0x00, 0x00, 0x00}), k_connack, r), Reason::protocol_error);
}

TEST(Properties, unknown_ids_and_bad_lengths_are_malformed) {
  Properties p;
  EXPECT_EQ(decode_block(bytes_of({0x02, 0x7f, 0x00}), k_connack, p), Reason::malformed_packet);
  Properties q;
  EXPECT_EQ(decode_block(bytes_of({0x05, 0x11, 0x00}), k_connack, q), Reason::malformed_packet);
  Properties r;
  EXPECT_EQ(decode_block(bytes_of({0x03, 0x11, 0x00, 0x00}), k_connack, r), Reason::malformed_packet);
  Properties s;
  EXPECT_EQ(decode_block(bytes_of({0x04, 0x1f, 0x00, 0x01, 0xff}), k_connack, s),
            Reason::malformed_packet);  // bad UTF-8
}
