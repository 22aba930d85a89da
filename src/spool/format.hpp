// The spool's on-disk format (docs/SPOOL.md draws it): little-endian fixed headers, each
// with its own CRC32C, so that a length is trusted only once its header checks out.
// Pure functions over byte spans; no I/O, no allocation.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "spool/crc32c.hpp"

namespace edgegw::spool::format {

inline void put16(std::uint8_t* p, std::uint16_t v) { p[0] = std::uint8_t(v), p[1] = std::uint8_t(v >> 8); }
inline void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = std::uint8_t(v >> (8 * i));
}
inline void put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = std::uint8_t(v >> (8 * i));
}
inline std::uint16_t get16(const std::uint8_t* p) { return std::uint16_t(p[0] | p[1] << 8); }
inline std::uint32_t get32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
inline std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

// Sequence numbers stay below 2^63 and acknowledged positions below 2^62 (no spool gives
// out that many, and after any position 2^62 more seqs remain): a larger one that checks
// out was never written by edgegw, and is damage. (A position of 2^64-1 would wrap the next
// seq to 0 and make every later record count as acknowledged.)
inline constexpr std::uint64_t k_seq_limit = std::uint64_t{1} << 63;
inline constexpr std::uint64_t k_position_limit = std::uint64_t{1} << 62;

// ---- segment file header: 32 bytes at offset 0 of every NNNNNNNNNNNNNNNN.seg ----
inline constexpr std::uint8_t k_segment_magic[8] = {'E', 'G', 'W', 'S', 'P', 'O', 'O', 'L'};
// 2 adds ack marks (a version 1 segment has none); 3 adds the record extension (a version 2
// segment's records have none).
inline constexpr std::uint32_t k_version = 3;
inline constexpr std::size_t k_segment_header = 32;

inline void encode_segment_header(std::uint8_t* out, std::uint64_t first_seq) {
  std::memset(out, 0, k_segment_header);
  std::memcpy(out, k_segment_magic, 8);
  put32(out + 8, k_version);
  put64(out + 16, first_seq);
  put32(out + 28, crc32c({out, 28}));
}
// The segment's first sequence number, or 0 if the header is damaged.
inline std::uint64_t decode_segment_header(const std::uint8_t* in) {
  if (std::memcmp(in, k_segment_magic, 8) != 0 || get32(in + 8) < 1 || get32(in + 8) > k_version) return 0;
  if (get32(in + 28) != crc32c({in, 28})) return 0;
  return get64(in + 16);
}

// ---- record: 36-byte header, then the extension (since version 3), topic, payload ----
// An ack mark is a record with the mark flag, seq 0 and an 8-byte body: the acknowledged
// position when its batch was written, so that the sync that makes records durable also
// persists how far upstream got (recovery takes the last segment's highest mark).
inline constexpr std::uint8_t k_record_magic[4] = {'E', 'G', 'W', 'R'};
inline constexpr std::size_t k_record_header = 36;
inline constexpr std::uint8_t k_flag_retain = 0x04;
inline constexpr std::uint8_t k_flag_mark = 0x08;
inline constexpr std::uint8_t k_flag_expiry = 0x10;       // the sensor set an MQTT 5 Message Expiry Interval
inline constexpr std::uint8_t k_flag_wall_synced = 0x20;  // the wall clock was synchronized at receipt
inline constexpr std::uint8_t k_flags_known = 0x3f;
// The extension: the first body bytes of a message record, counted by header byte 27
// (0: none, a version 1 or 2 record). What ages a record (docs/SPOOL.md, "Message age"):
// boot_ns u64 (CLOCK_BOOTTIME at receipt), boot u32 (which boot: a hash of the kernel's
// boot_id, 0 unknown), expiry_s u32 (the Message Expiry Interval, if k_flag_expiry).
inline constexpr std::uint8_t k_ext_bytes = 16;
inline constexpr std::size_t k_mark_bytes = k_record_header + 8;

// What the extension holds (flags in header byte 26, fields in the body).
struct RecordExt {
  std::uint64_t boot_ns = 0;   // CLOCK_BOOTTIME when the message reached edgegw
  std::uint32_t boot = 0;      // the boot that was (boot_hash of its boot_id; 0: unknown)
  std::uint32_t expiry_s = 0;  // the Message Expiry Interval the sensor set, if has_expiry
  bool has_expiry = false;
  bool wall_synced = false;  // received_ns came from a synchronized wall clock
};

struct RecordHeader {
  std::uint32_t body_len = 0;  // topic + payload
  std::uint64_t seq = 0;
  std::uint64_t received_ns = 0;  // CLOCK_REALTIME when the message reached edgegw
  std::uint16_t topic_len = 0;
  std::uint8_t qos = 0;
  bool retain = false;
  bool mark = false;  // an ack mark (body: the acknowledged seq), not a message
  std::uint32_t body_crc = 0;
  std::uint8_t ext_len = 0;  // 0 or k_ext_bytes; body_len counts it
  RecordExt ext;             // its flags from the header; its fields by decode_ext, once the body is read
};

// The extension of `h` into out[0, k_ext_bytes).
inline void encode_ext(std::uint8_t* out, const RecordExt& e) {
  put64(out, e.boot_ns);
  put32(out + 8, e.boot);
  put32(out + 12, e.has_expiry ? e.expiry_s : 0);
}
inline void decode_ext(const std::uint8_t* in, RecordExt& e) {
  e.boot_ns = get64(in);
  e.boot = get32(in + 8);
  e.expiry_s = get32(in + 12);
}

// A boot's identity in 32 bits: FNV-1a of the kernel's boot_id text, never 0.
inline std::uint32_t boot_hash(const char* text, std::size_t len) {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < len; ++i) h = (h ^ static_cast<std::uint8_t>(text[i])) * 16777619u;
  return h ? h : 1;
}

inline void encode_record_header(std::uint8_t* out, const RecordHeader& h) {
  std::memcpy(out, k_record_magic, 4);
  put32(out + 4, h.body_len);
  put64(out + 8, h.seq);
  put64(out + 16, h.received_ns);
  put16(out + 24, h.topic_len);
  out[26] = std::uint8_t((h.qos & 3) | (h.retain ? k_flag_retain : 0) | (h.mark ? k_flag_mark : 0) |
                         (h.ext.has_expiry ? k_flag_expiry : 0) | (h.ext.wall_synced ? k_flag_wall_synced : 0));
  out[27] = h.ext_len;
  put32(out + 28, h.body_crc);
  put32(out + 32, crc32c({out, 32}));
}

// False if the magic, the header CRC or the field ranges are wrong.
inline bool decode_record_header(const std::uint8_t* in, RecordHeader& h) {
  if (std::memcmp(in, k_record_magic, 4) != 0 || get32(in + 32) != crc32c({in, 32})) return false;
  h.body_len = get32(in + 4);
  h.seq = get64(in + 8);
  h.received_ns = get64(in + 16);
  h.topic_len = get16(in + 24);
  h.qos = in[26] & 3;
  h.retain = (in[26] & k_flag_retain) != 0;
  h.mark = (in[26] & k_flag_mark) != 0;
  h.body_crc = get32(in + 28);
  h.ext_len = in[27];
  h.ext = RecordExt{};
  h.ext.has_expiry = (in[26] & k_flag_expiry) != 0;
  h.ext.wall_synced = (in[26] & k_flag_wall_synced) != 0;
  if (h.mark && (h.seq != 0 || h.body_len != 8 || h.topic_len != 0 || in[26] != k_flag_mark || h.ext_len != 0)) {
    return false;
  }
  if (h.ext_len != 0 && h.ext_len != k_ext_bytes) return false;
  if (h.ext_len == 0 && (in[26] & (k_flag_expiry | k_flag_wall_synced)) != 0) return false;
  return std::uint64_t{h.topic_len} + h.ext_len <= h.body_len && h.qos <= 2 && (in[26] & ~k_flags_known) == 0 &&
         h.seq < k_seq_limit;
}

// An ack mark for `acked_seq`, k_mark_bytes long.
inline void encode_mark(std::uint8_t* out, std::uint64_t acked_seq) {
  RecordHeader h;
  h.body_len = 8;
  h.mark = true;
  put64(out + k_record_header, acked_seq);
  h.body_crc = crc32c({out + k_record_header, 8});
  encode_record_header(out, h);
}

// ---- acknowledged-position file "ack": two 24-byte slots, at 0 and 4096 ----
// Each update overwrites the older slot in place and fdatasyncs (one sync, no rename); a
// torn write can only damage the slot being written, and the other holds the position
// before it. The highest valid slot wins. (A 24-byte file is the older one-slot form,
// still read.)
inline constexpr std::uint8_t k_cursor_magic[8] = {'E', 'G', 'W', 'A', 'C', 'K', '0', '1'};
inline constexpr std::size_t k_cursor_size = 24;
inline constexpr std::size_t k_cursor_slot_stride = 4096;  // the slots never share a block
inline constexpr std::size_t k_cursor_file_size = k_cursor_slot_stride + k_cursor_size;

inline void encode_cursor(std::uint8_t* out, std::uint64_t acked_seq) {
  std::memset(out, 0, k_cursor_size);
  std::memcpy(out, k_cursor_magic, 8);
  put64(out + 8, acked_seq);
  put32(out + 20, crc32c({out, 20}));
}
inline bool decode_cursor(std::span<const std::uint8_t> in, std::uint64_t& acked_seq) {
  if (in.size() != k_cursor_size || std::memcmp(in.data(), k_cursor_magic, 8) != 0) return false;
  if (format::get32(in.data() + 20) != crc32c(in.first(20))) return false;
  acked_seq = get64(in.data() + 8);
  return acked_seq < k_position_limit;
}

}  // namespace edgegw::spool::format
