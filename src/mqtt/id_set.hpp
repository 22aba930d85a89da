// A set of MQTT packet identifiers (1..65535): one bit each, 8 KiB, no allocation of its own.
#pragma once

#include <cstdint>
#include <cstring>

namespace edgegw::mqtt {

class IdSet {
 public:
  bool contains(std::uint16_t id) const { return m_words[id >> 6] & bit(id); }
  // Returns true if id was not in the set.
  bool insert(std::uint16_t id) {
    const bool added = !contains(id);
    m_words[id >> 6] |= bit(id);
    m_size += added;
    return added;
  }
  void erase(std::uint16_t id) {
    m_size -= contains(id);
    m_words[id >> 6] &= ~bit(id);
  }
  void clear() {
    std::memset(m_words, 0, sizeof m_words);
    m_size = 0;
  }
  std::uint32_t size() const { return m_size; }
  // The smallest id in the set; the set must not be empty.
  std::uint16_t first() const {
    std::size_t w = 0;
    while (m_words[w] == 0) ++w;
    return static_cast<std::uint16_t>(w * 64 + static_cast<unsigned>(__builtin_ctzll(m_words[w])));
  }

 private:
  static std::uint64_t bit(std::uint16_t id) { return std::uint64_t{1} << (id & 63); }
  std::uint64_t m_words[65536 / 64] = {};
  std::uint32_t m_size = 0;
};

}  // namespace edgegw::mqtt
