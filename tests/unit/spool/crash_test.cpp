// The spool against every crash and every error, at every file operation (not a sample):
// a workload of appends, commits, segment rolls, acknowledgements, deletions and cursor
// writes runs on a FaultDisk (tests/support/fault_disk.hpp) that crashes, or fails with an
// error, at operation k, for each k; then the files are put back as a power cut leaves
// them, and the spool recovers. After each: every record whose local acknowledgement went
// out is there with its own payload, no seq was given to two messages, the acknowledged
// position is never ahead of what was acknowledged, and the spool takes records again.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "spool/spool.hpp"
#include "support/fault_disk.hpp"
#include "support/spool_workload.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::spool {
namespace {

using test::append_told;
using test::bytes;
using test::FaultDisk;
using test::TempDir;
using test::Told;

Options options(const TempDir& dir, Disk* disk = nullptr) {
  Options o;
  o.dir = dir.file("state/spool");
  o.max_bytes = 1 << 20;
  o.segment_bytes = 16 * 1024;  // a roll every ~16 records
  o.batch_bytes = 64 * 1024;
  o.disk = disk;
  return o;
}

// As the gateway drives the spool, synchronously, until the first failure.
void workload(Spool& s, Told& told, int rounds = 14) {
  for (int round = 0; round < rounds; ++round) {
    for (int i = 0; i < 12; ++i) {
      const std::string payload = "round " + std::to_string(round) + " message " + std::to_string(i) + " " +
                                  std::string(900 + static_cast<std::size_t>(i), '.');
      if (!append_told(s, told, payload)) return;
    }
    if (!s.commit()) return;
    told.durable = s.durable_seq();
    // Upstream acknowledges what is durable, a round behind: segments get deleted.
    const std::uint64_t ack = told.durable > 12 ? told.durable - 12 : 0;
    s.ack(ack);
    told.acked = std::max(told.acked, ack);
    if (round % 3 == 2 && !s.persist_cursor()) return;
  }
}

// Opens what is on disk with the real disk and checks the rules: the first one broken, or
// "" when all hold. (A string, not EXPECTs, so a test can show that a broken disk is caught.)
std::string broken_rule(const TempDir& dir, const Told& told) {
  Spool s(options(dir));
  std::string error;
  if (!s.open(error)) return "the spool does not open: " + error;
  if (s.acked_seq() > told.acked) return "the acknowledged position is ahead of what was acknowledged";
  if (s.next_seq() <= told.durable) return "a seq that went out durable would be given again";
  std::map<std::uint64_t, std::string> got;
  std::vector<std::uint8_t> buf(2048);
  Record r;
  for (std::uint64_t from = s.acked_seq() + 1; s.read_next(from, UINT64_MAX, buf, r) == Read::ok;) {
    got[r.header.seq] = std::string(r.payload.begin(), r.payload.end());
    from = r.header.seq + 1;
  }
  for (const auto& [seq, payload] : got) {
    const auto it = told.payload_of.find(seq);
    if (it == told.payload_of.end() || it->second != payload)
      return "seq " + std::to_string(seq) + " holds another message";
  }
  // (What upstream acknowledged may be gone, its segment deleted, even where the position
  // on disk is behind: it was delivered.)
  for (std::uint64_t seq = std::max(s.acked_seq(), told.acked) + 1; seq <= told.durable; ++seq) {
    if (got.count(seq) == 0) return "seq " + std::to_string(seq) + " was acknowledged to the local broker and is lost";
  }
  // And it goes on: a new record survives the next restart.
  std::uint64_t seq = 0;
  if (s.append("after", bytes("crash"), 1, false, 0, seq) != Append::ok || !s.commit()) return "no new record is taken";
  if (seq <= told.durable) return "the new record got an old seq";
  return "";
}

void check_recovery(const TempDir& dir, const Told& told, const std::string& where) {
  const std::string broken = broken_rule(dir, told);
  EXPECT_EQ(broken, "") << where;
}

// Opens the spool on `disk` and runs the workload, as far as the disk lets it.
void run_on(const TempDir& dir, FaultDisk& disk, Told& told) {
  Spool s(options(dir, &disk));
  std::string error;
  if (s.open(error)) workload(s, told);
}

std::uint64_t operations_of_a_clean_run() {
  TempDir dir;
  FaultDisk disk(dir.file("state/spool"));
  Told told;
  run_on(dir, disk, told);
  EXPECT_FALSE(disk.crashed());
  EXPECT_GT(told.durable, 150u);
  if (std::getenv("EDGEGW_CRASH_LOG")) {
    for (std::size_t i = 0; i < disk.log().size(); ++i) std::printf("%zu %s\n", i, disk.log()[i].c_str());
  }
  return disk.ops();
}

TEST(SpoolCrash, a_power_cut_at_every_operation_loses_nothing_acknowledged) {
  const std::uint64_t n = operations_of_a_clean_run();
  for (std::uint64_t k = 0; k < n; ++k) {
    TempDir dir;
    Told told;
    {
      FaultDisk disk(dir.file("state/spool"));
      disk.crash_at(k);
      run_on(dir, disk, told);
      disk.power_cut(k % 41);  // the last write torn somewhere, or not at all
    }
    check_recovery(dir, told, "power cut at operation " + std::to_string(k));
    if (HasFailure()) return;
  }
  std::printf("[ measured ] %llu power cuts, one at each file operation of the workload\n",
              static_cast<unsigned long long>(n));
}

// The test of the test: on a disk whose syncs lie (they say yes and keep nothing), power
// cuts must lose records the workload was told were durable, and the sweep must say so.
TEST(SpoolCrash, the_sweep_catches_a_disk_that_lies_about_syncs) {
  const std::uint64_t n = operations_of_a_clean_run();
  std::uint64_t caught = 0;
  std::string first;
  for (std::uint64_t k = 0; k < n; ++k) {
    TempDir dir;
    Told told;
    {
      FaultDisk disk(dir.file("state/spool"));
      disk.lie_about_syncs();
      disk.crash_at(k);
      run_on(dir, disk, told);
      disk.power_cut(k % 41);
    }
    const std::string broken = broken_rule(dir, told);
    if (broken.empty()) continue;
    if (caught++ == 0) first = "power cut at operation " + std::to_string(k) + ": " + broken;
  }
  // Every cut after the first commit loses what that commit "made durable".
  EXPECT_GT(caught, n / 2) << "the sweep misses a disk that lies about syncs";
  std::printf("[ measured ] lying syncs: %llu of %llu power cuts caught; the first: %s\n",
              static_cast<unsigned long long>(caught), static_cast<unsigned long long>(n), first.c_str());
}

// kill -9 at operation k (the kernel keeps what was written), a restart that recovers and
// is trusted by the world (what it finds goes upstream), then a power cut: what the restart
// used must have been made durable by it, or its seqs go to other messages later.
TEST(SpoolCrash, a_restart_after_a_kill_syncs_what_it_recovers_before_it_is_used) {
  const std::uint64_t n = operations_of_a_clean_run();
  for (std::uint64_t k = 0; k < n; ++k) {
    TempDir dir;
    Told told;
    FaultDisk disk(dir.file("state/spool"));
    disk.crash_at(k);
    run_on(dir, disk, told);
    disk.resume();  // the process died; the kernel, its page cache and the disk did not
    {
      Spool s(options(dir, &disk));
      std::string error;
      ASSERT_TRUE(s.open(error)) << "restart after a kill at operation " << k << ": " << error;
      // Everything it recovered is durable to the world from here on: forwarded, seqs used.
      told.durable = std::max(told.durable, s.durable_seq());
      std::vector<std::uint8_t> buf(2048);
      Record r;
      for (std::uint64_t from = s.acked_seq() + 1; s.read_next(from, UINT64_MAX, buf, r) == Read::ok;) {
        told.payload_of.emplace(r.header.seq, std::string(r.payload.begin(), r.payload.end()));
        from = r.header.seq + 1;
      }
    }
    disk.power_cut();
    check_recovery(dir, told, "kill at operation " + std::to_string(k) + ", restart, power cut");
    if (HasFailure()) return;
  }
}

TEST(SpoolCrash, every_error_at_every_operation_is_survived_and_never_acknowledged) {
  const std::uint64_t n = operations_of_a_clean_run();
  struct Fault {
    int err;
    bool short_write;
    const char* name;
  } faults[] = {{EIO, false, "EIO"},
                {ENOSPC, false, "ENOSPC"},
                {EROFS, false, "EROFS"},
                {ENOSPC, true, "a short write, then ENOSPC"}};
  for (const Fault& f : faults) {
    for (std::uint64_t k = 0; k < n; ++k) {
      TempDir dir;
      Told told;
      {
        FaultDisk disk(dir.file("state/spool"));
        disk.fail_at(k, f.err, f.short_write);
        run_on(dir, disk, told);
        disk.power_cut();  // whatever the error left behind, then the worst: power goes
      }
      check_recovery(dir, told, std::string(f.name) + " at operation " + std::to_string(k));
      if (HasFailure()) return;
    }
  }
  std::printf("[ measured ] %llu operations x 4 faults, each followed by a power cut\n",
              static_cast<unsigned long long>(n));
}

}  // namespace
}  // namespace edgegw::spool
