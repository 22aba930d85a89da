#include "spool/crc32c.hpp"

#if defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>

#include <cstring>
#else
#include <array>
#endif

namespace edgegw::spool {

#if defined(__ARM_FEATURE_CRC32)

// Every board CPU (Cortex-A53, A72, A76) has ARMv8's CRC32C instructions: no table, and
// 8 bytes an instruction.
std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t crc) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  crc = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);  // little-endian, as the table loop reads them
    crc = __crc32cd(crc, v);
  }
  while (n--) crc = __crc32cb(crc, *p++);
  return ~crc;
}

#else

namespace {

constexpr std::uint32_t k_poly = 0x82f63b78;  // reflected Castagnoli polynomial

constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ k_poly : c >> 1;
    t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i) {
    for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
  return t;
}

constexpr auto k_tables = make_tables();

}  // namespace

std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t crc) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  crc = ~crc;
  while (n >= 8) {
    std::uint32_t lo =
        crc ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24);
    crc = k_tables[7][lo & 0xff] ^ k_tables[6][(lo >> 8) & 0xff] ^ k_tables[5][(lo >> 16) & 0xff] ^
          k_tables[4][lo >> 24] ^ k_tables[3][p[4]] ^ k_tables[2][p[5]] ^ k_tables[1][p[6]] ^ k_tables[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ k_tables[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

#endif

}  // namespace edgegw::spool
