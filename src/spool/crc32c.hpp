// CRC32C (Castagnoli), as used by iSCSI, ext4 and LevelDB: the ARMv8 CRC32C instructions
// where the target has them (the boards), else slicing-by-8 over a table built at compile
// time (8 KiB). Debian 12 packages no CRC32C library, and each is one loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace edgegw::spool {

// Continues `crc` (0 to start) over `data`.
std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t crc = 0);

}  // namespace edgegw::spool
