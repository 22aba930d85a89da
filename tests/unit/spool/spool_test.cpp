// The spool on a real filesystem: order, recovery, damage, bounds, I/O errors.
#include "spool/spool.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "spool/crc32c.hpp"
#include "spool/sync_thread.hpp"
#include "spool/test_disk.hpp"
#include "support/spool_workload.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::spool {
namespace {

using test::bytes;
using test::read_file;
using test::TempDir;

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

// A spool opened as it is made (a failed open fails the test).
class OpenSpool : public Spool {
 public:
  explicit OpenSpool(Options o) : Spool(std::move(o)) { open_ok(*this); }
};

// Appends as a single-threaded user does: when the batch is full (busy), commit and go on.
Append put(Spool& s, std::string_view topic, const std::string& payload, std::uint64_t& seq, bool retain = false,
           std::uint64_t received_ns = 0) {
  Append a = s.append(topic, bytes(payload), 1, retain, received_ns, seq);
  if (a == Append::busy && s.commit()) a = s.append(topic, bytes(payload), 1, retain, received_ns, seq);
  return a;
}

// What add_records() writes: a 3-byte topic "t/N" and a 40-byte payload.
constexpr std::size_t k_topic_bytes = 3;
constexpr std::size_t k_payload_bytes = 40;
constexpr std::size_t k_record_bytes = format::k_record_header + k_topic_bytes + k_payload_bytes;

// Appends `count` records, each made from the seq it gets (read_all() checks them against it):
// seq n has payload "payload-<n-1>" padded with dots, topic "t/<(n-1) % 7>", retain when
// (n-1) % 5 == 0, and received_ns 1000 + n-1.
void add_records(Spool& s, std::uint64_t count) {
  for (std::uint64_t k = 0; k < count; ++k) {
    const std::uint64_t i = s.next_seq() - 1;
    std::string payload = "payload-" + std::to_string(i);
    payload.resize(k_payload_bytes, '.');
    std::uint64_t seq = 0;
    EXPECT_EQ(put(s, "t/" + std::to_string(i % 7), payload, seq, i % 5 == 0, 1000 + i), Append::ok);
  }
}

// A spool in `dir` holding records 1..count, committed and closed (as a daemon leaves it);
// before it closes, upstream acknowledges up to each of `acks` in turn, and each goes into
// the "ack" file.
void fill(const TempDir& dir, std::uint64_t count, std::initializer_list<std::uint64_t> acks = {}) {
  OpenSpool s(options(dir));
  add_records(s, count);
  ASSERT_TRUE(s.commit());
  for (const std::uint64_t seq : acks) {
    s.ack(seq);
    ASSERT_TRUE(s.persist_cursor());
  }
}

// The seqs of the records below `limit` from `from` on; each record's topic, payload,
// retain flag and time are checked against what add_records() made for its seq.
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

// The path of the index-th segment file in name order (the order of their seqs), or "".
std::string segment_path(const TempDir& dir, std::size_t index) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("state/spool"))) {
    if (entry.path().extension() == ".seg") names.push_back(entry.path().string());
  }
  std::sort(names.begin(), names.end());
  return index < names.size() ? names[index] : "";
}

// Where a segment's records end: the rest of the file is its preallocated room (zeros).
std::size_t used_bytes(const std::string& path) {
  const std::string file = read_file(path);
  const std::size_t last = file.find_last_not_of('\0');
  return last == std::string::npos ? 0 : last + 1;
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
  EXPECT_EQ(crc32c(bytes(zeros)), 0x8a9136aau);                           // RFC 3720 B.4
  EXPECT_EQ(crc32c(bytes("6789"), crc32c(bytes("12345"))), 0xe3069283u);  // continued
}

// The fast loop (the ARMv8 instructions on the boards, the tables elsewhere) against the
// bit-at-a-time definition, at every length up to 64 and every alignment of the start.
TEST(Crc32c, EveryLengthAndAlignmentMatchesTheBitwiseDefinition) {
  std::uint8_t buf[80];
  for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<std::uint8_t>(i * 151 + 7);
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t len = 0; len <= 64; ++len) {
      std::uint32_t c = ~0u;
      for (std::size_t i = start; i < start + len; ++i) {
        c ^= buf[i];
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      }
      ASSERT_EQ(crc32c({buf + start, len}), ~c) << "start " << start << " length " << len;
    }
  }
}

TEST(Spool, AppendCommitReopenReadsEverythingInOrder) {
  TempDir dir;
  {
    OpenSpool s(options(dir));
    add_records(s, 5000);
    ASSERT_TRUE(s.commit());
    EXPECT_EQ(s.durable_seq(), 5000u);
    EXPECT_GT(s.segments(), 3u);
  }
  OpenSpool s(options(dir));
  EXPECT_EQ(s.next_seq(), 5001u);
  EXPECT_EQ(s.stats().recovered_records, 5000u);
  EXPECT_EQ(read_all(s), range(1, 5000));
  // recovery read only the last segment (plus one read window), not the whole spool
  EXPECT_LE(s.stats().recovery_bytes_read, s.segment_bytes() + 64 * 1024);
}

// A segment file is made at its full size ahead of use (fallocate: the blocks reserved, reading
// as zeros), so that a sync writes the data and no file size; the zeros are room, not damage.
TEST(Spool, SegmentsArePreallocatedAndTheirRoomIsNotDamage) {
  TempDir dir;
  fill(dir, 10);
  const std::string path = segment_path(dir, 0);
  EXPECT_EQ(read_file(path).size(), 64u * 1024);
  const std::size_t used = used_bytes(path);
  {
    OpenSpool s(options(dir));
    EXPECT_EQ(s.stats().corrupt, 0u);
    EXPECT_EQ(s.stats().torn_bytes, 0u);
    add_records(s, 1);
    ASSERT_TRUE(s.commit());
    EXPECT_EQ(read_all(s), range(1, 11));
  }
  EXPECT_EQ(read_file(path).size(), 64u * 1024) << "appended in place, after the last record";
  EXPECT_GT(used_bytes(path), used);
  OpenSpool s(options(dir));
  EXPECT_EQ(read_all(s), range(1, 11));
  EXPECT_EQ(s.stats().corrupt, 0u);
}

TEST(Spool, SyncCommitIsOneFsyncPerBatch) {
  TempDir dir;
  OpenSpool s(options(dir, 1 << 20, true));
  add_records(s, 1);
  std::uint64_t base = s.stats().fsyncs;
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(s.stats().fsyncs, base + 2);  // the first segment: its records, and its name in the directory
  base = s.stats().fsyncs;
  add_records(s, 10);
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(s.stats().fsyncs, base + 1);  // ten records, one fdatasync
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(s.stats().fsyncs, base + 1);  // nothing new: nothing synced
}

TEST(Spool, AckedPositionSurvivesRestartAndAckedSegmentsAreDeleted) {
  TempDir dir;
  {
    OpenSpool s(options(dir));
    add_records(s, 3000);
    ASSERT_TRUE(s.commit());
    const std::size_t before = s.segments();
    s.ack(2000);
    EXPECT_LT(s.segments(), before);
    ASSERT_TRUE(s.persist_cursor());
  }
  OpenSpool s(options(dir));
  EXPECT_EQ(s.acked_seq(), 2000u);
  EXPECT_EQ(read_all(s, s.acked_seq() + 1), range(2001, 3000));
}

TEST(Spool, TornTailIsCutAndAppendingGoesOn) {
  TempDir dir;
  fill(dir, 100);
  std::string path = segment_path(dir, 0);
  {  // half a record after the last, as a power cut mid-write leaves it
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<long>(used_bytes(path)));
    f.write("EGWR\x10\x00\x00\x00partial", 15);
  }
  OpenSpool s(options(dir));
  EXPECT_EQ(s.stats().torn_bytes, 15u);
  EXPECT_EQ(s.stats().corrupt, 0u);
  EXPECT_EQ(s.next_seq(), 101u);
  add_records(s, 1);
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(read_all(s), range(1, 101));
}

TEST(Spool, CorruptRecordMidSegmentIsSkippedAndCounted) {
  TempDir dir;
  fill(dir, 2000);
  std::string first = segment_path(dir, 0), last = segment_path(dir, 1);
  ASSERT_FALSE(last.empty());
  // Find record offsets by walking the lengths, as the format defines them.
  auto offset_of = [](const std::string& path, int n) {
    const std::string file = read_file(path);
    std::size_t off = format::k_segment_header;
    for (int i = 0; i < n; ++i) {
      format::RecordHeader h;
      EXPECT_TRUE(format::decode_record_header(reinterpret_cast<const std::uint8_t*>(file.data() + off), h)) << i;
      off += format::k_record_header + h.body_len;
    }
    return static_cast<long>(off);
  };
  poke(first, offset_of(first, 10) + format::k_record_header + k_topic_bytes + 1, 0xff);  // a payload byte of record 11
  poke(first, offset_of(first, 20) + 5, 0x01);  // the body length of record 21 (header bytes 4-7)
  OpenSpool s(options(dir));
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
  fill(dir, 50);
  poke(segment_path(dir, 0), format::k_segment_header + format::k_record_header + 2, 0x40);  // topic byte of record 1
  OpenSpool s(options(dir));
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
  fill(dir, 3);
  const std::string path = segment_path(dir, 0);
  std::string file = read_file(path);
  ASSERT_EQ(used_bytes(path), format::k_segment_header + 3 * k_record_bytes);
  // 20 bytes out of record 2's body
  file.erase(format::k_segment_header + k_record_bytes + format::k_record_header + 10, 20);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << file;
  {
    OpenSpool s(options(dir));
    EXPECT_EQ(s.next_seq(), 4u);
    EXPECT_EQ(s.stats().torn_bytes, 0u);
    add_records(s, 1);
    ASSERT_TRUE(s.commit());
  }
  OpenSpool s(options(dir));
  EXPECT_EQ(read_all(s), (std::vector<std::uint64_t>{1, 3, 4}));
  EXPECT_EQ(s.stats().corrupt, 1u);
}

TEST(Spool, DamagedCursorMeansResendNotLoss) {
  TempDir dir;
  fill(dir, 10, {5});
  poke(dir.file("state/spool/ack"), 10, 0x01);  // both slots
  poke(dir.file("state/spool/ack"), static_cast<long>(format::k_cursor_slot_stride) + 10, 0x01);
  OpenSpool s(options(dir));
  EXPECT_EQ(s.acked_seq(), 0u);
  EXPECT_EQ(read_all(s), range(1, 10));
}

TEST(Spool, FullWithBackpressureRefusesUntilAcked) {
  TempDir dir;
  Options o = options(dir, 256 * 1024);
  OpenSpool s(o);
  std::uint64_t seq = 0, n = 0;
  std::string payload(1000, 'x');
  while (put(s, "t", payload, seq) == Append::ok) ++n;
  EXPECT_GT(n, 200u);
  EXPECT_LE(s.bytes(), o.max_bytes);
  EXPECT_EQ(s.stats().full_refusals, 1u);
  EXPECT_EQ(put(s, "t", payload, seq), Append::full);
  ASSERT_TRUE(s.commit());
  s.ack(100);  // the first segment is wholly acknowledged: it goes
  EXPECT_EQ(put(s, "t", payload, seq), Append::ok);
  EXPECT_EQ(seq, n + 1);
  EXPECT_EQ(s.stats().dropped_records, 0u);
}

TEST(Spool, FullWithDropOldestDeletesTheOldestSegmentAndCountsIt) {
  TempDir dir;
  Options o = options(dir, 256 * 1024);
  o.drop_oldest = true;
  OpenSpool s(o);
  std::uint64_t seq = 0;
  std::string payload(1000, 'x');
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(put(s, "t", payload, seq), Append::ok);
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
  OpenSpool s(options(dir, 1 << 20, true));
  add_records(s, 10);
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
    if (put(s, "t/x", p, seq) != Append::ok) break;
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

// ---- the durable path split across threads: jobs, the cursor, the next segment --------

// Runs the job the spool has due now, as the sync thread would; false if there was none.
bool run_job(Spool& s, std::uint64_t now_ns = 0) {
  Job* job = s.prepare(now_ns);
  if (!job) return false;
  job->run();
  EXPECT_TRUE(s.complete(*job));
  return true;
}

TEST(Spool, AppendsFillTheOtherBatchWhileAJobIsOnTheDisk) {
  TempDir dir;
  OpenSpool s(options(dir));
  add_records(s, 10);
  Job* job = s.prepare(0);
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(s.prepare(0), nullptr) << "one job out at a time";
  add_records(s, 10);  // not busy: the other batch
  EXPECT_EQ(s.durable_seq(), 0u);
  EXPECT_TRUE(read_all(s).empty()) << "nothing is replayed before it is written";
  job->run();
  ASSERT_TRUE(s.complete(*job));
  EXPECT_EQ(s.durable_seq(), 10u);
  EXPECT_EQ(read_all(s), range(1, 10)) << "only what the job made durable";
  ASSERT_TRUE(run_job(s));
  EXPECT_EQ(s.durable_seq(), 20u);
  EXPECT_EQ(read_all(s, 11), range(11, 20));
}

TEST(Spool, AJobStartsAtMostOneSegmentTheNextWaitsForItsFile) {
  TempDir dir;
  OpenSpool s(options(dir));  // 64 KiB segments
  std::string payload(1000, 'x');
  std::uint64_t seq = 0, n = 0;
  Append a;
  while ((a = s.append("t", bytes(payload), 1, false, 0, seq)) == Append::ok) ++n;
  EXPECT_EQ(a, Append::busy);
  EXPECT_EQ(s.segments(), 1u);
  EXPECT_EQ(n, (64u * 1024 - format::k_segment_header) / (format::k_record_header + 1 + 1000))
      << "the first segment filled, the second must wait";
  ASSERT_TRUE(s.commit());  // writes the batch and makes the next segment's file
  EXPECT_EQ(s.append("t", bytes(payload), 1, false, 0, seq), Append::ok);
  EXPECT_EQ(seq, n + 1);
  EXPECT_EQ(s.segments(), 2u);
}

TEST(Spool, TheAckFileIsWrittenLazilyByTimeOrByCount) {
  TempDir dir;
  OpenSpool s(options(dir));
  add_records(s, 6000);
  ASSERT_TRUE(s.commit());
  const std::uint64_t second = 1'000'000'000;
  s.ack(10);  // no records flow, so no ack mark takes it
  EXPECT_FALSE(run_job(s, 5 * second)) << "it has only begun to wait";
  EXPECT_FALSE(run_job(s, 5 * second + second / 2));
  EXPECT_TRUE(s.cursor_due(6 * second));
  ASSERT_TRUE(run_job(s, 6 * second));
  EXPECT_EQ(s.stats().cursor_writes, 1u);
  EXPECT_EQ(s.unpersisted_acks(), 0u);
  s.ack(10 + k_cursor_records - 1);
  run_job(s, 6 * second);  // deletes the segments now wholly acknowledged
  EXPECT_EQ(s.stats().cursor_writes, 1u) << "one short of the count, and not waited long";
  s.ack(10 + k_cursor_records);
  EXPECT_TRUE(s.cursor_due(6 * second)) << "enough acknowledgements wait: at once";
  ASSERT_TRUE(run_job(s, 6 * second));
  EXPECT_EQ(s.stats().cursor_writes, 2u);
}

TEST(Spool, AckMarksPersistThePositionWithTheRecordsAndNoSyncOfTheirOwn) {
  TempDir dir;
  {
    OpenSpool s(options(dir, 1 << 20, true));
    add_records(s, 100);
    ASSERT_TRUE(s.commit());
    s.ack(50);
    add_records(s, 10);
    const Stats before = s.stats();
    ASSERT_TRUE(run_job(s, 1));  // records, and the mark after them
    EXPECT_EQ(s.stats().fsyncs, before.fsyncs + 1);
    EXPECT_EQ(s.stats().cursor_writes, before.cursor_writes) << "the ack file is not touched";
    EXPECT_EQ(s.unpersisted_acks(), 0u);
    EXPECT_FALSE(s.cursor_due(1));
    EXPECT_EQ(read_all(s, 51), range(51, 110)) << "replay passes over the mark";
  }  // no persist_cursor(): a crash
  OpenSpool s(options(dir));
  EXPECT_EQ(s.acked_seq(), 50u);
  EXPECT_EQ(s.next_seq(), 111u);
  EXPECT_EQ(read_all(s, s.acked_seq() + 1), range(51, 110));
  EXPECT_EQ(s.stats().corrupt, 0u);
}

// SPOOL.md "What a crash resends", when no records flow: acknowledgements that no ack
// mark covers reach the disk through the "ack" file, at most 1 s and never more than
// 4,096 of them late. A backlog drains with no new record, first fast (8,000 acks/s: the
// count decides), then slow (800/s: the time decides); a kill -9 (a copy of the spool
// directory as the daemon left it) just before each lazy write, and at the end, resends
// at most that many records, each with its original seq, and loses none.
TEST(Spool, ACrashWhileABacklogDrainsWithNoNewRecordsResendsAtMostTheDocumentedBound) {
  constexpr std::uint64_t k_backlog = 12'000, k_fast = 6'000, k_per_step = 8;
  constexpr std::uint64_t k_ms = 1'000'000, k_fast_step = 1 * k_ms, k_slow_step = 10 * k_ms;
  TempDir dir, crashed;
  Options o = options(dir, 16 << 20, true);
  o.segment_bytes = 1 << 20;  // one segment: no deletion shortens what is resent
  OpenSpool s(o);
  add_records(s, k_backlog);
  ASSERT_TRUE(s.commit());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> history;  // (time, acknowledged up to)
  std::uint64_t now = 10'000 * k_ms, acked = 0, most_resent_fast = 0;
  int crashes = 0, full_second_crashes = 0;
  auto crash = [&] {
    ++crashes;
    std::filesystem::remove_all(crashed.file("state"));
    std::filesystem::copy(dir.file("state"), crashed.file("state"), std::filesystem::copy_options::recursive);
    Options co = o;
    co.dir = crashed.file("state/spool");
    OpenSpool c(co);
    const std::vector<std::uint64_t> resent = read_all(c, c.acked_seq() + 1, acked + 1);
    if (!resent.empty()) {
      EXPECT_EQ(resent, range(acked + 1 - resent.size(), acked)) << "original seqs, in order";
    }
    if (acked < k_backlog) {
      EXPECT_EQ(read_all(c, acked + 1, acked + 2), range(acked + 1, acked + 1)) << "lost";
    }
    EXPECT_LE(resent.size(), k_cursor_records) << "at " << acked;
    std::uint64_t a_second_ago = 0;  // acknowledged 1 s (and one step) before the crash
    for (const auto& [t, a] : history) {
      if (t + 1'000 * k_ms + k_slow_step <= now) a_second_ago = a;
    }
    EXPECT_LE(resent.size(), acked - a_second_ago) << "more than 1 s of acknowledgements, at " << acked;
    if (acked <= k_fast) most_resent_fast = std::max<std::uint64_t>(most_resent_fast, resent.size());
    full_second_crashes += resent.size() == 101 * k_per_step;  // 1 s and one step at 800/s
  };
  while (acked < k_backlog) {
    now += acked < k_fast ? k_fast_step : k_slow_step;
    acked += k_per_step;
    s.ack(acked);
    history.emplace_back(now, acked);
    if (s.cursor_due(now)) crash();  // the worst moment: the write is due, not done
    run_job(s, now);
  }
  crash();  // drained; the last acknowledgements wait for their second
  std::printf("[ measured ] %d crashes, %llu ack file writes; fast drain: at most %llu resent; slow: %d of 808\n",
              crashes, static_cast<unsigned long long>(s.stats().cursor_writes),
              static_cast<unsigned long long>(most_resent_fast), full_second_crashes);
  EXPECT_EQ(most_resent_fast, k_cursor_records) << "the count did not decide";
  EXPECT_GE(full_second_crashes, 4) << "the time did not decide";
}

TEST(Spool, CursorSlotsAlternateAndATornSlotLeavesThePositionBefore) {
  TempDir dir;
  fill(dir, 10, {5, 8});  // 5 into one slot, 8 into the other
  const std::string ack = dir.file("state/spool/ack");
  ASSERT_EQ(read_file(ack).size(), format::k_cursor_file_size);
  {
    OpenSpool s(options(dir));
    EXPECT_EQ(s.acked_seq(), 8u);
  }
  // The slot holding 8 torn by a power cut: the other still says 5 (duplicates, no loss).
  std::string file = read_file(ack);
  std::uint64_t v0 = 0, v1 = 0;
  const auto data = bytes(file);
  ASSERT_TRUE(format::decode_cursor(data.first(format::k_cursor_size), v0));
  ASSERT_TRUE(format::decode_cursor(data.subspan(format::k_cursor_slot_stride), v1));
  poke(ack, v0 == 8 ? 12 : static_cast<long>(format::k_cursor_slot_stride) + 12, 0x10);
  OpenSpool s(options(dir));
  EXPECT_EQ(s.acked_seq(), 5u);
  EXPECT_EQ(read_all(s, s.acked_seq() + 1), range(6, 10));
}

TEST(Spool, TheOneSlotCursorOfEarlierVersionsIsReadAndKept) {
  TempDir dir;
  fill(dir, 10);
  std::uint8_t old[format::k_cursor_size];
  format::encode_cursor(old, 7);
  std::ofstream(dir.file("state/spool/ack"), std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(old), sizeof old);
  {
    OpenSpool s(options(dir));
    EXPECT_EQ(s.acked_seq(), 7u);
    EXPECT_EQ(read_file(dir.file("state/spool/ack")).size(), format::k_cursor_file_size);
  }
  OpenSpool s(options(dir));
  EXPECT_EQ(s.acked_seq(), 7u);
}

// The disk has no room for the next segment's file: the spool is full, not failed, and
// takes records again once space returns.
class FullDisk final : public Disk {
 public:
  bool full = true;
  int fallocate(int fd, off_t len) override {
    if (!full) return Disk::fallocate(fd, len);
    errno = ENOSPC;
    return -1;
  }
};

TEST(Spool, AFullDiskIsAFullSpoolUntilSpaceReturns) {
  TempDir dir;
  FullDisk disk;
  Options o = options(dir);
  o.disk = &disk;
  OpenSpool s(o);
  std::uint64_t seq = 0;
  EXPECT_EQ(put(s, "t", "x", seq), Append::full);
  EXPECT_EQ(s.stats().full_refusals, 1u);
  EXPECT_FALSE(s.failed());
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(put(s, "t", "x", seq), Append::full) << "not retried until told";
  disk.full = false;
  s.retry_spare();
  EXPECT_EQ(s.append("t", bytes("x"), 1, false, 0, seq), Append::busy) << "the file is to be made by a job";
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(s.append("t", bytes("x"), 1, false, 0, seq), Append::ok);
  ASSERT_TRUE(s.commit());
  EXPECT_EQ(s.durable_seq(), 1u);
}

// Version 3: a record's extension (what ages it: boot clock, boot, Message Expiry
// Interval) is written and read back with it, through a reopen; a record without one (as
// version 2 wrote them) reads back with none, beside them.
TEST(Spool, TheRecordExtensionIsReadBackAndRecordsWithoutOneStayReadable) {
  TempDir dir;
  format::RecordExt ext;
  ext.boot_ns = 123'456'789'012ull;
  ext.boot = 0xdeadbeef;
  ext.expiry_s = 300;
  ext.has_expiry = true;
  ext.wall_synced = true;
  {
    OpenSpool s(options(dir));
    std::uint64_t seq = 0;
    ASSERT_EQ(s.append("s/with", bytes("payload-1"), 1, false, 1000, seq, &ext), Append::ok);
    ASSERT_EQ(s.append("s/without", bytes("payload-2"), 1, true, 2000, seq), Append::ok);
    format::RecordExt plain;  // an extension with no expiry, clock not synchronized
    plain.boot_ns = 5;
    plain.boot = 9;
    ASSERT_EQ(s.append("s/plain", bytes(""), 0, false, 3000, seq, &plain), Append::ok);
    ASSERT_TRUE(s.commit());
  }
  OpenSpool s(options(dir));
  ASSERT_EQ(s.stats().recovered_records, 3u);
  std::vector<std::uint8_t> buf(1024);
  Record r;
  ASSERT_EQ(s.read_next(1, s.next_seq(), buf, r), Read::ok);
  EXPECT_EQ(r.header.ext_len, format::k_ext_bytes);
  EXPECT_EQ(r.topic, "s/with");
  EXPECT_EQ(std::string(r.payload.begin(), r.payload.end()), "payload-1");
  EXPECT_EQ(r.header.received_ns, 1000u);
  EXPECT_EQ(r.header.ext.boot_ns, ext.boot_ns);
  EXPECT_EQ(r.header.ext.boot, ext.boot);
  EXPECT_EQ(r.header.ext.expiry_s, 300u);
  EXPECT_TRUE(r.header.ext.has_expiry);
  EXPECT_TRUE(r.header.ext.wall_synced);
  ASSERT_EQ(s.read_next(2, s.next_seq(), buf, r), Read::ok);
  EXPECT_EQ(r.header.ext_len, 0);
  EXPECT_EQ(r.topic, "s/without");
  EXPECT_EQ(std::string(r.payload.begin(), r.payload.end()), "payload-2");
  EXPECT_TRUE(r.header.retain);
  EXPECT_EQ(r.header.ext.boot, 0u);
  EXPECT_FALSE(r.header.ext.has_expiry);
  ASSERT_EQ(s.read_next(3, s.next_seq(), buf, r), Read::ok);
  EXPECT_EQ(r.topic, "s/plain");
  EXPECT_TRUE(r.payload.empty());
  EXPECT_EQ(r.header.ext.boot, 9u);
  EXPECT_EQ(r.header.ext.boot_ns, 5u);
  EXPECT_FALSE(r.header.ext.has_expiry);
  EXPECT_FALSE(r.header.ext.wall_synced);
  EXPECT_EQ(s.stats().corrupt, 0u);
}

// Header byte 27 counts the extension: 0 or 16, nothing else; the extension's flags
// without an extension are damage.
TEST(Spool, ARecordHeaderWithAnUnknownExtensionIsRejected) {
  format::RecordHeader h;
  h.body_len = 20;
  h.seq = 1;
  h.topic_len = 3;
  std::uint8_t raw[format::k_record_header];
  auto with = [&](std::uint8_t byte26, std::uint8_t byte27) {
    format::encode_record_header(raw, h);
    raw[26] = byte26;
    raw[27] = byte27;
    format::put32(raw + 32, crc32c({raw, 32}));
    format::RecordHeader out;
    return format::decode_record_header(raw, out);
  };
  EXPECT_TRUE(with(1, 0));
  EXPECT_TRUE(with(1 | format::k_flag_expiry | format::k_flag_wall_synced, format::k_ext_bytes));
  EXPECT_FALSE(with(1, 8)) << "an extension of another length";
  EXPECT_FALSE(with(1 | format::k_flag_expiry, 0)) << "expiry without an extension";
  EXPECT_FALSE(with(1 | 0x40, format::k_ext_bytes)) << "an unknown flag";
  h.body_len = 18;  // 16 + a 3-byte topic does not fit
  EXPECT_FALSE(with(1, format::k_ext_bytes));
}

TEST(SyncThread, RunsAJobAndSignalsItsEventfd) {
  TempDir dir;
  OpenSpool s(options(dir, 1 << 20, true));
  SyncThread thread;
  std::string error;
  ASSERT_TRUE(thread.start(error)) << error;
  add_records(s, 100);
  thread.submit(*s.prepare(0));
  EXPECT_TRUE(thread.busy());
  pollfd p{thread.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1);
  Job* job = thread.take_done();
  ASSERT_NE(job, nullptr);
  EXPECT_FALSE(thread.busy());
  ASSERT_TRUE(s.complete(*job));
  EXPECT_EQ(s.durable_seq(), 100u);
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the eventfd is cleared";
}

TEST(SyncThread, AStalledDiskHoldsTheJobNotTheCaller) {
  TempDir dir;
  const std::string stall = dir.file("stall");
  std::string error;
  auto disk = TestDisk::parse("stall_file=" + stall, error);
  ASSERT_TRUE(disk) << error;
  Options o = options(dir, 1 << 20, true);
  o.disk = disk.get();
  OpenSpool s(o);
  std::ofstream(stall) << "";  // every sync from now on waits
  SyncThread thread;
  ASSERT_TRUE(thread.start(error)) << error;
  add_records(s, 1);
  thread.submit(*s.prepare(0));
  pollfd p{thread.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 300), 0) << "a sync while the stall file exists";
  EXPECT_EQ(thread.take_done(), nullptr);
  add_records(s, 1);  // the caller goes on filling the next batch
  EXPECT_EQ(s.durable_seq(), 0u);
  ::unlink(stall.c_str());
  Job* job = thread.wait_done();
  ASSERT_NE(job, nullptr);
  ASSERT_TRUE(s.complete(*job));
  EXPECT_EQ(s.durable_seq(), 1u);
}

TEST(TestDisk, NamesABadSetting) {
  std::string error;
  EXPECT_FALSE(TestDisk::parse("sync_delay=5", error));
  EXPECT_EQ(error, "sync_delay: not a duration: \"5\"");
  EXPECT_FALSE(TestDisk::parse("sync_dely=5ms", error));
  EXPECT_NE(error.find("unknown setting \"sync_dely=5ms\""), std::string::npos) << error;
  EXPECT_TRUE(TestDisk::parse("sync_delay=5ms,stall_file=/x", error));
}

}  // namespace
}  // namespace edgegw::spool
