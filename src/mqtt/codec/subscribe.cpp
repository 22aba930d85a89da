// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (3.8-3.11).
#include "mqtt/codec/encode.hpp"

namespace edgegw::mqtt {
namespace {

// Reads the packet identifier and (MQTT 5) properties that open these four packets.
Reason decode_id_and_properties(Reader& in, Version version, PacketType type, std::uint16_t& id, Properties& props) {
  if (!in.u16(id) || id == 0) return Reason::malformed_packet;
  if (version == Version::v5) return decode_properties(in, detail::packet_bit(type), props);
  return Reason::success;
}

}  // namespace

std::size_t encode(MutableBytes out, const Subscribe& p, Version version) {
  if (p.subscriptions.empty()) return 0;  // [MQTT-3.8.3-2]
  return detail::encode_packet(out, detail::first_byte(PacketType::subscribe, 0x02), [&](Writer& w) {
    w.u16(p.packet_id);
    if (version == Version::v5) encode_properties(w, p.props);
    for (const Subscription& s : p.subscriptions) {
      w.utf8(s.filter);
      w.u8(s.options);
    }
  });
}

// SUBSCRIBE and UNSUBSCRIBE: packet id, properties, then a list of at least one entry
// [MQTT-3.8.3-2, 3.10.3-2], each checked by check_one(reader).
template <class Packet, class CheckOne>
Reason decode_list(Bytes body, Version version, PacketType type, Packet& out, CheckOne&& check_one) {
  Reader in(body);
  Reason r = decode_id_and_properties(in, version, type, out.packet_id, out.props);
  if (r != Reason::success) return r;
  out.payload = in.rest();
  Reader list(out.payload);
  if (list.empty()) return Reason::protocol_error;
  while (!list.empty()) {
    if ((r = check_one(list)) != Reason::success) return r;
  }
  return Reason::success;
}

Reason decode(Bytes body, Version version, Subscribe& out) {
  return decode_list(body, version, PacketType::subscribe, out, [&](Reader& list) {
    std::string_view filter;
    std::uint8_t options;
    if (!list.utf8(filter) || !list.u8(options)) return Reason::malformed_packet;
    // QoS 3 and reserved bits [MQTT-3.8.3-4/5]; 3.1.1 allows only the QoS bits.
    const std::uint8_t reserved = version == Version::v5 ? 0xc0 : 0xfc;
    if ((options & reserved) || (options & 0x03) == 3 || ((options >> 4) & 0x03) == 3) return Reason::malformed_packet;
    return filter.empty() ? Reason::protocol_error : Reason::success;
  });
}

std::size_t encode(MutableBytes out, const Unsubscribe& p, Version version) {
  if (p.filters.empty()) return 0;  // [MQTT-3.10.3-2]
  return detail::encode_packet(out, detail::first_byte(PacketType::unsubscribe, 0x02), [&](Writer& w) {
    w.u16(p.packet_id);
    if (version == Version::v5) encode_properties(w, p.props);
    for (std::string_view filter : p.filters) w.utf8(filter);
  });
}

Reason decode(Bytes body, Version version, Unsubscribe& out) {
  return decode_list(body, version, PacketType::unsubscribe, out, [](Reader& list) {
    std::string_view filter;
    return list.utf8(filter) ? Reason::success : Reason::malformed_packet;
  });
}

std::size_t encode(MutableBytes out, const SubAck& p, Version version) {
  return detail::encode_packet(out, detail::first_byte(p.type), [&](Writer& w) {
    w.u16(p.packet_id);
    if (version == Version::v5) encode_properties(w, p.props);
    w.raw(p.reasons);
  });
}

Reason decode(const FixedHeader& header, Bytes body, Version version, SubAck& out) {
  Reader in(body);
  out.type = header.type;
  Reason r = decode_id_and_properties(in, version, header.type, out.packet_id, out.props);
  if (r != Reason::success) return r;
  out.reasons = in.rest();
  // A 3.1.1 UNSUBACK is just the packet identifier; everything else lists one code per filter.
  if (version == Version::v311 && header.type == PacketType::unsuback) {
    return out.reasons.empty() ? Reason::success : Reason::malformed_packet;
  }
  if (out.reasons.empty()) return Reason::protocol_error;
  if (version == Version::v311) {
    for (std::uint8_t code : out.reasons) {
      if (code > 2 && code != 0x80) return Reason::malformed_packet;
    }
  }
  return Reason::success;
}

}  // namespace edgegw::mqtt
