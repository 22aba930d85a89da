// The spool's own rules under faults a crash-consistency review found broken, one test a
// rule: I/O errors are not damage, recovery syncs what it keeps, a full disk never stops a
// start, the header names a segment, a lowered size limit is no wedge, and what is
// missing is said.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "spool/spool.hpp"
#include "support/fault_disk.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::spool {
namespace {

using test::FaultDisk;
using test::read_file;
using test::TempDir;

std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

Options options(const TempDir& dir, Disk* disk = nullptr, std::uint64_t max_bytes = 1 << 20) {
  Options o;
  o.dir = dir.file("state/spool");
  o.max_bytes = max_bytes;
  o.segment_bytes = 16 * 1024;
  o.disk = disk;
  return o;
}

std::string seg_path(const TempDir& dir, std::uint64_t first) {
  char name[32];
  std::snprintf(name, sizeof name, "/%016llx.seg", static_cast<unsigned long long>(first));
  return dir.file("state/spool") + name;
}

// Appends `count` records of ~1000 bytes ("m<seq>..."), committing as batches fill.
void append(Spool& s, int count) {
  for (int i = 0; i < count; ++i) {
    const std::string payload = "m" + std::to_string(s.next_seq()) + std::string(1000, '.');
    std::uint64_t seq = 0;
    Append a = s.append("t", bytes(payload), 1, false, 0, seq);
    if (a == Append::busy && s.commit()) a = s.append("t", bytes(payload), 1, false, 0, seq);
    ASSERT_EQ(a, Append::ok);
  }
  ASSERT_TRUE(s.commit());
}

std::vector<std::uint64_t> seqs_of(Spool& s) {
  std::vector<std::uint64_t> out;
  std::vector<std::uint8_t> buf(2048);
  Record r;
  for (std::uint64_t from = s.acked_seq() + 1; s.read_next(from, UINT64_MAX, buf, r) == Read::ok;) {
    out.push_back(r.header.seq);
    from = r.header.seq + 1;
  }
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = first; i <= last; ++i) v.push_back(i);
  return v;
}

void open_ok(Spool& s) {
  std::string error;
  ASSERT_TRUE(s.open(error)) << error;
}

// Review row 1: an EIO reading the last segment at recovery was taken for a torn tail,
// and the whole segment was cut.
TEST(SpoolFaults, an_unreadable_segment_at_recovery_fails_the_start_and_cuts_nothing) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    append(s, 10);
  }
  {
    FaultDisk disk(dir.file("state/spool"));
    disk.fail_on("pread 0000000000000001.seg", EIO, 2);  // the header reads; the scan does not
    Spool s(options(dir, &disk));
    std::string error;
    EXPECT_FALSE(s.open(error));
    EXPECT_NE(error.find("0000000000000001.seg: reading at recovery: Input/output error (EIO)"), std::string::npos)
        << error;
  }
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(seqs_of(s), range(1, 10)) << "an I/O error cut acknowledged records";
  EXPECT_EQ(s.stats().torn_bytes, 0u);
}

TEST(SpoolFaults, an_unreadable_record_at_replay_fails_the_spool_and_is_not_skipped_as_damage) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    append(s, 40);  // three segments: replay reads the first two from disk
  }
  FaultDisk disk(dir.file("state/spool"));
  disk.fail_on("pread 0000000000000001.seg", EIO, 2);
  Spool s(options(dir, &disk));
  open_ok(s);
  std::vector<std::uint8_t> buf(2048);
  Record r;
  EXPECT_EQ(s.read_next(1, UINT64_MAX, buf, r), Read::failed);
  EXPECT_TRUE(s.failed());
  EXPECT_NE(s.error().find("Input/output error"), std::string::npos) << s.error();
  EXPECT_EQ(s.stats().corrupt, 0u);
}

// Review row 3: no room for the "ack" file at start was fatal, at every restart.
TEST(SpoolFaults, no_room_for_the_ack_file_at_start_is_no_reason_not_to_start) {
  TempDir dir;
  {
    FaultDisk disk(dir.file("state/spool"));
    disk.fail_on("openat ack.tmp", ENOSPC, 1);
    Spool s(options(dir, &disk));
    open_ok(s);
    append(s, 5);
    s.ack(3);
    ASSERT_TRUE(s.persist_cursor());  // the file is made now
    EXPECT_EQ(s.stats().cursor_writes, 1u);
  }
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(s.acked_seq(), 3u);
}

// Review row 5: a last segment larger than a lowered spool.max_bytes, wholly acknowledged,
// was never deleted and kept the spool full.
TEST(SpoolFaults, a_lowered_max_bytes_does_not_leave_the_spool_full_for_ever) {
  TempDir dir;
  {
    Options o = options(dir, nullptr, 64ull << 20);
    o.segment_bytes = 4 << 20;
    Spool s(o);
    open_ok(s);
    append(s, 3000);  // ~3 MB in one segment
    s.ack(s.durable_seq());
    ASSERT_TRUE(s.persist_cursor());
  }
  Options o = options(dir, nullptr, 2 << 20);
  o.segment_bytes = 0;  // from max_bytes: 128 KiB
  Spool s(o);
  open_ok(s);
  std::uint64_t seq = 0;
  EXPECT_EQ(s.append("t", bytes("after"), 1, false, 0, seq), Append::ok);
  ASSERT_TRUE(s.commit());
  EXPECT_LE(s.bytes(), o.max_bytes);
}

// Review row 6: a filesystem without fallocate left segments unreserved, so a full disk
// later failed a write of records (fatal) instead of showing as a full spool.
TEST(SpoolFaults, without_fallocate_the_room_of_a_segment_is_written_as_zeros) {
  TempDir dir;
  FaultDisk disk(dir.file("state/spool"));
  disk.fail_on("fallocate", EOPNOTSUPP);
  Spool s(options(dir, &disk));
  open_ok(s);
  append(s, 40);  // three segments
  EXPECT_FALSE(s.failed());
  EXPECT_EQ(read_file(seg_path(dir, 1)).size(), 16u * 1024) << "reserved to its full size";
}

TEST(SpoolFaults, a_quota_reached_is_a_full_spool_not_a_failure) {
  TempDir dir;
  FaultDisk disk(dir.file("state/spool"));
  disk.fail_on("fallocate", EDQUOT);
  Spool s(options(dir, &disk));
  open_ok(s);
  std::uint64_t seq = 0;
  EXPECT_EQ(s.append("t", bytes("x"), 1, false, 0, seq), Append::full);
  EXPECT_FALSE(s.failed());
}

// Review row 7: the name won over the header, and recovery deleted a segment of
// unacknowledged records as acknowledged.
TEST(SpoolFaults, a_segment_file_renamed_by_hand_is_placed_by_its_header) {
  TempDir dir;
  std::uint64_t second = 0;
  {
    Spool s(options(dir));
    open_ok(s);
    append(s, 40);
    s.ack(10);  // 11-15 in the first segment are not acknowledged
    ASSERT_TRUE(s.persist_cursor());
  }
  for (std::uint64_t first = 2; first < 40 && !second; ++first) {
    if (::access(seg_path(dir, first).c_str(), F_OK) == 0) second = first;
  }
  ASSERT_NE(second, 0u);
  ASSERT_EQ(std::rename(seg_path(dir, second).c_str(), seg_path(dir, 2).c_str()), 0);  // as if it began at 2
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(seqs_of(s), range(11, 40));
  EXPECT_EQ(::access(seg_path(dir, second).c_str(), F_OK), 0) << "renamed back to what its header says";
}

// Review row 8: a last record whose header checks out but whose body does not still had
// its seq: the next message was given the same one.
TEST(SpoolFaults, the_seq_of_a_damaged_last_record_is_never_given_again) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    append(s, 10);
  }
  const std::string path = seg_path(dir, 1);
  std::string file = read_file(path);
  const std::size_t end = file.find_last_not_of('\0') + 1;
  file[end - 10] ^= 0x20;  // in the payload of record 10
  std::ofstream(path, std::ios::binary | std::ios::trunc) << file;
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(s.next_seq(), 11u);
}

// Review row 9: a segment file gone from the middle was passed over in silence.
TEST(SpoolFaults, records_missing_between_two_segments_are_reported) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    append(s, 45);
  }
  std::vector<std::uint64_t> firsts;
  for (std::uint64_t first = 1; first <= 45; ++first) {
    if (::access(seg_path(dir, first).c_str(), F_OK) == 0) firsts.push_back(first);
  }
  ASSERT_GE(firsts.size(), 3u);
  ASSERT_EQ(::unlink(seg_path(dir, firsts[1]).c_str()), 0);
  Spool s(options(dir));
  open_ok(s);
  const std::vector<std::uint64_t> got = seqs_of(s);
  EXPECT_EQ(got.size(), 45 - (firsts[2] - firsts[1]));
  EXPECT_EQ(s.stats().corrupt, 1u) << "the gap is counted";
}

TEST(SpoolFaults, an_empty_last_segment_gets_its_header_once) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    append(s, 5);
  }
  std::ofstream(seg_path(dir, 6));  // a crash just as segment 6 was made
  {
    Spool s(options(dir));
    open_ok(s);
    EXPECT_EQ(s.next_seq(), 6u);
  }
  const std::string header = read_file(seg_path(dir, 6)).substr(0, format::k_segment_header);
  ASSERT_EQ(header.size(), format::k_segment_header);
  EXPECT_EQ(format::decode_segment_header(reinterpret_cast<const std::uint8_t*>(header.data())), 6u);
  Spool s(options(dir));
  open_ok(s);
  std::uint64_t seq = 0;
  ASSERT_EQ(s.append("t", bytes("x"), 1, false, 0, seq), Append::ok);
  EXPECT_EQ(seq, 6u);
}

// Review row 10: the state and spool directories were made and not fsynced into their
// parents (a power cut could take them back).
TEST(SpoolFaults, made_directories_are_synced_into_their_parents) {
  TempDir dir;
  FaultDisk disk(dir.file("state/spool"));
  Spool s(options(dir, &disk));
  open_ok(s);
  ASSERT_GE(disk.log().size(), 2u);
  EXPECT_EQ(disk.log()[0], "fsync directory");
  EXPECT_EQ(disk.log()[1], "fsync directory");
}

}  // namespace
}  // namespace edgegw::spool
