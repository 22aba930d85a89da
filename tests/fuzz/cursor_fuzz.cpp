// Fuzzes the spool's acknowledged position: the "ack" cursor file (docs/SPOOL.md, "Cursor
// file") and the ack marks in the last segment. The spool directory holds one valid
// segment with records 1..N and, among them, ack marks with fuzzed positions; the "ack"
// file is missing, fuzzed bytes, a torn prefix of a valid file, or two slots each valid
// (with a fuzzed position) or fuzzed. Checksums would stop blind mutation at the first
// byte, so valid slots and marks are built here and their values fuzzed.
//
// After open(): the position is the highest valid slot's (of a 24- or 4120-byte file) or
// the highest mark, whichever is higher; replay gives exactly the records after it, in
// order, with their payloads; a record appended then is replayed after a restart, which
// finds the same position (the file was remade if it was damaged).
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/stat.h>

#include <algorithm>
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

namespace {

void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  edgegw::fuzz::write_file(path, bytes.data(), bytes.size());
}

std::string payload_of(std::uint64_t seq) { return "message " + std::to_string(seq); }

void add_record(std::vector<std::uint8_t>& seg, std::uint64_t seq) {
  const std::string topic = "t", payload = payload_of(seq);
  format::RecordHeader h;
  h.seq = seq;
  h.qos = 1;
  h.topic_len = static_cast<std::uint16_t>(topic.size());
  h.body_len = static_cast<std::uint32_t>(topic.size() + payload.size());
  h.body_crc = crc32c({reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()},
                      crc32c({reinterpret_cast<const std::uint8_t*>(topic.data()), topic.size()}));
  const std::size_t at = seg.size();
  seg.resize(at + format::k_record_header);
  format::encode_record_header(seg.data() + at, h);
  seg.insert(seg.end(), topic.begin(), topic.end());
  seg.insert(seg.end(), payload.begin(), payload.end());
}

// A position: mostly near the records (where real ones are), sometimes anything.
std::uint64_t position(FuzzedDataProvider& in, std::uint64_t records) {
  return in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint64_t>(0, records + 3)
                          : in.ConsumeIntegral<std::uint64_t>();
}

// One 24-byte slot: valid with a fuzzed position, maybe with a bit flipped, or fuzzed
// bytes. `valid` gets the position if the slot checks out (docs/SPOOL.md's rules).
std::vector<std::uint8_t> slot(FuzzedDataProvider& in, std::uint64_t records, std::uint64_t* valid) {
  std::vector<std::uint8_t> s(format::k_cursor_size);
  if (in.ConsumeBool()) {
    format::encode_cursor(s.data(), position(in, records));
    if (in.ConsumeBool())
      s[in.ConsumeIntegralInRange<std::size_t>(0, s.size() - 1)] ^= std::uint8_t(1u << in.ConsumeIntegralInRange(0, 7));
  } else {
    const std::vector<std::uint8_t> raw = in.ConsumeBytes<std::uint8_t>(format::k_cursor_size);
    std::copy(raw.begin(), raw.end(), s.begin());
  }
  std::uint64_t v = 0;
  if (format::decode_cursor(s, v)) *valid = v;
  return s;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string dir = edgegw::fuzz::work_dir("edgegw-cursor-fuzz") + "/spool";
  edgegw::fuzz::remove_tree(dir);
  ::mkdir(dir.c_str(), 0700);

  // The segment: records 1..N with ack marks among them.
  const std::uint64_t records = in.ConsumeIntegralInRange<std::uint64_t>(0, 12);
  std::vector<std::uint8_t> seg(format::k_segment_header);
  format::encode_segment_header(seg.data(), 1);
  std::uint64_t highest_mark = 0;
  for (std::uint64_t seq = 1; seq <= records + 1; ++seq) {
    while (in.remaining_bytes() > 0 && in.ConsumeIntegralInRange(0, 3) == 0) {
      const std::uint64_t mark = position(in, records);
      if (mark < format::k_position_limit) highest_mark = std::max(highest_mark, mark);  // else damage
      const std::size_t at = seg.size();
      seg.resize(at + format::k_mark_bytes);
      format::encode_mark(seg.data() + at, mark);
    }
    if (seq <= records) add_record(seg, seq);
  }
  write_file(dir + "/0000000000000001.seg", seg);

  // The "ack" file, and the position it holds by the rules of docs/SPOOL.md.
  std::uint64_t cursor = 0;
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0: break;  // none
    case 1: {       // the one-slot file of edgegw 0.1
      write_file(dir + "/ack", slot(in, records, &cursor));
      break;
    }
    case 2:
    case 3: {  // two slots, maybe torn to a prefix
      std::uint64_t v0 = 0, v1 = 0;
      std::vector<std::uint8_t> file = slot(in, records, &v0);
      file.resize(format::k_cursor_slot_stride, 0);
      if (in.ConsumeBool()) file[in.ConsumeIntegralInRange<std::size_t>(format::k_cursor_size, file.size() - 1)] = 1;
      const std::vector<std::uint8_t> s1 = slot(in, records, &v1);
      file.insert(file.end(), s1.begin(), s1.end());
      if (in.ConsumeBool()) file.resize(in.ConsumeIntegralInRange<std::size_t>(0, file.size()));
      if (file.size() == format::k_cursor_file_size) cursor = std::max(v0, v1);
      else if (file.size() == format::k_cursor_size) cursor = v0;
      write_file(dir + "/ack", file);
      break;
    }
    case 4: {  // anything
      const std::vector<std::uint8_t> raw =
          in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, 4200));
      std::uint64_t v0 = 0, v1 = 0;
      if (raw.size() == format::k_cursor_size) format::decode_cursor(raw, v0);
      if (raw.size() == format::k_cursor_file_size) {
        format::decode_cursor(std::span(raw).first(format::k_cursor_size), v0);
        format::decode_cursor(std::span(raw).subspan(format::k_cursor_slot_stride), v1);
      }
      cursor = std::max(v0, v1);
      write_file(dir + "/ack", raw);
      break;
    }
  }

  Options o;
  o.dir = dir;
  o.max_bytes = 1 << 20;
  o.segment_bytes = 64 * 1024;
  o.batch_bytes = 64 * 1024;
  o.sync = false;
  const std::uint64_t acked = std::max(cursor, highest_mark);
  std::uint64_t appended = 0;
  {
    Spool s(o);
    std::string error;
    check(s.open(error));
    check(s.acked_seq() == acked);
    // Exactly the records after the position, in order.
    std::vector<std::uint8_t> buf(64);
    Record r;
    std::uint64_t expect = acked + 1;
    for (std::uint64_t from = acked + 1; s.read_next(from, UINT64_MAX, buf, r) == Read::ok; from = r.header.seq + 1) {
      check(r.header.seq == expect++ && r.header.seq <= records);
      check(std::string(r.payload.begin(), r.payload.end()) == payload_of(r.header.seq));
    }
    check(expect == std::max(acked, records) + 1);
    const std::uint8_t payload[] = {'n', 'e', 'w'};
    check(s.append("t", payload, 1, false, 0, appended) == Append::ok && s.commit());
    check(appended > acked && appended > records);
  }
  // A restart finds the same position, and the new record after it.
  Spool again(o);
  std::string error;
  check(again.open(error) && again.acked_seq() == acked && again.next_seq() == appended + 1);
  std::vector<std::uint8_t> buf(64);
  Record r;
  check(again.read_next(std::max(acked, records) + 1, UINT64_MAX, buf, r) == Read::ok && r.header.seq == appended);
  return 0;
}
