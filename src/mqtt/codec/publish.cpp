// PUBLISH (3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (3.4-3.7).
#include "mqtt/codec/encode.hpp"

namespace edgegw::mqtt {
namespace {

bool has_wildcard(std::string_view topic) { return topic.find_first_of("+#") != std::string_view::npos; }

void publish_body(Writer& w, const Publish& p, Version version) {
  const std::size_t topic_len = p.topic_prefix.size() + p.topic.size();
  if (topic_len > 0xffff) {
    w.fail();
    return;
  }
  w.u16(static_cast<std::uint16_t>(topic_len));
  w.raw(p.topic_prefix);
  w.raw(p.topic);
  if (p.qos > 0) w.u16(p.packet_id);
  if (version == Version::v5) encode_properties(w, p.props);
  w.raw(p.payload);
}

std::uint8_t publish_flags(const Publish& p) {
  return static_cast<std::uint8_t>((p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 0x01 : 0));
}

}  // namespace

std::size_t encoded_size(const Publish& p, Version version) {
  Writer count;
  publish_body(count, p, version);
  if (!count.ok() || count.size() > k_max_varint) return 0;
  return 1 + varint_size(static_cast<std::uint32_t>(count.size())) + count.size();
}

std::size_t encode(MutableBytes out, const Publish& p, Version version) {
  return detail::encode_packet(out, detail::first_byte(PacketType::publish, publish_flags(p)),
                               [&](Writer& w) { publish_body(w, p, version); });
}

Reason decode(const FixedHeader& header, Bytes body, Version version, Publish& out) {
  Reader in(body);
  out.topic_prefix = {};
  out.dup = header.flags & 0x08;
  out.qos = (header.flags >> 1) & 0x03;
  out.retain = header.flags & 0x01;
  if (!in.utf8(out.topic)) return Reason::malformed_packet;
  // A topic name never holds wildcards [MQTT-3.3.2-2].
  if (has_wildcard(out.topic)) return Reason::protocol_error;
  out.packet_id = 0;
  if (out.qos > 0 && (!in.u16(out.packet_id) || out.packet_id == 0)) return Reason::malformed_packet;
  if (version == Version::v5) {
    Reason r = decode_properties(in, detail::packet_bit(PacketType::publish), out.props);
    if (r != Reason::success) return r;
  }
  // An empty topic is only valid with a topic alias (MQTT 5), which the caller resolves.
  if (out.topic.empty() && !out.props.has(PropertyId::topic_alias)) return Reason::protocol_error;
  out.payload = in.rest();
  return Reason::success;
}

std::size_t encode(MutableBytes out, const Ack& p, Version version) {
  const std::uint8_t flags = p.type == PacketType::pubrel ? 0x02 : 0;
  return detail::encode_packet(out, detail::first_byte(p.type, flags), [&](Writer& w) {
    w.u16(p.packet_id);
    if (version == Version::v311) return;
    // The short forms: reason and properties may be left out when they are the default (3.4.2.1).
    const bool props = p.props.present != 0 || !p.props.user.empty();
    if (p.reason != Reason::success || props) w.u8(static_cast<std::uint8_t>(p.reason));
    if (props) encode_properties(w, p.props);
  });
}

Reason decode(const FixedHeader& header, Bytes body, Version version, Ack& out) {
  Reader in(body);
  out.type = header.type;
  out.reason = Reason::success;
  if (!in.u16(out.packet_id) || out.packet_id == 0) return Reason::malformed_packet;
  if (version == Version::v5 && !in.empty()) {
    std::uint8_t code;
    in.u8(code);
    out.reason = static_cast<Reason>(code);
    if (!in.empty()) {
      Reason r = decode_properties(in, detail::packet_bit(header.type), out.props);
      if (r != Reason::success) return r;
    }
  }
  return in.empty() ? Reason::success : Reason::malformed_packet;
}

}  // namespace edgegw::mqtt
