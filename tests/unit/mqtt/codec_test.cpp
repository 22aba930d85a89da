// Byte-exact vectors laid out from the MQTT 3.1.1 and 5.0 specifications, and round trips.
#include "mqtt/codec/packets.hpp"
#include "unit/mqtt/codec_support.hpp"

using namespace edgegw;
using namespace edgegw::mqtt;
using test::bytes_of;
using test::ByteVec;
using test::cat;
using test::encoded;

TEST(Codec, connect_v311_matches_the_spec_layout) {
  Connect c;
  c.version = Version::v311;
  c.clean_start = true;
  c.keepalive = 60;
  c.client_id = "gw";
  EXPECT_EQ(encoded(c), cat({bytes_of({0x10, 0x0e, 0x00, 0x04}), bytes_of("MQTT"),
                             bytes_of({0x04, 0x02, 0x00, 0x3c, 0x00, 0x02}), bytes_of("gw")}));
}

TEST(Codec, connect_v5_carries_session_expiry_and_receive_maximum) {
  Connect c;
  c.clean_start = false;
  c.keepalive = 30;
  c.client_id = "gw";
  c.props.session_expiry = 3600;
  c.props.mark(PropertyId::session_expiry);
  c.props.receive_maximum = 64;
  c.props.mark(PropertyId::receive_maximum);
  ByteVec expected =
      cat({bytes_of({0x10, 0x17, 0x00, 0x04}), bytes_of("MQTT"), bytes_of({0x05, 0x00, 0x00, 0x1e}),
           bytes_of({0x08, 0x11, 0x00, 0x00, 0x0e, 0x10, 0x21, 0x00, 0x40}), bytes_of({0x00, 0x02}), bytes_of("gw")});
  EXPECT_EQ(encoded(c), expected);

  Connect back;
  FixedHeader h;
  ASSERT_EQ(decode(test::body_of(expected, h), back), Reason::success);
  EXPECT_EQ(back.version, Version::v5);
  EXPECT_FALSE(back.clean_start);
  EXPECT_EQ(back.props.session_expiry, 3600u);
  EXPECT_EQ(back.props.receive_maximum, 64);
  EXPECT_EQ(back.client_id, "gw");
}

TEST(Codec, connect_with_will_username_and_password_round_trips) {
  Connect c;
  c.client_id = "id";
  c.has_will = true;
  c.will.topic = "gw/status";
  c.will.payload = Bytes(reinterpret_cast<const std::uint8_t*>("offline"), 7);
  c.will.qos = 1;
  c.will.retain = true;
  c.will.props.will_delay = 5;
  c.will.props.mark(PropertyId::will_delay);
  c.has_username = c.has_password = true;
  c.username = "user";
  c.password = Bytes(reinterpret_cast<const std::uint8_t*>("pw"), 2);
  for (Version v : {Version::v311, Version::v5}) {
    c.version = v;
    ByteVec wire = encoded(c);
    Connect back;
    FixedHeader h;
    ASSERT_EQ(decode(test::body_of(wire, h), back), Reason::success);
    EXPECT_TRUE(back.has_will);
    EXPECT_EQ(back.will.topic, "gw/status");
    EXPECT_EQ(back.will.qos, 1);
    EXPECT_TRUE(back.will.retain);
    EXPECT_EQ(back.will.payload.size(), 7u);
    EXPECT_EQ(back.username, "user");
    EXPECT_EQ(back.password.size(), 2u);
    if (v == Version::v5) {
      EXPECT_EQ(back.will.props.will_delay, 5u);
    }
  }
}

TEST(Codec, connack_v311_return_codes_map_to_reasons) {
  Connack c;
  FixedHeader h;
  ByteVec present = bytes_of({0x20, 0x02, 0x01, 0x00});
  ASSERT_EQ(decode(test::body_of(present, h), Version::v311, c), Reason::success);
  EXPECT_TRUE(c.session_present);
  EXPECT_EQ(c.reason, Reason::success);
  ByteVec refused = bytes_of({0x20, 0x02, 0x00, 0x05});
  ASSERT_EQ(decode(test::body_of(refused, h), Version::v311, c), Reason::success);
  EXPECT_EQ(c.reason, Reason::not_authorized);
  Connack out;
  out.reason = Reason::bad_username_or_password;
  EXPECT_EQ(encoded(out, Version::v311), bytes_of({0x20, 0x02, 0x00, 0x04}));
}

TEST(Codec, connack_v5_reads_the_servers_limits) {
  ByteVec wire =
      bytes_of({0x20, 0x0e, 0x00, 0x00, 0x0b, 0x21, 0x00, 0x0a, 0x27, 0x00, 0x01, 0x00, 0x00, 0x13, 0x00, 0x3c});
  Connack c;
  FixedHeader h;
  ASSERT_EQ(decode(test::body_of(wire, h), Version::v5, c), Reason::success);
  EXPECT_EQ(c.props.receive_maximum, 10);
  EXPECT_EQ(c.props.maximum_packet_size, 65536u);
  EXPECT_EQ(c.props.server_keepalive, 60);
  EXPECT_TRUE(c.props.has(PropertyId::server_keepalive));
  EXPECT_FALSE(c.props.has(PropertyId::maximum_qos));
}

TEST(Codec, publish_v311_qos1_matches_the_spec_layout) {
  Publish p;
  p.topic = "a/b";
  p.qos = 1;
  p.packet_id = 10;
  p.payload = Bytes(reinterpret_cast<const std::uint8_t*>("hi"), 2);
  ByteVec wire = encoded(p, Version::v311);
  EXPECT_EQ(wire, cat({bytes_of({0x32, 0x09, 0x00, 0x03}), bytes_of("a/b"), bytes_of({0x00, 0x0a}), bytes_of("hi")}));
  EXPECT_EQ(encoded_size(p, Version::v311), wire.size());
}

TEST(Codec, publish_v5_joins_prefix_and_topic_and_carries_user_properties) {
  UserProperty user[] = {{"gw", "x"}};
  Publish p;
  p.topic_prefix = "site/";
  p.topic = "t";
  p.retain = true;
  p.props.user = user;
  p.payload = Bytes(reinterpret_cast<const std::uint8_t*>("p"), 1);
  ByteVec wire = encoded(p, Version::v5);
  EXPECT_EQ(wire, cat({bytes_of({0x31, 0x12, 0x00, 0x06}), bytes_of("site/t"), bytes_of({0x08, 0x26, 0x00, 0x02}),
                       bytes_of("gw"), bytes_of({0x00, 0x01}), bytes_of("x"), bytes_of("p")}));
  Publish back;
  FixedHeader h;
  ASSERT_EQ(decode(h, test::body_of(wire, h), Version::v5, back), Reason::success);
  EXPECT_EQ(back.topic, "site/t");
  EXPECT_TRUE(back.retain);
  EXPECT_EQ(back.qos, 0);
  int users = 0;
  for_each_user_property(back.props, [&](const UserProperty& u) {
    EXPECT_EQ(u.key, "gw");
    EXPECT_EQ(u.value, "x");
    ++users;
  });
  EXPECT_EQ(users, 1);
  EXPECT_EQ(std::string(back.payload.begin(), back.payload.end()), "p");
}

TEST(Codec, publish_with_dup_flag_and_qos2_round_trips) {
  Publish p;
  p.topic = "x";
  p.qos = 2;
  p.dup = true;
  p.packet_id = 65535;
  ByteVec wire = encoded(p, Version::v5);
  EXPECT_EQ(wire[0], 0x3c);
  Publish back;
  FixedHeader h;
  ASSERT_EQ(decode(h, test::body_of(wire, h), Version::v5, back), Reason::success);
  EXPECT_TRUE(back.dup);
  EXPECT_EQ(back.qos, 2);
  EXPECT_EQ(back.packet_id, 65535);
  EXPECT_TRUE(back.payload.empty());
}

TEST(Codec, acks_use_the_short_forms_and_fixed_flags) {
  EXPECT_EQ(encoded(Ack{PacketType::puback, 5}, Version::v311), bytes_of({0x40, 0x02, 0x00, 0x05}));
  EXPECT_EQ(encoded(Ack{PacketType::puback, 5}, Version::v5), bytes_of({0x40, 0x02, 0x00, 0x05}));
  EXPECT_EQ(encoded(Ack{PacketType::pubrec, 5, Reason::no_matching_subscribers}, Version::v5),
            bytes_of({0x50, 0x03, 0x00, 0x05, 0x10}));
  EXPECT_EQ(encoded(Ack{PacketType::pubrel, 5}, Version::v5), bytes_of({0x62, 0x02, 0x00, 0x05}));
  EXPECT_EQ(encoded(Ack{PacketType::pubcomp, 258}, Version::v311), bytes_of({0x70, 0x02, 0x01, 0x02}));
  Ack a;
  FixedHeader h;
  ByteVec with_reason = bytes_of({0x40, 0x03, 0x00, 0x07, 0x97});
  ASSERT_EQ(decode(h, test::body_of(with_reason, h), Version::v5, a), Reason::success);
  EXPECT_EQ(a.packet_id, 7);
  EXPECT_EQ(a.reason, Reason::quota_exceeded);
}

TEST(Codec, subscribe_matches_the_spec_layout_in_both_versions) {
  Subscription subs[] = {{"a/#", 1}};
  Subscribe s;
  s.packet_id = 1;
  s.subscriptions = subs;
  EXPECT_EQ(encoded(s, Version::v311),
            cat({bytes_of({0x82, 0x08, 0x00, 0x01, 0x00, 0x03}), bytes_of("a/#"), bytes_of({0x01})}));
  ByteVec v5 = encoded(s, Version::v5);
  EXPECT_EQ(v5, cat({bytes_of({0x82, 0x09, 0x00, 0x01, 0x00, 0x00, 0x03}), bytes_of("a/#"), bytes_of({0x01})}));
  Subscribe back;
  FixedHeader h;
  ASSERT_EQ(decode(test::body_of(v5, h), Version::v5, back), Reason::success);
  int n = 0;
  for_each_subscription(back, [&](const Subscription& sub) {
    EXPECT_EQ(sub.filter, "a/#");
    EXPECT_EQ(sub.options, 1);
    ++n;
  });
  EXPECT_EQ(n, 1);
}

TEST(Codec, suback_and_unsuback_carry_one_code_per_filter) {
  SubAck s;
  FixedHeader h;
  ByteVec suback = bytes_of({0x90, 0x05, 0x00, 0x01, 0x00, 0x01, 0x80});
  ASSERT_EQ(decode(h, test::body_of(suback, h), Version::v5, s), Reason::success);
  EXPECT_EQ(s.reasons.size(), 2u);
  EXPECT_EQ(s.reasons[1], 0x80);
  ByteVec unsuback311 = bytes_of({0xb0, 0x02, 0x00, 0x09});
  ASSERT_EQ(decode(h, test::body_of(unsuback311, h), Version::v311, s), Reason::success);
  EXPECT_EQ(s.packet_id, 9);
  std::string_view filters[] = {"a", "b/+"};
  Unsubscribe u;
  u.packet_id = 3;
  u.filters = filters;
  ByteVec wire = encoded(u, Version::v5);
  EXPECT_EQ(wire, cat({bytes_of({0xa2, 0x0b, 0x00, 0x03, 0x00, 0x00, 0x01}), bytes_of("a"), bytes_of({0x00, 0x03}),
                       bytes_of("b/+")}));
  Unsubscribe back;
  ASSERT_EQ(decode(test::body_of(wire, h), Version::v5, back), Reason::success);
  int n = 0;
  for_each_filter(back, [&](std::string_view) { ++n; });
  EXPECT_EQ(n, 2);
}

TEST(Codec, ping_and_disconnect) {
  std::uint8_t buf[2];
  ASSERT_EQ(encode_ping(buf, PacketType::pingreq), 2u);
  EXPECT_EQ(ByteVec(buf, buf + 2), bytes_of({0xc0, 0x00}));
  EXPECT_EQ(encoded(Disconnect{}, Version::v311), bytes_of({0xe0, 0x00}));
  EXPECT_EQ(encoded(Disconnect{Reason::server_shutting_down}, Version::v5), bytes_of({0xe0, 0x01, 0x8b}));
  Disconnect d;
  FixedHeader h;
  ByteVec wire = bytes_of({0xe0, 0x01, 0x8e});
  ASSERT_EQ(decode(test::body_of(wire, h), Version::v5, d), Reason::success);
  EXPECT_EQ(d.reason, Reason::session_taken_over);
}

TEST(Codec, remaining_length_uses_one_to_four_bytes) {
  struct Case {
    std::uint32_t value;
    ByteVec wire;
  } cases[] = {{0, bytes_of({0x00})},
               {127, bytes_of({0x7f})},
               {128, bytes_of({0x80, 0x01})},
               {16383, bytes_of({0xff, 0x7f})},
               {16384, bytes_of({0x80, 0x80, 0x01})},
               {2097151, bytes_of({0xff, 0xff, 0x7f})},
               {2097152, bytes_of({0x80, 0x80, 0x80, 0x01})},
               {268435455, bytes_of({0xff, 0xff, 0xff, 0x7f})}};
  for (const Case& c : cases) {
    ByteVec packet = cat({bytes_of({0x30}), c.wire});
    FixedHeader h;
    ASSERT_EQ(decode_fixed_header(packet, h), HeaderStatus::ok) << c.value;
    EXPECT_EQ(h.remaining, c.value);
    EXPECT_EQ(h.size, 1 + c.wire.size());
    EXPECT_EQ(varint_size(c.value), c.wire.size());
  }
}

TEST(Codec, encode_refuses_a_buffer_too_small_instead_of_overflowing) {
  Publish p;
  p.topic = "topic";
  std::uint8_t payload[100] = {};
  p.payload = payload;
  std::uint8_t buf[64];
  EXPECT_EQ(encode(buf, p, Version::v5), 0u);
  std::string long_topic(70000, 'a');
  p.topic = long_topic;
  std::vector<std::uint8_t> big(100000);
  EXPECT_EQ(encode(big, p, Version::v5), 0u);
}
