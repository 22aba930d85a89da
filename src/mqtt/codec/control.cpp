// DISCONNECT (3.14); PINGREQ and PINGRESP have no body (see header.cpp).
#include "mqtt/codec/encode.hpp"

namespace edgegw::mqtt {

std::size_t encode(MutableBytes out, const Disconnect& p, Version version) {
  return detail::encode_packet(out, detail::first_byte(PacketType::disconnect), [&](Writer& w) {
    if (version == Version::v311) return;
    const bool props = p.props.present != 0 || !p.props.user.empty();
    if (p.reason != Reason::success || props) w.u8(static_cast<std::uint8_t>(p.reason));
    if (props) encode_properties(w, p.props);
  });
}

Reason decode(Bytes body, Version version, Disconnect& out) {
  Reader in(body);
  out.reason = Reason::success;
  if (version == Version::v311) return in.empty() ? Reason::success : Reason::malformed_packet;
  if (in.empty()) return Reason::success;
  std::uint8_t code;
  in.u8(code);
  out.reason = static_cast<Reason>(code);
  if (!in.empty()) {
    Reason r = decode_properties(in, static_cast<unsigned>(PacketType::disconnect), out.props);
    if (r != Reason::success) return r;
  }
  return in.empty() ? Reason::success : Reason::malformed_packet;
}

}  // namespace edgegw::mqtt
