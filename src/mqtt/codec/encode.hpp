// Codec-internal: frames a packet body written by `body(Writer&)` behind its fixed header.
// The body is written twice: once counting (to learn the Remaining Length), once for real.
#pragma once

#include "mqtt/codec/packets.hpp"

namespace edgegw::mqtt::detail {

template <class Body>
std::size_t encode_packet(MutableBytes out, std::uint8_t first_byte, Body&& body) {
  Writer count;
  body(count);
  if (!count.ok() || count.size() > k_max_varint) return 0;
  Writer w(out);
  w.u8(first_byte);
  w.varint(static_cast<std::uint32_t>(count.size()));
  body(w);
  return w.ok() ? w.size() : 0;
}

inline std::uint8_t first_byte(PacketType type, std::uint8_t flags = 0) {
  return static_cast<std::uint8_t>((static_cast<unsigned>(type) << 4) | flags);
}

inline unsigned packet_bit(PacketType type) { return static_cast<unsigned>(type); }

}  // namespace edgegw::mqtt::detail
