#include "mqtt/codec/bytes.hpp"

#include <cstring>

namespace edgegw::mqtt {

std::size_t varint_size(std::uint32_t value) {
  if (value < 128) return 1;
  if (value < 16'384) return 2;
  if (value < 2'097'152) return 3;
  return 4;
}

bool valid_mqtt_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    static constexpr std::uint32_t k_min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < k_min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

bool Reader::u8(std::uint8_t& out) {
  if (remaining() < 1) return false;
  out = m_data[m_pos++];
  return true;
}

bool Reader::u16(std::uint16_t& out) {
  if (remaining() < 2) return false;
  out = static_cast<std::uint16_t>((m_data[m_pos] << 8) | m_data[m_pos + 1]);
  m_pos += 2;
  return true;
}

bool Reader::u32(std::uint32_t& out) {
  if (remaining() < 4) return false;
  out = (std::uint32_t{m_data[m_pos]} << 24) | (std::uint32_t{m_data[m_pos + 1]} << 16) |
        (std::uint32_t{m_data[m_pos + 2]} << 8) | m_data[m_pos + 3];
  m_pos += 4;
  return true;
}

bool Reader::varint(std::uint32_t& out) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    std::uint8_t byte;
    if (!u8(byte)) return false;
    value |= std::uint32_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80) == 0) {
      // A trailing zero byte means a longer encoding than needed [MQTT-1.5.5-1].
      if (i > 0 && byte == 0) return false;
      out = value;
      return true;
    }
  }
  return false;
}

bool Reader::take(std::size_t count, Bytes& out) {
  if (remaining() < count) return false;
  out = m_data.subspan(m_pos, count);
  m_pos += count;
  return true;
}

bool Reader::binary(Bytes& out) {
  std::uint16_t len;
  return u16(len) && take(len, out);
}

bool Reader::utf8(std::string_view& out) {
  Bytes raw;
  if (!binary(raw)) return false;
  out = std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size());
  return valid_mqtt_utf8(out);
}

bool Writer::reserve(std::size_t count) {
  if (!m_counting && m_out.size() - m_size < count) m_ok = false;
  if (!m_ok) return false;
  m_size += count;
  return true;
}

void Writer::u8(std::uint8_t value) {
  if (reserve(1) && !m_counting) m_out[m_size - 1] = value;
}

void Writer::u16(std::uint16_t value) {
  if (reserve(2) && !m_counting) {
    m_out[m_size - 2] = static_cast<std::uint8_t>(value >> 8);
    m_out[m_size - 1] = static_cast<std::uint8_t>(value);
  }
}

void Writer::u32(std::uint32_t value) {
  if (reserve(4) && !m_counting) {
    for (int i = 0; i < 4; ++i) m_out[m_size - 4 + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
  }
}

void Writer::varint(std::uint32_t value) {
  if (value > k_max_varint) {
    m_ok = false;
    return;
  }
  do {
    auto byte = static_cast<std::uint8_t>(value & 0x7f);
    value >>= 7;
    u8(value ? static_cast<std::uint8_t>(byte | 0x80) : byte);
  } while (value);
}

void Writer::raw(Bytes data) {
  if (reserve(data.size()) && !m_counting && !data.empty())
    std::memcpy(m_out.data() + m_size - data.size(), data.data(), data.size());
}

void Writer::raw(std::string_view text) { raw(Bytes(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())); }

void Writer::binary(Bytes data) {
  if (data.size() > 0xffff) {
    m_ok = false;
    return;
  }
  u16(static_cast<std::uint16_t>(data.size()));
  raw(data);
}

void Writer::utf8(std::string_view text) {
  binary(Bytes(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

}  // namespace edgegw::mqtt
