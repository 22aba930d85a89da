// Bounds-checked reading and writing of MQTT's wire types (1.5 of the MQTT 5 spec):
// integers, Variable Byte Integers, UTF-8 strings, binary data. A Reader never reads past
// its span; a Writer never writes past its span and can also just count (no buffer), which
// is how encoders learn a packet's Remaining Length before writing it. No allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace edgegw::mqtt {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

// The bytes of a text (a payload or a password given as a string).
inline Bytes text_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Number of bytes a Variable Byte Integer takes (1-4); values above 268,435,455 are not
// encodable.
inline constexpr std::uint32_t k_max_varint = 268'435'455;
std::size_t varint_size(std::uint32_t value);

// Well-formed UTF-8 as MQTT requires (1.5.4): no overlong forms, no surrogates, no U+0000,
// nothing above U+10FFFF.
bool valid_mqtt_utf8(std::string_view text);

class Reader {
 public:
  explicit Reader(Bytes data) : m_data(data) {}

  std::size_t remaining() const { return m_data.size() - m_pos; }
  bool empty() const { return remaining() == 0; }
  std::size_t position() const { return m_pos; }

  bool u8(std::uint8_t& out);
  bool u16(std::uint16_t& out);
  bool u32(std::uint32_t& out);
  // False for a truncated or over-long (5+ bytes) or non-minimal encoding.
  bool varint(std::uint32_t& out);
  // Two-byte length + bytes, validated as MQTT UTF-8.
  bool utf8(std::string_view& out);
  // Two-byte length + bytes.
  bool binary(Bytes& out);
  bool take(std::size_t count, Bytes& out);
  Bytes rest() {
    Bytes out = m_data.subspan(m_pos);
    m_pos = m_data.size();
    return out;
  }

 private:
  Bytes m_data;
  std::size_t m_pos = 0;
};

class Writer {
 public:
  // Counting writer: writes nothing, only sums sizes.
  Writer() = default;
  explicit Writer(MutableBytes out) : m_out(out), m_counting(false) {}

  void u8(std::uint8_t value);
  void u16(std::uint16_t value);
  void u32(std::uint32_t value);
  void varint(std::uint32_t value);
  void utf8(std::string_view text);  // length-prefixed
  void binary(Bytes data);           // length-prefixed
  void raw(Bytes data);
  void raw(std::string_view text);

  // Marks the output as failed (something could not be encoded).
  void fail() { m_ok = false; }
  std::size_t size() const { return m_size; }
  // False if anything did not fit (or a string was longer than 65,535 bytes).
  bool ok() const { return m_ok; }

 private:
  bool reserve(std::size_t count);
  MutableBytes m_out;
  std::size_t m_size = 0;
  bool m_counting = true;
  bool m_ok = true;
};

}  // namespace edgegw::mqtt
