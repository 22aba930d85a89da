// The spool on a real filesystem: order, recovery, damage, bounds, I/O errors.
#include "spool/spool.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "spool/crc32c.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::spool {
namespace {

using test::read_file;
using test::TempDir;

std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

Options options(const TempDir& dir, std::uint64_t max_bytes = 1 << 20, bool sync = false) {
  Options o;
  o.dir = dir.file("state/spool");
  o.max_bytes = max_bytes;
  o.segment_bytes = 64 * 1024;
  o.sync = sync;
  return o;
}

void open_ok(Spool& s) {
  std::string error;
  ASSERT_TRUE(s.open(error)) << error;
}

std::uint64_t add(Spool& s, std::uint64_t i, std::size_t size = 40) {
  std::string payload = "payload-" + std::to_string(i);
  payload.resize(std::max(size, payload.size()), '.');
  std::uint64_t seq = 0;
  EXPECT_EQ(s.append("t/" + std::to_string(i % 7), bytes(payload), 1, i % 5 == 0, 1000 + i, seq), Append::ok);
  return seq;
}

// Every record below `limit` from `from` on, as "seq:payload-prefix".
std::vector<std::uint64_t> read_all(Spool& s, std::uint64_t from = 1, std::uint64_t limit = UINT64_MAX) {
  std::vector<std::uint64_t> seqs;
  std::vector<std::uint8_t> buf(4096);
  Record r;
  while (s.read_next(from, limit, buf, r) == Read::ok) {
    std::string payload(r.payload.begin(), r.payload.end());
    EXPECT_EQ(payload.substr(0, payload.find('.')), "payload-" + std::to_string(r.header.seq - 1)) << r.header.seq;
    EXPECT_EQ(std::string(r.topic), "t/" + std::to_string((r.header.seq - 1) % 7));
    EXPECT_EQ(r.header.received_ns, 1000 + r.header.seq - 1);
    EXPECT_EQ(r.header.retain, (r.header.seq - 1) % 5 == 0);
    seqs.push_back(r.header.seq);
    from = r.header.seq + 1;
  }
  return seqs;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = first; i <= last; ++i) v.push_back(i);
  return v;
}

std::string only_segment_path(const TempDir& dir, int index) {
  std::vector<std::string> names;
  FILE* p = ::popen(("ls " + dir.file("state/spool") + "/*.seg").c_str(), "r");
  char line[512];
  while (std::fgets(line, sizeof line, p)) names.emplace_back(line, std::strlen(line) - 1);
  ::pclose(p);
  return index < static_cast<int>(names.size()) ? names[static_cast<std::size_t>(index)] : "";
}

void poke(const std::string& path, long offset, std::uint8_t xor_mask) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ xor_mask));
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c(bytes("123456789")), 0xe3069283u);  // the standard check value
  EXPECT_EQ(crc32c(bytes("")), 0u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(bytes(zeros)), 0x8a9136aau);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(bytes("6789"), crc32c(bytes("12345"))), 0xe3069283u);  // continued
}

TEST(Spool, AppendCommitReopenReadsEverythingInOrder) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    for (int i = 0; i < 5000; ++i) add(s, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(s.commit());
    EXPECT_EQ(s.durable_seq(), 5000u);
    EXPECT_GT(s.segments(), 3u);
  }
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(s.next_seq(), 5001u);
  EXPECT_EQ(s.stats().recovered_records, 5000u);
  EXPECT_EQ(read_all(s), range(1, 5000));
  // recovery read only the last segment (plus one read window), not the whole spool
  EXPECT_LE(s.stats().recovery_bytes_read, s.segment_bytes() + 64 * 1024);
}

TEST(Spool, SyncCommitIsOneFsyncPerBatch) {
  TempDir dir;
  Spool s(options(dir, 1 << 20, true));
  open_ok(s);
  add(s, 0);  // creates the first segment: file and directory fsync
  const std::uint64_t base = s.stats().fsyncs;
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(s.stats().fsyncs, base + 1);
  for (int i = 1; i <= 10; ++i) add(s, static_cast<std::uint64_t>(i));
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(s.stats().fsyncs, base + 2);  // ten records, one fdatasync
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(s.stats().fsyncs, base + 2);  // nothing new: nothing synced
}

TEST(Spool, AckedPositionSurvivesRestartAndAckedSegmentsAreDeleted) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    for (int i = 0; i < 3000; ++i) add(s, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(s.commit());
    const std::size_t before = s.segments();
    s.ack(2000);
    EXPECT_LT(s.segments(), before);
    ASSERT_TRUE(s.persist_cursor());
  }
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(s.acked_seq(), 2000u);
  EXPECT_EQ(read_all(s, s.acked_seq() + 1), range(2001, 3000));
}

TEST(Spool, TornTailIsCutAndAppendingGoesOn) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    for (int i = 0; i < 100; ++i) add(s, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(s.commit());
  }
  std::string path = only_segment_path(dir, 0);
  {  // half a record, as a power cut mid-write leaves it
    std::ofstream f(path, std::ios::app | std::ios::binary);
    f.write("EGWR\x10\x00\x00\x00partial", 15);
  }
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(s.stats().torn_bytes, 15u);
  EXPECT_EQ(s.stats().corrupt, 0u);
  EXPECT_EQ(s.next_seq(), 101u);
  add(s, 100);
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(read_all(s), range(1, 101));
}

TEST(Spool, CorruptRecordMidSegmentIsSkippedAndCounted) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    for (int i = 0; i < 2000; ++i) add(s, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(s.commit());
  }
  std::string first = only_segment_path(dir, 0), last = only_segment_path(dir, 1);
  ASSERT_FALSE(last.empty());
  // Find record offsets by walking the lengths, as the format defines them.
  auto offset_of = [](const std::string& path, int n) {
    std::ifstream f(path, std::ios::binary);
    long off = 32;
    for (int i = 0; i < n; ++i) {
      unsigned char len[4];
      f.seekg(off + 4);
      f.read(reinterpret_cast<char*>(len), 4);
      off += 36 + (len[0] | len[1] << 8 | len[2] << 16 | len[3] << 24);
    }
    return off;
  };
  poke(first, offset_of(first, 10) + 40, 0xff);  // a payload byte of record 11
  poke(first, offset_of(first, 20) + 5, 0x01);   // the length field of record 21
  Spool s(options(dir));
  open_ok(s);
  std::vector<std::uint64_t> got = read_all(s);
  std::vector<std::uint64_t> want = range(1, 2000);
  std::erase(want, 11u);
  std::erase(want, 21u);
  EXPECT_EQ(got, want);
  EXPECT_EQ(s.stats().corrupt, 2u);
  EXPECT_EQ(s.stats().torn_bytes, 0u);
}

TEST(Spool, CorruptRecordInTheLastSegmentIsNotMistakenForATornTail) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    for (int i = 0; i < 50; ++i) add(s, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(s.commit());
  }
  poke(only_segment_path(dir, 0), 32 + 36 + 2, 0x40);  // topic byte of record 1
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(s.stats().torn_bytes, 0u);
  EXPECT_EQ(s.stats().corrupt, 1u);
  EXPECT_EQ(s.next_seq(), 51u);
  EXPECT_EQ(read_all(s), range(2, 50));
}

// Found by the spool fuzzer: a record whose header checks out but whose body lost bytes
// claims a length that reaches into the next record. Skipping by that length used to
// jump past the next good record, and recovery then cut it (and every later, acknowledged
// record) off as a torn tail.
TEST(Spool, RecordWhoseBodyFailsIsNotTrustedForItsLength) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    for (int i = 0; i < 3; ++i) add(s, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(s.commit());
  }
  const std::string path = only_segment_path(dir, 0);
  std::string file = read_file(path);
  ASSERT_EQ(file.size(), 32u + 3 * 79);
  file.erase(32 + 79 + 36 + 10, 20);  // 20 bytes out of record 2's body
  std::ofstream(path, std::ios::binary | std::ios::trunc) << file;
  {
    Spool s(options(dir));
    open_ok(s);
    EXPECT_EQ(s.next_seq(), 4u);
    EXPECT_EQ(s.stats().torn_bytes, 0u);
    add(s, 3);
    ASSERT_TRUE(s.commit());
  }
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(read_all(s), (std::vector<std::uint64_t>{1, 3, 4}));
  EXPECT_EQ(s.stats().corrupt, 1u);
}

TEST(Spool, DamagedCursorMeansResendNotLoss) {
  TempDir dir;
  {
    Spool s(options(dir));
    open_ok(s);
    for (int i = 0; i < 10; ++i) add(s, static_cast<std::uint64_t>(i));
    ASSERT_TRUE(s.commit());
    s.ack(5);
    ASSERT_TRUE(s.persist_cursor());
  }
  poke(dir.file("state/spool/ack"), 10, 0x01);
  Spool s(options(dir));
  open_ok(s);
  EXPECT_EQ(s.acked_seq(), 0u);
  EXPECT_EQ(read_all(s), range(1, 10));
}

TEST(Spool, FullWithBackpressureRefusesUntilAcked) {
  TempDir dir;
  Options o = options(dir, 256 * 1024);
  Spool s(o);
  open_ok(s);
  std::uint64_t seq = 0, n = 0;
  std::string payload(1000, 'x');
  while (s.append("t", bytes(payload), 1, false, 0, seq) == Append::ok) ++n;
  EXPECT_GT(n, 200u);
  EXPECT_LE(s.bytes(), o.max_bytes);
  EXPECT_EQ(s.stats().full_refusals, 1u);
  EXPECT_EQ(s.append("t", bytes(payload), 1, false, 0, seq), Append::full);
  ASSERT_TRUE(s.commit());
  s.ack(100);  // the first segment is wholly acknowledged: it goes
  EXPECT_EQ(s.append("t", bytes(payload), 1, false, 0, seq), Append::ok);
  EXPECT_EQ(seq, n + 1);
  EXPECT_EQ(s.stats().dropped_records, 0u);
}

TEST(Spool, FullWithDropOldestDeletesTheOldestSegmentAndCountsIt) {
  TempDir dir;
  Options o = options(dir, 256 * 1024);
  o.drop_oldest = true;
  Spool s(o);
  open_ok(s);
  std::uint64_t seq = 0;
  std::string payload(1000, 'x');
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(s.append("t", bytes(payload), 1, false, 0, seq), Append::ok);
  ASSERT_TRUE(s.commit());
  EXPECT_LE(s.bytes(), o.max_bytes);
  EXPECT_GT(s.stats().dropped_segments, 0u);
  // every record appended is either still there or counted as dropped
  std::vector<std::uint8_t> buf(4096);
  Record r;
  std::uint64_t kept = 0, from = 1, first = 0;
  while (s.read_next(from, UINT64_MAX, buf, r) == Read::ok) {
    if (!first) first = r.header.seq;
    ++kept;
    from = r.header.seq + 1;
  }
  EXPECT_EQ(kept + s.stats().dropped_records, 1000u);
  EXPECT_EQ(first, s.stats().dropped_records + 1);  // the oldest went, the newest stayed
}

TEST(Spool, WriteErrorFailsForGoodAndNothingMoreIsDurable) {
  TempDir dir;
  Spool s(options(dir, 1 << 20, true));
  open_ok(s);
  for (int i = 0; i < 10; ++i) add(s, static_cast<std::uint64_t>(i));
  ASSERT_TRUE(s.commit());
  // A real write error: the file size limit (EFBIG) instead of a full disk.
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old;
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = 2000;
  ::setrlimit(RLIMIT_FSIZE, &small);
  std::uint64_t seq = 0;
  for (int i = 10; i < 100; ++i) {
    std::string p = "payload-" + std::to_string(i);
    if (s.append("t/x", bytes(p), 1, false, 0, seq) != Append::ok) break;
  }
  EXPECT_FALSE(s.commit());
  ::setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_TRUE(s.failed());
  EXPECT_NE(s.error().find("File too large"), std::string::npos) << s.error();
  EXPECT_EQ(s.durable_seq(), 10u);
  EXPECT_FALSE(s.commit());  // never retried
  EXPECT_EQ(s.append("t", bytes("x"), 1, false, 0, seq), Append::failed);
}

TEST(Spool, UnwritableStateDirectoryIsAClearError) {
  TempDir dir;
  std::ofstream(dir.file("file")) << "x";
  Options o = options(dir);
  o.dir = dir.file("file/spool");
  Spool s(o);
  std::string error;
  EXPECT_FALSE(s.open(error));
  EXPECT_NE(error.find(dir.file("file")), std::string::npos) << error;
  EXPECT_NE(error.find("Not a directory"), std::string::npos) << error;
}

TEST(Spool, SecondOpenOfTheSameDirectoryIsRefused) {
  TempDir dir;
  Spool a(options(dir)), b(options(dir));
  open_ok(a);
  std::string error;
  EXPECT_FALSE(b.open(error));
  EXPECT_NE(error.find("in use by another edgegw"), std::string::npos) << error;
}

}  // namespace
}  // namespace edgegw::spool
