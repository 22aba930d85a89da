// CONNECT (3.1) and CONNACK (3.2).
#include "mqtt/codec/encode.hpp"

namespace edgegw::mqtt {
namespace {

constexpr std::string_view k_protocol_name = "MQTT";

// 3.1.1 CONNACK return codes 1-5 and their MQTT 5 reason codes.
constexpr Reason k_v311_codes[] = {Reason::success,
                                   Reason::unsupported_protocol_version,
                                   Reason::client_id_not_valid,
                                   Reason::server_unavailable,
                                   Reason::bad_username_or_password,
                                   Reason::not_authorized};

}  // namespace

std::size_t encode(MutableBytes out, const Connect& p) {
  const bool v5 = p.version == Version::v5;
  std::uint8_t flags = p.clean_start ? 0x02 : 0;
  if (p.has_will) flags |= static_cast<std::uint8_t>(0x04 | (p.will.qos << 3) | (p.will.retain ? 0x20 : 0));
  if (p.has_password) flags |= 0x40;
  if (p.has_username) flags |= 0x80;
  return detail::encode_packet(out, detail::first_byte(PacketType::connect), [&](Writer& w) {
    w.utf8(k_protocol_name);
    w.u8(static_cast<std::uint8_t>(p.version));
    w.u8(flags);
    w.u16(p.keepalive);
    if (v5) encode_properties(w, p.props);
    w.utf8(p.client_id);
    if (p.has_will) {
      if (v5) encode_properties(w, p.will.props);
      w.utf8(p.will.topic);
      w.binary(p.will.payload);
    }
    if (p.has_username) w.utf8(p.username);
    if (p.has_password) w.binary(p.password);
  });
}

Reason decode(Bytes body, Connect& out) {
  Reader in(body);
  std::string_view name;
  std::uint8_t level, flags;
  if (!in.utf8(name) || !in.u8(level) || !in.u8(flags) || !in.u16(out.keepalive)) return Reason::malformed_packet;
  if (name != k_protocol_name || (level != 4 && level != 5)) return Reason::unsupported_protocol_version;
  out.version = static_cast<Version>(level);
  const bool v5 = out.version == Version::v5;
  const std::uint8_t will_qos = (flags >> 3) & 0x03;
  // Reserved bit [MQTT-3.1.2-3]; Will QoS/Retain only with the Will Flag [MQTT-3.1.2-11/13].
  if ((flags & 0x01) || will_qos == 3 || (!(flags & 0x04) && (flags & 0x38))) return Reason::malformed_packet;
  // 3.1.1: a password needs a user name [MQTT-3.1.2-22].
  if (!v5 && (flags & 0x40) && !(flags & 0x80)) return Reason::malformed_packet;
  out.clean_start = flags & 0x02;
  out.has_will = flags & 0x04;
  out.has_password = flags & 0x40;
  out.has_username = flags & 0x80;
  if (v5) {
    Reason r = decode_properties(in, detail::packet_bit(PacketType::connect), out.props);
    if (r != Reason::success) return r;
  }
  if (!in.utf8(out.client_id)) return Reason::malformed_packet;
  if (out.has_will) {
    out.will.qos = will_qos;
    out.will.retain = flags & 0x20;
    if (v5) {
      Reason r = decode_properties(in, k_will_properties, out.will.props);
      if (r != Reason::success) return r;
    }
    if (!in.utf8(out.will.topic) || !in.binary(out.will.payload)) return Reason::malformed_packet;
  }
  if (out.has_username && !in.utf8(out.username)) return Reason::malformed_packet;
  if (out.has_password && !in.binary(out.password)) return Reason::malformed_packet;
  return in.empty() ? Reason::success : Reason::malformed_packet;
}

std::size_t encode(MutableBytes out, const Connack& p, Version version) {
  std::uint8_t code = static_cast<std::uint8_t>(p.reason);
  if (version == Version::v311) {
    code = 5;  // anything without a 3.1.1 code is reported as "not authorized"
    for (std::uint8_t i = 0; i < 6; ++i) {
      if (k_v311_codes[i] == p.reason) code = i;
    }
  }
  return detail::encode_packet(out, detail::first_byte(PacketType::connack), [&](Writer& w) {
    w.u8(p.session_present ? 1 : 0);
    w.u8(code);
    if (version == Version::v5) encode_properties(w, p.props);
  });
}

Reason decode(Bytes body, Version version, Connack& out) {
  Reader in(body);
  std::uint8_t flags, code;
  if (!in.u8(flags) || !in.u8(code) || (flags & 0xfe)) return Reason::malformed_packet;
  out.session_present = flags & 0x01;
  if (version == Version::v311) {
    if (code > 5 || !in.empty()) return Reason::malformed_packet;
    out.reason = k_v311_codes[code];
  } else {
    out.reason = static_cast<Reason>(code);
    Reason r = decode_properties(in, detail::packet_bit(PacketType::connack), out.props);
    if (r != Reason::success) return r;
    if (!in.empty()) return Reason::malformed_packet;
  }
  // A refused connection never has a session [MQTT-3.2.2-6].
  if (out.session_present && out.reason != Reason::success) return Reason::protocol_error;
  return Reason::success;
}

}  // namespace edgegw::mqtt
