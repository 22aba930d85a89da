// Helpers for codec tests: hex vectors and decoding a whole packet (fixed header + body).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mqtt/codec/packets.hpp"

namespace edgegw::test {

using ByteVec = std::vector<std::uint8_t>;

inline ByteVec bytes_of(std::initializer_list<int> values) {
  ByteVec out;
  for (int v : values) out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

inline ByteVec bytes_of(std::string_view text) { return ByteVec(text.begin(), text.end()); }

inline ByteVec cat(std::initializer_list<ByteVec> parts) {
  ByteVec out;
  for (const ByteVec& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

template <class Packet, class... Args>
ByteVec encoded(const Packet& p, Args... args) {
  std::uint8_t buf[1024];
  std::size_t n = mqtt::encode(buf, p, args...);
  EXPECT_GT(n, 0u);
  return ByteVec(buf, buf + n);
}

// Splits a whole packet into header and body; fails the test if the header is bad.
inline mqtt::Bytes body_of(const ByteVec& packet, mqtt::FixedHeader& header) {
  EXPECT_EQ(mqtt::decode_fixed_header(packet, header), mqtt::HeaderStatus::ok);
  EXPECT_EQ(header.size + header.remaining, packet.size());
  return mqtt::Bytes(packet).subspan(header.size);
}

}  // namespace edgegw::test
