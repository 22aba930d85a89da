// Fuzzes spool recovery and replay with arbitrary segment and cursor files, as a power
// cut, a bad flash block or a stray write could leave them. The spool must open (a
// damaged spool never stops the daemon), must never return a record that fails its
// checksum or lies outside the caller's buffer, and must take new records afterwards.
//
// Input: byte 0 holds flags (bit 0: start the segment with a valid header; bit 1: the
// next 24 bytes are the one-slot "ack" cursor file; else bit 2: the next 48 bytes are the
// two slots of the "ack" file); the rest is the segment file's content, records and ack
// marks alike.
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz/fuzz_files.hpp"
#include "spool/crc32c.hpp"
#include "spool/format.hpp"
#include "spool/spool.hpp"

using namespace edgegw::spool;
using edgegw::fuzz::write_file;

namespace {

// Reads every record; aborts on anything that must not come out of a damaged spool.
std::uint64_t replay(Spool& s) {
  std::vector<std::uint8_t> buf(512);  // exact size: an overread is an ASan report
  Record r;
  std::uint64_t from = s.acked_seq() + 1, n = 0, last = 0;
  while (s.read_next(from, UINT64_MAX, buf, r) == Read::ok) {
    const auto* t = reinterpret_cast<const std::uint8_t*>(r.topic.data());
    if (t != buf.data() || r.topic.size() + r.payload.size() != r.header.body_len || r.header.body_len > buf.size())
      std::abort();
    if (crc32c(r.payload, crc32c({t, r.topic.size()})) != r.header.body_crc) std::abort();
    if (r.header.seq < from || r.header.seq <= last) std::abort();  // in order, never twice
    last = r.header.seq;
    from = r.header.seq + 1;
    ++n;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string spool_dir = edgegw::fuzz::work_dir("edgegw-spool-fuzz") + "/spool";
  edgegw::fuzz::remove_tree(spool_dir);
  const std::uint8_t flags = data[0];
  ++data, --size;
  if ((flags & 2) && size >= format::k_cursor_size) {  // the one-slot "ack" file of version 1
    ::mkdir(spool_dir.c_str(), 0700);
    write_file(spool_dir + "/ack", data, format::k_cursor_size);
    data += format::k_cursor_size, size -= format::k_cursor_size;
  } else if ((flags & 4) && size >= 2 * format::k_cursor_size) {  // the two-slot one
    std::vector<std::uint8_t> ack(format::k_cursor_file_size, 0);
    std::memcpy(ack.data(), data, format::k_cursor_size);
    std::memcpy(ack.data() + format::k_cursor_slot_stride, data + format::k_cursor_size, format::k_cursor_size);
    ::mkdir(spool_dir.c_str(), 0700);
    write_file(spool_dir + "/ack", ack.data(), ack.size());
    data += 2 * format::k_cursor_size, size -= 2 * format::k_cursor_size;
  }
  std::vector<std::uint8_t> segment;
  if (flags & 1) {
    segment.resize(format::k_segment_header);
    format::encode_segment_header(segment.data(), 1);
  }
  segment.insert(segment.end(), data, data + size);
  ::mkdir(spool_dir.c_str(), 0700);
  write_file(spool_dir + "/0000000000000001.seg", segment.data(), segment.size());

  Options o;
  o.dir = spool_dir;
  o.max_bytes = 1 << 20;
  o.segment_bytes = 64 * 1024;
  o.sync = false;
  std::uint64_t appended = 0;
  {
    Spool s(o);
    std::string error;
    if (!s.open(error)) std::abort();  // damage is recovered from, never a refusal
    replay(s);
    const std::uint8_t payload[] = {'o', 'k'};
    if (s.append("after/damage", payload, 1, false, 0, appended) != Append::ok || !s.commit()) std::abort();
  }
  // What was appended after recovery is there after a restart.
  Spool again(o);
  std::string error;
  if (!again.open(error) || again.next_seq() != appended + 1) std::abort();
  std::vector<std::uint8_t> buf(64);
  Record r;
  if (again.read_next(appended, UINT64_MAX, buf, r) != Read::ok || r.header.seq != appended) std::abort();
  return 0;
}
