// Fuzzes the spool's crash safety: the crash and error sweeps of
// tests/unit/spool/crash_test.cpp with the workload and the fault chosen by the input
// instead of enumerated. The input picks the operations (appends of fuzzed sizes, commits,
// acknowledgements that delete segments, cursor writes; a small segment size makes rolls
// frequent), then where the FaultDisk (tests/support/fault_disk.hpp) crashes or fails,
// with which errno, whether the write is cut short, and how a power cut tears the last
// write; or a kill -9, a restart that recovers (and is trusted), and then the power cut.
//
// After it, the same rules as the crash test, with abort() so the fuzzer reports a breach:
// the spool opens; the acknowledged position is not ahead of what upstream acknowledged;
// no seq that went out durable is given again; every replayed record holds its own
// payload; every record made durable and not acknowledged is there; and it takes records.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_files.hpp"
#include "spool/spool.hpp"
#include "support/fault_disk.hpp"
#include "support/spool_workload.hpp"

using namespace edgegw::spool;
using edgegw::test::append_told;
using edgegw::test::bytes;
using edgegw::test::FaultDisk;
using edgegw::test::Told;

namespace {

Options options(const std::string& dir, Disk* disk = nullptr) {
  Options o;
  o.dir = dir;
  o.max_bytes = 1 << 20;
  o.segment_bytes = 8 * 1024;  // a roll every few records
  o.batch_bytes = 16 * 1024;
  o.disk = disk;
  return o;
}

void check(bool ok) {
  if (!ok) std::abort();
}

// The operations the input picks, run until the disk fails.
struct Op {
  enum Kind : std::uint8_t { append, commit, ack, cursor } kind;
  std::uint16_t count, size;  // append: records and payload bytes; ack: how far behind durable
};

void workload(Spool& s, Told& told, const std::vector<Op>& ops) {
  std::uint64_t n = 0;
  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::append:
        for (int i = 0; i < op.count; ++i) {
          const std::string payload = "message " + std::to_string(++n) + " " + std::string(op.size, '.');
          if (!append_told(s, told, payload)) return;
        }
        break;
      case Op::commit:
        if (!s.commit()) return;
        told.durable = s.durable_seq();
        break;
      case Op::ack: {
        const std::uint64_t ack = told.durable > op.count ? told.durable - op.count : 0;
        s.ack(ack);
        told.acked = std::max(told.acked, ack);
        break;
      }
      case Op::cursor:
        if (!s.persist_cursor()) return;
        break;
    }
  }
}

// Replays what is there, into told.payload_of (a restart's find, trusted from then on).
void replay(Spool& s, std::map<std::uint64_t, std::string>& out) {
  std::vector<std::uint8_t> buf(2048);
  Record r;
  for (std::uint64_t from = s.acked_seq() + 1; s.read_next(from, UINT64_MAX, buf, r) == Read::ok;) {
    out.emplace(r.header.seq, std::string(r.payload.begin(), r.payload.end()));
    from = r.header.seq + 1;
  }
}

// The rules, on what is on disk, opened with the real disk.
void check_recovery(const std::string& dir, const Told& told) {
  Spool s(options(dir));
  std::string error;
  check(s.open(error));
  check(s.acked_seq() <= told.acked);
  check(s.next_seq() > told.durable);
  std::map<std::uint64_t, std::string> got;
  replay(s, got);
  for (const auto& [seq, payload] : got) {
    const auto it = told.payload_of.find(seq);
    check(it != told.payload_of.end() && it->second == payload);
  }
  for (std::uint64_t seq = std::max(s.acked_seq(), told.acked) + 1; seq <= told.durable; ++seq)
    check(got.count(seq) == 1);
  std::uint64_t seq = 0;
  check(s.append("after", bytes("crash"), 1, false, 0, seq) == Append::ok && s.commit() && seq > told.durable);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string& base = edgegw::fuzz::work_dir("edgegw-faults-fuzz");
  edgegw::fuzz::remove_tree(base + "/state");
  const std::string dir = base + "/state/spool";

  std::vector<Op> ops;
  while (ops.size() < 48 && in.remaining_bytes() > 4) {
    Op op{};
    op.kind = static_cast<Op::Kind>(in.ConsumeIntegralInRange(0, 3));
    op.count = in.ConsumeIntegralInRange<std::uint16_t>(op.kind == Op::append ? 1 : 0, op.kind == Op::append ? 24 : 40);
    op.size = in.ConsumeIntegralInRange<std::uint16_t>(0, 1500);
    ops.push_back(op);
  }
  const int errnos[] = {EIO, ENOSPC, EROFS, EDQUOT, EOPNOTSUPP, EINTR};
  const int how = in.ConsumeIntegralInRange(0, 2);  // crash + power cut; kill, restart, power cut; error
  const std::uint64_t at = in.ConsumeIntegralInRange<std::uint64_t>(0, 400);
  const int err = in.PickValueInArray(errnos);
  const bool short_write = in.ConsumeBool();
  const std::size_t torn = in.ConsumeIntegralInRange<std::size_t>(0, 4096);

  Told told;
  {
    FaultDisk disk(dir);
    if (how == 2) disk.fail_at(at, err, short_write);
    else disk.crash_at(at);
    {
      Spool s(options(dir, &disk));
      std::string error;
      if (s.open(error)) workload(s, told, ops);
    }
    if (how == 1) {
      disk.resume();  // the process died; the kernel, its page cache and the disk did not
      Spool s(options(dir, &disk));
      std::string error;
      check(s.open(error));
      // What it recovered is forwarded from here on: durable to the world, seqs used.
      told.durable = std::max(told.durable, s.durable_seq());
      replay(s, told.payload_of);
    }
    disk.power_cut(torn);
  }
  check_recovery(dir, told);
  return 0;
}
