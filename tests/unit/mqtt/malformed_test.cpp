// Malformed input: every decoder refuses it with the right reason code and never reads
// past the bytes it was given (ASan would report an overread).
#include "mqtt/codec/packets.hpp"
#include "unit/mqtt/codec_support.hpp"

using namespace edgegw::mqtt;
using edgegw::test::bytes_of;
using edgegw::test::ByteVec;
using edgegw::test::cat;

namespace {

// Decodes a whole packet as a client would; returns the reason (header errors: malformed).
Reason decode_any(const ByteVec& packet, Version v) {
  FixedHeader h;
  if (decode_fixed_header(packet, h) != HeaderStatus::ok) return Reason::malformed_packet;
  if (h.size + h.remaining != packet.size()) return Reason::malformed_packet;
  Bytes body = Bytes(packet).subspan(h.size);
  switch (h.type) {
    case PacketType::connect: {
      Connect c;
      return decode(body, c);
    }
    case PacketType::connack: {
      Connack c;
      return decode(body, v, c);
    }
    case PacketType::publish: {
      Publish p;
      return decode(h, body, v, p);
    }
    case PacketType::puback:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp: {
      Ack a;
      return decode(h, body, v, a);
    }
    case PacketType::subscribe: {
      Subscribe s;
      return decode(body, v, s);
    }
    case PacketType::unsubscribe: {
      Unsubscribe u;
      return decode(body, v, u);
    }
    case PacketType::suback:
    case PacketType::unsuback: {
      SubAck s;
      return decode(h, body, v, s);
    }
    case PacketType::disconnect: {
      Disconnect d;
      return decode(body, v, d);
    }
    default: return body.empty() ? Reason::success : Reason::malformed_packet;
  }
}

}  // namespace

TEST(Malformed, remaining_length_over_four_bytes_or_not_minimal) {
  FixedHeader h;
  EXPECT_EQ(decode_fixed_header(bytes_of({0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}), h), HeaderStatus::malformed);
  EXPECT_EQ(decode_fixed_header(bytes_of({0x30, 0x80, 0x00}), h), HeaderStatus::malformed);
  EXPECT_EQ(decode_fixed_header(bytes_of({0x30, 0xff, 0xff}), h), HeaderStatus::need_more);
  EXPECT_EQ(decode_fixed_header(bytes_of({0x30}), h), HeaderStatus::need_more);
}

TEST(Malformed, fixed_header_flags_each_type_requires) {
  FixedHeader h;
  EXPECT_EQ(decode_fixed_header(bytes_of({0x60, 0x02}), h), HeaderStatus::malformed);  // PUBREL flags 0
  EXPECT_EQ(decode_fixed_header(bytes_of({0x80, 0x02}), h), HeaderStatus::malformed);  // SUBSCRIBE flags 0
  EXPECT_EQ(decode_fixed_header(bytes_of({0x36, 0x02}), h), HeaderStatus::malformed);  // PUBLISH QoS 3
  EXPECT_EQ(decode_fixed_header(bytes_of({0x38, 0x02}), h), HeaderStatus::malformed);  // DUP on QoS 0
  EXPECT_EQ(decode_fixed_header(bytes_of({0x41, 0x02}), h), HeaderStatus::malformed);  // PUBACK flags 1
  EXPECT_EQ(decode_fixed_header(bytes_of({0x00, 0x00}), h), HeaderStatus::malformed);  // type 0
}

TEST(Malformed, strings_that_are_not_mqtt_utf8) {
  EXPECT_FALSE(valid_mqtt_utf8(std::string_view("\xc0\x80", 2)));          // overlong NUL
  EXPECT_FALSE(valid_mqtt_utf8(std::string_view("\xed\xa0\x80", 3)));      // surrogate
  EXPECT_FALSE(valid_mqtt_utf8(std::string_view("a\0b", 3)));              // U+0000
  EXPECT_FALSE(valid_mqtt_utf8(std::string_view("\xf4\x90\x80\x80", 4)));  // above U+10FFFF
  EXPECT_FALSE(valid_mqtt_utf8(std::string_view("\xe2\x82", 2)));          // truncated
  EXPECT_TRUE(valid_mqtt_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  ByteVec bad_topic = bytes_of({0x30, 0x04, 0x00, 0x02, 0xc0, 0x80});
  EXPECT_EQ(decode_any(bad_topic, Version::v311), Reason::malformed_packet);
}

TEST(Malformed, publish_rules) {
  EXPECT_EQ(decode_any(cat({bytes_of({0x30, 0x03, 0x00, 0x01}), bytes_of("#")}), Version::v311),
            Reason::protocol_error);
  EXPECT_EQ(decode_any(bytes_of({0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00}), Version::v311), Reason::malformed_packet);
  EXPECT_EQ(decode_any(bytes_of({0x30, 0x02, 0x00, 0x00}), Version::v311), Reason::protocol_error);  // empty topic
  EXPECT_EQ(decode_any(bytes_of({0x30, 0x05, 0x00, 0x01, 'a', 0x05, 0x01}), Version::v5), Reason::malformed_packet);
}

TEST(Malformed, connack_and_connect_rules) {
  EXPECT_EQ(decode_any(bytes_of({0x20, 0x02, 0x00, 0x06}), Version::v311), Reason::malformed_packet);  // code 6
  EXPECT_EQ(decode_any(bytes_of({0x20, 0x02, 0x02, 0x00}), Version::v311), Reason::malformed_packet);  // flag bit 1
  EXPECT_EQ(decode_any(bytes_of({0x20, 0x03, 0x01, 0x87, 0x00}), Version::v5),
            Reason::protocol_error);  // present+refused
  ByteVec connect =
      cat({bytes_of({0x10, 0x0c, 0x00, 0x04}), bytes_of("MQTT"), bytes_of({0x04, 0x03, 0x00, 0x3c, 0x00, 0x00})});
  EXPECT_EQ(decode_any(connect, Version::v311), Reason::malformed_packet);  // reserved flag
  ByteVec v6 =
      cat({bytes_of({0x10, 0x0c, 0x00, 0x04}), bytes_of("MQTT"), bytes_of({0x06, 0x02, 0x00, 0x3c, 0x00, 0x00})});
  EXPECT_EQ(decode_any(v6, Version::v311), Reason::unsupported_protocol_version);
}

TEST(Malformed, subscribe_family_rules) {
  EXPECT_EQ(decode_any(bytes_of({0x82, 0x02, 0x00, 0x01}), Version::v311), Reason::protocol_error);  // no filters
  EXPECT_EQ(decode_any(bytes_of({0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03}), Version::v311),
            Reason::malformed_packet);
  EXPECT_EQ(decode_any(bytes_of({0x90, 0x03, 0x00, 0x01, 0x03}), Version::v311), Reason::malformed_packet);  // code 3
  EXPECT_EQ(decode_any(bytes_of({0x90, 0x02, 0x00, 0x01}), Version::v311), Reason::protocol_error);          // no codes
  EXPECT_EQ(decode_any(bytes_of({0x40, 0x02, 0x00, 0x00}), Version::v311), Reason::malformed_packet);  // packet id 0
}

TEST(Malformed, every_truncation_and_extension_of_valid_packets_is_refused_without_overread) {
  UserProperty user[] = {{"gw", "gw-1"}};
  Subscription subs[] = {{"a/#", 1}, {"b", 2}};
  std::vector<ByteVec> valid;
  for (Version v : {Version::v311, Version::v5}) {
    Publish p;
    p.topic = "sensors/t";
    p.qos = 1;
    p.packet_id = 7;
    p.props.user = user;
    p.payload = Bytes(reinterpret_cast<const std::uint8_t*>("22.5"), 4);
    valid.push_back(edgegw::test::encoded(p, v));
    Subscribe s;
    s.packet_id = 2;
    s.subscriptions = subs;
    valid.push_back(edgegw::test::encoded(s, v));
    Connack c;
    c.props.reason_string = "ok";
    c.props.mark(PropertyId::reason_string);
    valid.push_back(edgegw::test::encoded(c, v));
    valid.push_back(edgegw::test::encoded(Ack{PacketType::puback, 9}, v));
  }
  for (const ByteVec& packet : valid) {
    // Shorter Remaining Length with the bytes cut to match: each must be refused or be
    // a shorter valid packet; none may read beyond its body.
    for (std::size_t cut = 1; cut < packet.size() - 1; ++cut) {
      ByteVec shorter(packet.begin(), packet.end() - static_cast<std::ptrdiff_t>(cut));
      FixedHeader h;
      ASSERT_EQ(decode_fixed_header(packet, h), HeaderStatus::ok);
      if (h.size + h.remaining - cut < h.size) continue;
      shorter[1] = static_cast<std::uint8_t>(h.remaining - cut);  // all these fit one length byte
      ByteVec heap_copy(shorter);                                 // exact-size heap block so ASan sees any overread
      (void)decode_any(heap_copy, Version::v5);
      (void)decode_any(heap_copy, Version::v311);
    }
  }
  SUCCEED();
}
