// The MQTT 3.1.1 / 5.0 packet codec: one struct per packet family, encode() into a caller's
// buffer and decode() of a packet body (the bytes after the fixed header). Decoded views
// (topics, payloads, properties) point into the caller's bytes; nothing is allocated.
//
// decode() returns Reason::success, Reason::malformed_packet or Reason::protocol_error (the
// reason code a session closes with). encode() returns the packet's size, or 0 when it does
// not fit the buffer or cannot be encoded (a string over 65,535 bytes).
#pragma once

#include <cstdint>
#include <string_view>

#include "mqtt/codec/bytes.hpp"

namespace edgegw::mqtt {

enum class Version : std::uint8_t { v311 = 4, v5 = 5 };

enum class PacketType : std::uint8_t {
  connect = 1,
  connack,
  publish,
  puback,
  pubrec,
  pubrel,
  pubcomp,
  subscribe,
  suback,
  unsubscribe,
  unsuback,
  pingreq,
  pingresp,
  disconnect,
  auth
};
const char* packet_name(PacketType type);

// MQTT 5 reason codes (2.4); 3.1.1's CONNACK return codes 1-5 are mapped onto them.
enum class Reason : std::uint8_t {
  success = 0x00,
  granted_qos1 = 0x01,
  granted_qos2 = 0x02,
  disconnect_with_will = 0x04,
  no_matching_subscribers = 0x10,
  no_subscription_existed = 0x11,
  unspecified_error = 0x80,
  malformed_packet = 0x81,
  protocol_error = 0x82,
  implementation_specific_error = 0x83,
  unsupported_protocol_version = 0x84,
  client_id_not_valid = 0x85,
  bad_username_or_password = 0x86,
  not_authorized = 0x87,
  server_unavailable = 0x88,
  server_busy = 0x89,
  banned = 0x8a,
  server_shutting_down = 0x8b,
  bad_auth_method = 0x8c,
  keepalive_timeout = 0x8d,
  session_taken_over = 0x8e,
  topic_filter_invalid = 0x8f,
  topic_name_invalid = 0x90,
  packet_id_in_use = 0x91,
  packet_id_not_found = 0x92,
  receive_maximum_exceeded = 0x93,
  topic_alias_invalid = 0x94,
  packet_too_large = 0x95,
  message_rate_too_high = 0x96,
  quota_exceeded = 0x97,
  administrative_action = 0x98,
  payload_format_invalid = 0x99,
  retain_not_supported = 0x9a,
  qos_not_supported = 0x9b,
  use_another_server = 0x9c,
  server_moved = 0x9d,
  shared_subscriptions_not_supported = 0x9e,
  connection_rate_exceeded = 0x9f,
  maximum_connect_time = 0xa0,
  subscription_ids_not_supported = 0xa1,
  wildcard_subscriptions_not_supported = 0xa2,
};
const char* reason_name(Reason reason);
inline bool is_error(Reason reason) { return static_cast<std::uint8_t>(reason) >= 0x80; }

// ---- Fixed header (2.1) -------------------------------------------------------------

struct FixedHeader {
  PacketType type{};
  std::uint8_t flags = 0;       // low nibble of the first byte
  std::uint32_t remaining = 0;  // Remaining Length
  std::uint8_t size = 0;        // bytes of the fixed header itself (2-5)
};

enum class HeaderStatus { ok, need_more, malformed };
// Checks the type and the flags each type requires (2.1.3), and the Remaining Length.
HeaderStatus decode_fixed_header(Bytes data, FixedHeader& out);

// ---- Properties (MQTT 5, 2.2.2) -----------------------------------------------------

enum class PropertyId : std::uint8_t {
  payload_format = 0x01,
  message_expiry = 0x02,
  content_type = 0x03,
  response_topic = 0x08,
  correlation_data = 0x09,
  subscription_id = 0x0b,
  session_expiry = 0x11,
  assigned_client_id = 0x12,
  server_keepalive = 0x13,
  auth_method = 0x15,
  auth_data = 0x16,
  request_problem_info = 0x17,
  will_delay = 0x18,
  request_response_info = 0x19,
  response_info = 0x1a,
  server_reference = 0x1c,
  reason_string = 0x1f,
  receive_maximum = 0x21,
  topic_alias_maximum = 0x22,
  topic_alias = 0x23,
  maximum_qos = 0x24,
  retain_available = 0x25,
  user_property = 0x26,
  maximum_packet_size = 0x27,
  wildcard_sub_available = 0x28,
  subscription_id_available = 0x29,
  shared_sub_available = 0x2a,
};

struct UserProperty {
  std::string_view key;
  std::string_view value;
};

// The properties of one packet. Only those marked present are encoded; decode marks what
// it found. Defaults are the spec's values when a property is absent.
struct Properties {
  std::uint64_t present = 0;  // bit n set: property id n present

  std::uint8_t payload_format = 0, request_problem_info = 1, request_response_info = 0;
  std::uint8_t maximum_qos = 2, retain_available = 1, wildcard_sub_available = 1;
  std::uint8_t subscription_id_available = 1, shared_sub_available = 1;
  std::uint16_t server_keepalive = 0, receive_maximum = 65535, topic_alias_maximum = 0, topic_alias = 0;
  std::uint32_t message_expiry = 0, session_expiry = 0, will_delay = 0, maximum_packet_size = 0;
  std::uint32_t subscription_id = 0;  // the first one, when a PUBLISH carries several
  std::string_view content_type, response_topic, assigned_client_id, auth_method;
  std::string_view response_info, server_reference, reason_string;
  Bytes correlation_data, auth_data;

  // Encoding: the user properties to write, in order.
  std::span<const UserProperty> user;
  // Decoding: the whole property block as received (user properties are read from it
  // with for_each_user_property()).
  Bytes raw;

  bool has(PropertyId id) const { return present & (std::uint64_t{1} << static_cast<unsigned>(id)); }
  void mark(PropertyId id) { present |= std::uint64_t{1} << static_cast<unsigned>(id); }
};

// Calls fn(UserProperty) for each user property of a decoded block.
template <class Fn>
void for_each_user_property(const Properties& props, Fn&& fn);

// ---- Packets --------------------------------------------------------------------------

struct Will {
  std::string_view topic;
  Bytes payload;
  std::uint8_t qos = 0;
  bool retain = false;
  Properties props;
};

struct Connect {
  Version version = Version::v5;
  bool clean_start = true;
  std::uint16_t keepalive = 60;
  std::string_view client_id;
  Properties props;
  bool has_will = false;
  Will will;
  bool has_username = false, has_password = false;
  std::string_view username;
  Bytes password;
};

struct Connack {
  bool session_present = false;
  Reason reason = Reason::success;
  Properties props;
};

struct Publish {
  std::string_view topic_prefix;  // encode only: the topic is prefix + topic
  std::string_view topic;
  Bytes payload;
  std::uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;
  Properties props;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP.
struct Ack {
  PacketType type = PacketType::puback;
  std::uint16_t packet_id = 0;
  Reason reason = Reason::success;
  Properties props;
};

// options: QoS in bits 0-1; MQTT 5 adds No Local (bit 2), Retain As Published (bit 3) and
// Retain Handling (bits 4-5).
struct Subscription {
  std::string_view filter;
  std::uint8_t options = 0;
};

struct Subscribe {
  std::uint16_t packet_id = 0;
  Properties props;
  std::span<const Subscription> subscriptions;  // encode
  Bytes payload;                                // decode: use for_each_subscription()
};

struct Unsubscribe {
  std::uint16_t packet_id = 0;
  Properties props;
  std::span<const std::string_view> filters;  // encode
  Bytes payload;                              // decode: use for_each_filter()
};

// SUBACK and UNSUBACK: one reason code per requested filter. In 3.1.1 UNSUBACK has none.
struct SubAck {
  PacketType type = PacketType::suback;
  std::uint16_t packet_id = 0;
  Properties props;
  Bytes reasons;
};

struct Disconnect {
  Reason reason = Reason::success;
  Properties props;
};

std::size_t encode(MutableBytes out, const Connect& packet);
std::size_t encode(MutableBytes out, const Connack& packet, Version version);
std::size_t encode(MutableBytes out, const Publish& packet, Version version);
std::size_t encode(MutableBytes out, const Ack& packet, Version version);
std::size_t encode(MutableBytes out, const Subscribe& packet, Version version);
std::size_t encode(MutableBytes out, const Unsubscribe& packet, Version version);
std::size_t encode(MutableBytes out, const SubAck& packet, Version version);
std::size_t encode(MutableBytes out, const Disconnect& packet, Version version);
// PINGREQ or PINGRESP.
std::size_t encode_ping(MutableBytes out, PacketType type);

// The size encode() would produce for a PUBLISH (0 if it cannot be encoded).
std::size_t encoded_size(const Publish& packet, Version version);

Reason decode(Bytes body, Connect& out);  // the version comes from the packet itself
Reason decode(Bytes body, Version version, Connack& out);
Reason decode(const FixedHeader& header, Bytes body, Version version, Publish& out);
Reason decode(const FixedHeader& header, Bytes body, Version version, Ack& out);
Reason decode(Bytes body, Version version, Subscribe& out);
Reason decode(Bytes body, Version version, Unsubscribe& out);
Reason decode(const FixedHeader& header, Bytes body, Version version, SubAck& out);
Reason decode(Bytes body, Version version, Disconnect& out);

template <class Fn>
void for_each_subscription(const Subscribe& packet, Fn&& fn);
template <class Fn>
void for_each_filter(const Unsubscribe& packet, Fn&& fn);

// ---- Used by the templates above and by the codec's own files ------------------------

// Packet mask bit for Will properties (bit 0 is not a packet type).
inline constexpr unsigned k_will_properties = 0;
// Reads a property block (length + properties) allowed in the packet (bit) given.
Reason decode_properties(Reader& in, unsigned packet_bit, Properties& out);
void encode_properties(Writer& out, const Properties& props);

template <class Fn>
void for_each_user_property(const Properties& props, Fn&& fn) {
  // raw was validated by decode_properties(), so every read below succeeds.
  Reader in(props.raw);
  while (!in.empty()) {
    std::uint8_t id;
    in.u8(id);
    if (id == static_cast<std::uint8_t>(PropertyId::user_property)) {
      UserProperty p;
      in.utf8(p.key);
      in.utf8(p.value);
      fn(p);
      continue;
    }
    std::uint32_t ignored;
    Bytes skip;
    switch (static_cast<PropertyId>(id)) {
      case PropertyId::payload_format:
      case PropertyId::request_problem_info:
      case PropertyId::request_response_info:
      case PropertyId::maximum_qos:
      case PropertyId::retain_available:
      case PropertyId::wildcard_sub_available:
      case PropertyId::subscription_id_available:
      case PropertyId::shared_sub_available: in.take(1, skip); break;
      case PropertyId::server_keepalive:
      case PropertyId::receive_maximum:
      case PropertyId::topic_alias_maximum:
      case PropertyId::topic_alias: in.take(2, skip); break;
      case PropertyId::message_expiry:
      case PropertyId::session_expiry:
      case PropertyId::will_delay:
      case PropertyId::maximum_packet_size: in.take(4, skip); break;
      case PropertyId::subscription_id: in.varint(ignored); break;
      default: in.binary(skip); break;  // strings and binary data
    }
  }
}

// Walks the entries of a SUBSCRIBE or UNSUBSCRIBE payload that decode() validated (so
// every read succeeds): read_one(in) reads one entry.
template <class ReadOne>
void for_each_entry(Bytes payload, ReadOne&& read_one) {
  Reader in(payload);
  while (!in.empty()) read_one(in);
}

template <class Fn>
void for_each_subscription(const Subscribe& packet, Fn&& fn) {
  for_each_entry(packet.payload, [&](Reader& in) {
    Subscription s;
    in.utf8(s.filter);
    in.u8(s.options);
    fn(s);
  });
}

template <class Fn>
void for_each_filter(const Unsubscribe& packet, Fn&& fn) {
  for_each_entry(packet.payload, [&](Reader& in) {
    std::string_view filter;
    in.utf8(filter);
    fn(filter);
  });
}

}  // namespace edgegw::mqtt
