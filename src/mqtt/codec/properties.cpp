#include "mqtt/codec/encode.hpp"

namespace edgegw::mqtt {
namespace {

enum class Kind : std::uint8_t { none, byte, u16, u32, varint, utf8, binary, pair };

struct Def {
  Kind kind = Kind::none;
  std::uint32_t packets = 0;  // bit n: allowed in packet type n; bit 0: Will properties
};

constexpr std::uint32_t bit(PacketType t) { return 1u << static_cast<unsigned>(t); }
constexpr std::uint32_t k_will = 1u << k_will_properties;
constexpr std::uint32_t k_pub = bit(PacketType::publish) | k_will;
constexpr std::uint32_t k_acks =
    bit(PacketType::puback) | bit(PacketType::pubrec) | bit(PacketType::pubrel) | bit(PacketType::pubcomp);
constexpr std::uint32_t k_all = 0xffff & ~1u;

// The property table of MQTT 5, 2.2.2.2: type and the packets each may appear in.
constexpr Def def(PropertyId id) {
  using P = PacketType;
  switch (id) {
    case PropertyId::payload_format: return {Kind::byte, k_pub};
    case PropertyId::message_expiry: return {Kind::u32, k_pub};
    case PropertyId::content_type: return {Kind::utf8, k_pub};
    case PropertyId::response_topic: return {Kind::utf8, k_pub};
    case PropertyId::correlation_data: return {Kind::binary, k_pub};
    case PropertyId::subscription_id: return {Kind::varint, bit(P::publish) | bit(P::subscribe)};
    case PropertyId::session_expiry: return {Kind::u32, bit(P::connect) | bit(P::connack) | bit(P::disconnect)};
    case PropertyId::assigned_client_id: return {Kind::utf8, bit(P::connack)};
    case PropertyId::server_keepalive: return {Kind::u16, bit(P::connack)};
    case PropertyId::auth_method: return {Kind::utf8, bit(P::connect) | bit(P::connack) | bit(P::auth)};
    case PropertyId::auth_data: return {Kind::binary, bit(P::connect) | bit(P::connack) | bit(P::auth)};
    case PropertyId::request_problem_info: return {Kind::byte, bit(P::connect)};
    case PropertyId::will_delay: return {Kind::u32, k_will};
    case PropertyId::request_response_info: return {Kind::byte, bit(P::connect)};
    case PropertyId::response_info: return {Kind::utf8, bit(P::connack)};
    case PropertyId::server_reference: return {Kind::utf8, bit(P::connack) | bit(P::disconnect)};
    case PropertyId::reason_string:
      return {Kind::utf8,
              bit(P::connack) | k_acks | bit(P::suback) | bit(P::unsuback) | bit(P::disconnect) | bit(P::auth)};
    case PropertyId::receive_maximum: return {Kind::u16, bit(P::connect) | bit(P::connack)};
    case PropertyId::topic_alias_maximum: return {Kind::u16, bit(P::connect) | bit(P::connack)};
    case PropertyId::topic_alias: return {Kind::u16, bit(P::publish)};
    case PropertyId::maximum_qos: return {Kind::byte, bit(P::connack)};
    case PropertyId::retain_available: return {Kind::byte, bit(P::connack)};
    case PropertyId::user_property: return {Kind::pair, k_all | k_will};
    case PropertyId::maximum_packet_size: return {Kind::u32, bit(P::connect) | bit(P::connack)};
    case PropertyId::wildcard_sub_available: return {Kind::byte, bit(P::connack)};
    case PropertyId::subscription_id_available: return {Kind::byte, bit(P::connack)};
    case PropertyId::shared_sub_available: return {Kind::byte, bit(P::connack)};
  }
  return {};
}

// The field holding each property (const or not); exactly one accessor answers for an id.
template <class P>
auto byte_field(P& p, PropertyId id) -> decltype(&p.payload_format) {
  switch (id) {
    case PropertyId::payload_format: return &p.payload_format;
    case PropertyId::request_problem_info: return &p.request_problem_info;
    case PropertyId::request_response_info: return &p.request_response_info;
    case PropertyId::maximum_qos: return &p.maximum_qos;
    case PropertyId::retain_available: return &p.retain_available;
    case PropertyId::wildcard_sub_available: return &p.wildcard_sub_available;
    case PropertyId::subscription_id_available: return &p.subscription_id_available;
    case PropertyId::shared_sub_available: return &p.shared_sub_available;
    default: return nullptr;
  }
}

template <class P>
auto u16_field(P& p, PropertyId id) -> decltype(&p.server_keepalive) {
  switch (id) {
    case PropertyId::server_keepalive: return &p.server_keepalive;
    case PropertyId::receive_maximum: return &p.receive_maximum;
    case PropertyId::topic_alias_maximum: return &p.topic_alias_maximum;
    case PropertyId::topic_alias: return &p.topic_alias;
    default: return nullptr;
  }
}

template <class P>
auto u32_field(P& p, PropertyId id) -> decltype(&p.message_expiry) {
  switch (id) {
    case PropertyId::message_expiry: return &p.message_expiry;
    case PropertyId::session_expiry: return &p.session_expiry;
    case PropertyId::will_delay: return &p.will_delay;
    case PropertyId::maximum_packet_size: return &p.maximum_packet_size;
    case PropertyId::subscription_id: return &p.subscription_id;
    default: return nullptr;
  }
}

template <class P>
auto str_field(P& p, PropertyId id) -> decltype(&p.content_type) {
  switch (id) {
    case PropertyId::content_type: return &p.content_type;
    case PropertyId::response_topic: return &p.response_topic;
    case PropertyId::assigned_client_id: return &p.assigned_client_id;
    case PropertyId::auth_method: return &p.auth_method;
    case PropertyId::response_info: return &p.response_info;
    case PropertyId::server_reference: return &p.server_reference;
    case PropertyId::reason_string: return &p.reason_string;
    default: return nullptr;
  }
}

template <class P>
auto bin_field(P& p, PropertyId id) -> decltype(&p.correlation_data) {
  switch (id) {
    case PropertyId::correlation_data: return &p.correlation_data;
    case PropertyId::auth_data: return &p.auth_data;
    default: return nullptr;
  }
}

// Values the spec forbids even though they are well formed.
bool value_allowed(PropertyId id, std::uint32_t value) {
  switch (id) {
    case PropertyId::receive_maximum:
    case PropertyId::maximum_packet_size:
    case PropertyId::subscription_id:
    case PropertyId::topic_alias: return value != 0;
    case PropertyId::maximum_qos:
    case PropertyId::payload_format:
    case PropertyId::request_problem_info:
    case PropertyId::request_response_info:
    case PropertyId::retain_available:
    case PropertyId::wildcard_sub_available:
    case PropertyId::subscription_id_available:
    case PropertyId::shared_sub_available: return value <= 1;
    default: return true;
  }
}

}  // namespace

Reason decode_properties(Reader& in, unsigned packet_bit, Properties& out) {
  std::uint32_t length;
  Bytes block;
  if (!in.varint(length) || !in.take(length, block)) return Reason::malformed_packet;
  out.raw = block;
  Reader r(block);
  while (!r.empty()) {
    std::uint8_t raw_id;
    r.u8(raw_id);
    const auto id = static_cast<PropertyId>(raw_id);
    const Def d = raw_id < 64 ? def(id) : Def{};
    if (d.kind == Kind::none) return Reason::malformed_packet;
    if (!(d.packets & (1u << packet_bit))) return Reason::protocol_error;
    // Only user properties (and a PUBLISH's subscription identifiers) may repeat.
    const bool repeatable = id == PropertyId::user_property || id == PropertyId::subscription_id;
    if (out.has(id) && !repeatable) return Reason::protocol_error;
    const bool first = !out.has(id);
    out.mark(id);
    bool ok = true;
    std::uint32_t value = 0;
    switch (d.kind) {
      case Kind::byte: {
        std::uint8_t v = 0;
        ok = r.u8(v);
        value = v;
        *byte_field(out, id) = v;
        break;
      }
      case Kind::u16: {
        std::uint16_t v = 0;
        ok = r.u16(v);
        value = v;
        *u16_field(out, id) = v;
        break;
      }
      case Kind::u32:
        ok = r.u32(value);
        *u32_field(out, id) = value;
        break;
      case Kind::varint:
        ok = r.varint(value);
        if (first) *u32_field(out, id) = value;
        break;
      case Kind::utf8: ok = r.utf8(*str_field(out, id)); break;
      case Kind::binary: ok = r.binary(*bin_field(out, id)); break;
      case Kind::pair: {
        UserProperty p;
        ok = r.utf8(p.key) && r.utf8(p.value);
        break;
      }
      case Kind::none: break;
    }
    if (!ok) return Reason::malformed_packet;
    if (!value_allowed(id, value)) return Reason::protocol_error;
  }
  return Reason::success;
}

void encode_properties(Writer& out, const Properties& props) {
  auto body = [&](Writer& w) {
    const Properties& p = props;
    for (unsigned raw = 1; raw < 64; ++raw) {
      const auto id = static_cast<PropertyId>(raw);
      if (!props.has(id) || id == PropertyId::user_property) continue;
      const Def d = def(id);
      w.u8(static_cast<std::uint8_t>(raw));
      switch (d.kind) {
        case Kind::byte: w.u8(*byte_field(p, id)); break;
        case Kind::u16: w.u16(*u16_field(p, id)); break;
        case Kind::u32: w.u32(*u32_field(p, id)); break;
        case Kind::varint: w.varint(*u32_field(p, id)); break;
        case Kind::utf8: w.utf8(*str_field(p, id)); break;
        case Kind::binary: w.binary(*bin_field(p, id)); break;
        case Kind::pair:
        case Kind::none: break;
      }
    }
    for (const UserProperty& u : props.user) {
      w.u8(static_cast<std::uint8_t>(PropertyId::user_property));
      w.utf8(u.key);
      w.utf8(u.value);
    }
  };
  Writer count;
  body(count);
  out.varint(static_cast<std::uint32_t>(count.size()));
  body(out);
}

}  // namespace edgegw::mqtt
