// Disk faults in the daemon (docs/SPOOL.md, "Faults", "What the daemon does"): a write or
// sync that fails stops the daemon with exit code 1 and a log line naming the file, the
// operation and the errno; nothing it covered was acknowledged locally, so after a restart
// on a healthy disk everything arrives upstream. A stalled sync is reported, once, and its
// end too. First with edgegw-test-disk ($EDGEGW_TEST_DISK injects the fault; a failed sync
// drops what it covered, as Linux may), then on a real ext4 file system on a loop device
// (root only). Counts are asserted; times are printed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "support/gateway_rig.hpp"
#include "support/notify_socket.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The whole line of `log` holding `what` ("" if none).
std::string line_with(const std::string& log, const std::string& what) {
  const std::size_t at = log.find(what);
  if (at == std::string::npos) return "";
  const std::size_t begin = log.rfind('\n', at) + 1, end = log.find('\n', at);
  return log.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// The number after `key` in `text`, or -1.
long number_after(const std::string& text, const std::string& key) {
  const std::size_t at = text.find(key);
  return at == std::string::npos ? -1 : std::stol(text.substr(at + key.size()));
}

// A fault injected while sensors publish; the daemon must stop by itself, and a restart
// on a healed disk must deliver everything.
struct MidStream {
  std::string fault, how;              // for the [ measured ] line
  std::vector<std::string> env;        // the daemon's (EDGEGW_TEST_DISK)
  std::function<void()> inject, heal;  // the fault, and its repair before the restart
  std::vector<std::string> must_say;   // in the log line that stops the daemon
  std::vector<std::string> one_of;     // ... and one of these (an errno a kernel path may vary)
};

void fault_mid_stream(Rig& rig, const MidStream& m) {
  constexpr long k_count = 3000;
  constexpr long k_inject_after = 600;
  rig.start_verifier();
  rig.start_daemon(true, m.env);
  Process sensors = rig.stream(k_count, 300);  // 10 s; the local broker queues what the daemon does not take
  ASSERT_GE(rig.wait_for_counter("durable", k_inject_after, 60s), k_inject_after) << rig.daemon_log();
  const auto injected = Clock::now();
  m.inject();
  const int code = rig.daemon().wait(60s);
  const double detect_s = seconds_since(injected);
  EXPECT_EQ(code, 1) << "exit code 1 after a disk fault\n" << rig.daemon_log();
  const std::string stop = line_with(rig.daemon_log(), "cannot make messages durable");
  ASSERT_FALSE(stop.empty()) << rig.daemon_log();
  for (const std::string& s : m.must_say) EXPECT_NE(stop.find(s), std::string::npos) << "\"" << s << "\" in: " << stop;
  if (!m.one_of.empty()) {
    EXPECT_TRUE(std::any_of(m.one_of.begin(), m.one_of.end(),
                            [&](const std::string& s) { return stop.find(s) != std::string::npos; }))
        << "one of the expected errors in: " << stop;
  }
  const std::size_t of = stop.find(" received messages were acknowledged locally");
  ASSERT_NE(of, std::string::npos) << stop;
  const long acked_local = std::stol(stop.substr(stop.rfind(';', of) + 2));
  EXPECT_EQ(sensors.wait(60s), 0);

  m.heal();
  const auto restarted = Clock::now();
  rig.start_daemon(true, m.env);
  const Tally t = rig.wait_for_all(k_count, 120s);
  const double resume_s = seconds_since(restarted);
  EXPECT_EQ(t.missing(k_count), 0) << "every message arrives after the restart\n" << rig.daemon_log();
  EXPECT_EQ(t.seq_conflicts, 0) << "a seq given to two messages";
  EXPECT_EQ(t.malformed, 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf(
      "[ measured ] %s (%s): the daemon exited with code %d %.2f s after the fault; %ld of %ld acknowledged "
      "locally before it; restart on a healed disk: all upstream %.1f s later, lost %ld, duplicated %ld; the "
      "operator saw: %s\n",
      m.fault.c_str(), m.how.c_str(), code, detect_s, acked_local, k_count, resume_s, t.missing(k_count),
      t.duplicates(), stop.c_str());
}

std::string test_disk(const std::string& spec) { return "EDGEGW_TEST_DISK=" + spec; }

TEST(DiskFaults, EioOnASyncMidStreamStopsTheDaemonAndNothingItCoveredWasAcknowledged) {
  Rig rig(RigOptions{.binary = "edgegw-test-disk"});
  const std::string fail = rig.dir().file("fail");
  fault_mid_stream(
      rig, MidStream{
               .fault = "EIO on fdatasync",
               .how = "edgegw-test-disk fail_op=sync: every sync fails while a file exists, dropping what it covered",
               .env = {test_disk("fail_file=" + fail + ",fail_errno=EIO,fail_op=sync")},
               .inject = [&] { std::ofstream(fail) << ""; },
               .heal = [&] { ::unlink(fail.c_str()); },
               .must_say = {rig.state_dir() + "/spool/", ".seg: fdatasync of records", "Input/output error (EIO)"},
           });
}

TEST(DiskFaults, ErofsOnAWriteMidStreamStopsTheDaemonAndNothingItCoveredWasAcknowledged) {
  Rig rig(RigOptions{.binary = "edgegw-test-disk"});
  const std::string fail = rig.dir().file("fail");
  fault_mid_stream(
      rig, MidStream{
               .fault = "EROFS on pwrite",
               .how = "edgegw-test-disk fail_op=write: every write, fallocate, rename fails while a file exists",
               .env = {test_disk("fail_file=" + fail + ",fail_errno=EROFS,fail_op=write")},
               .inject = [&] { std::ofstream(fail) << ""; },
               .heal = [&] { ::unlink(fail.c_str()); },
               .must_say = {rig.state_dir() + "/spool/", "Read-only file system (EROFS)"},
           });
}

// A disk that still fails when systemd restarts the daemon: it must exit non-zero at once
// with the file and the error, not retry in a loop (systemd spaces the restarts).
TEST(DiskFaults, ADaemonWhoseDiskStillFailsAtStartExitsPromptlyNamingTheFileAndTheError) {
  Rig rig(RigOptions{.binary = "edgegw-test-disk"});
  const std::string fail = rig.dir().file("fail");
  const std::string env = test_disk("fail_file=" + fail + ",fail_errno=EIO");
  rig.start_verifier();
  rig.start_daemon(true, {env});
  Process sensors = rig.stream(100, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  EXPECT_EQ(rig.wait_for_all(100, 60s).missing(100), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();

  std::ofstream(fail) << "";
  const auto started = Clock::now();
  rig.start_daemon(false, {env});
  const int code = rig.daemon().wait(60s);
  const double took = seconds_since(started);
  const std::string log = read_file(rig.dir().file("daemon-2.log"));
  EXPECT_EQ(code, 1) << log;
  const std::string said = line_with(log, "edgegw: gateway.state_dir: ");
  EXPECT_NE(said.find(rig.state_dir() + "/spool"), std::string::npos) << log;
  EXPECT_NE(said.find("Input/output error"), std::string::npos) << log;
  EXPECT_EQ(log.find("ingest: subscribed"), std::string::npos) << "it must not start on a failing disk\n" << log;

  ::unlink(fail.c_str());
  rig.start_daemon(true, {env});
  publish(rig.local(), "sensors/stream", "100", 1);
  const Tally t = rig.wait_for_all(101, 60s);
  EXPECT_EQ(t.missing(101), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf(
      "[ measured ] EIO at start (edgegw-test-disk fail_op=all, every write and sync fails): exit code %d "
      "after %.2f s, no retry loop; healed: 101 of 101 upstream, lost %ld, duplicated %ld; the operator saw: "
      "%s\n",
      code, took, t.missing(101), t.duplicates(), said.c_str());
}

// One number of `edgegw status --json` ("sync_waiting_ms"), or -1; and a flag.
long json_number(const std::string& json, const std::string& key) { return number_after(json, "\"" + key + "\":"); }
bool json_true(const std::string& json, const std::string& key) {
  return json.find("\"" + key + "\":true") != std::string::npos;
}

TEST(DiskFaults, ASyncStalledForMoreThan5sIsReportedOnceInTheLogStatusAndMetricsAndSoIsItsEnd) {
  RigOptions o;
  o.binary = "edgegw-test-disk";
  TempDir metrics_dir;
  const std::string metrics = metrics_dir.file("edgegw.prom");
  o.extra = "[metrics]\ntextfile = \"" + metrics + "\"\ninterval = \"1s\"";
  Rig rig(o);
  const std::string stall = rig.dir().file("stall");
  NotifySocket systemd(rig.dir().file("notify.sock"));
  rig.start_verifier();
  rig.start_daemon(true,
                   {test_disk("stall_file=" + stall), "NOTIFY_SOCKET=" + systemd.path(), "WATCHDOG_USEC=1000000"});
  publish(rig.local(), "sensors/stream", "0", 1);
  ASSERT_EQ(rig.wait_for_all(1, 60s).missing(1), 0) << rig.daemon_log();

  std::ofstream(stall) << "";
  publish(rig.local(), "sensors/stream", "1", 1);
  ASSERT_GE(rig.wait_for_counter("received", 2, 30s), 2) << rig.daemon_log();
  const auto stalled_at = Clock::now();
  // Until the limit: the wait shows, the stall is not reported.
  long waited_unreported = 0;
  std::string json;
  for (int i = 0; i < 600; ++i) {
    const bool logged = rig.daemon_log().find("the disk has held one sync") != std::string::npos;
    json = rig.status_json();
    const long waiting = json_number(json, "sync_waiting_ms");
    if (json_true(json, "disk_stalled")) {
      EXPECT_TRUE(logged || rig.daemon_log().find("the disk has held one sync") != std::string::npos) << json;
      EXPECT_GE(waiting, 5000) << "reported before the limit: " << json;
      break;
    }
    EXPECT_FALSE(logged) << "logged before the status shows it";
    waited_unreported = std::max(waited_unreported, waiting);
    systemd.receive_for(200ms);  // read, as systemd does: a full socket would block the daemon's keep-alive
  }
  const double reported_after = seconds_since(stalled_at);
  ASSERT_TRUE(json_true(json, "disk_stalled")) << json << rig.daemon_log();
  EXPECT_GE(waited_unreported, 3000) << "the wait shows in the status before the report";
  EXPECT_NE(json.find(rig.state_dir() + "/spool/"), std::string::npos) << "the status names the file: " << json;
  EXPECT_EQ(json_number(json, "disk_stalls"), 1) << json;
  const std::string warning = line_with(rig.daemon_log(), "the disk has held one sync");
  EXPECT_NE(warning.find(".seg)"), std::string::npos) << "the warning names the file: " << warning;
  std::string text;
  {
    std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
    argv.insert(argv.end(), {"status", "--config", rig.config_path()});
    EXPECT_EQ(run(argv, &text), 0) << text;
  }
  EXPECT_NE(text.find("STALLED: one sync on the disk for"), std::string::npos) << text;
  for (int i = 0; i < 50 && read_file(metrics).find("edgegw_disk_stalled 1") == std::string::npos; ++i) {
    systemd.receive_for(100ms);
  }
  EXPECT_NE(read_file(metrics).find("edgegw_disk_stalled 1"), std::string::npos) << read_file(metrics);
  // The loop goes on: the watchdog is fed during the stall.
  const long beats = count_containing(systemd.receive_for(2s), "WATCHDOG=1");
  EXPECT_GE(beats, 2) << "a keep-alive every 500 ms";
  EXPECT_EQ(rig.tally().unique.count(1), 0u) << "forwarded before its sync ended";

  ::unlink(stall.c_str());
  const Tally t = rig.wait_for_all(2, 60s);
  EXPECT_EQ(t.missing(2), 0) << rig.daemon_log();
  for (int i = 0; i < 100 && line_with(rig.daemon_log(), "the disk stall is over").empty(); ++i)
    systemd.receive_for(100ms);
  const std::string over = line_with(rig.daemon_log(), "the disk stall is over");
  EXPECT_FALSE(over.empty()) << rig.daemon_log();
  json = rig.status_json();
  EXPECT_FALSE(json_true(json, "disk_stalled")) << json;
  EXPECT_EQ(json_number(json, "sync_waiting_ms"), 0) << json;
  EXPECT_EQ(json_number(json, "disk_stalls"), 1) << "one stall, reported once: " << json;
  for (int i = 0; i < 50 && read_file(metrics).find("edgegw_disk_stalled 0") == std::string::npos; ++i) {
    systemd.receive_for(100ms);
  }
  EXPECT_NE(read_file(metrics).find("edgegw_disk_stalled 0"), std::string::npos) << read_file(metrics);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf(
      "[ measured ] a sync stalled (edgegw-test-disk stall_file) for %.1f s: status showed the wait up to %ld ms "
      "unreported, the report %.1f s in, %ld keep-alives in the 2 s after it, lost 0 of 2; the operator saw: %s "
      "| %s\n",
      seconds_since(stalled_at), waited_unreported, reported_after, beats, warning.c_str(), over.c_str());
}

// A metrics textfile for a rig (o.extra), and waiting until it says `what`.
std::string with_metrics(RigOptions& o, const TempDir& dir) {
  const std::string path = dir.file("edgegw.prom");
  o.extra = "[metrics]\ntextfile = \"" + path + "\"\ninterval = \"1s\"";
  return path;
}
bool metrics_say(const std::string& path, const std::string& what) {
  for (int i = 0; i < 100; ++i) {
    if (read_file(path).find(what) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// A full disk holds ingest, not the uplink: a backlog made durable before the disk filled
// drains upstream while the disk is still full, and the status and metrics say full.
TEST(DiskFaults, AFullDiskHoldsIngestWhileTheUplinkDrainsTheDurableBacklogAndStatusAndMetricsSayFull) {
  RigOptions o;
  o.binary = "edgegw-test-disk";
  o.spool = "max_bytes = \"1MiB\"\nsync = \"batch\"";  // 64 KiB segments
  TempDir metrics_dir;
  const std::string metrics = with_metrics(o, metrics_dir);
  Rig rig(o);
  const std::string full = rig.dir().file("disk-full");
  rig.start_verifier();
  rig.upstream().stop();  // a backlog builds in the spool
  rig.start_daemon(true, {test_disk("no_room_file=" + full)});
  constexpr long k_before = 200, k_during = 300, k_all = k_before + k_during;
  rig.publish_padded(0, k_before);
  ASSERT_GE(rig.wait_for_counter("durable", k_before, 60s), k_before) << rig.daemon_log();
  std::ofstream(full) << "";               // the disk fills up
  rig.publish_padded(k_before, k_during);  // needs more segments: no room for their files
  for (int i = 0; i < 300 && rig.daemon_log().find("spool: full") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  const std::string said = line_with(rig.daemon_log(), "spool: full");
  ASSERT_FALSE(said.empty()) << rig.daemon_log();
  EXPECT_TRUE(metrics_say(metrics, "edgegw_spool_full 1")) << read_file(metrics);
  const long held_at = json_number(rig.status_json(), "durable");

  rig.upstream().start();  // the uplink comes back while the disk is still full
  const Tally drained = rig.wait_for_all(k_before, 120s);
  EXPECT_EQ(drained.missing(k_before), 0) << "the durable backlog drains while the disk is full\n" << rig.daemon_log();
  const std::string json = rig.status_json();
  EXPECT_TRUE(json_true(json, "full")) << "still full: " << json;
  EXPECT_LT(json_number(json, "durable"), k_all) << "ingest still held: " << json;
  EXPECT_TRUE(metrics_say(metrics, "edgegw_spool_full 1")) << read_file(metrics);

  ::unlink(full.c_str());  // space returns
  const Tally t = rig.wait_for_all(k_all, 120s);
  EXPECT_EQ(t.missing(k_all), 0) << rig.daemon_log();
  EXPECT_EQ(t.seq_conflicts, 0);
  EXPECT_TRUE(metrics_say(metrics, "edgegw_spool_full 0")) << read_file(metrics);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf(
      "[ measured ] disk full (edgegw-test-disk no_room_file) with the uplink down: ingest held at %ld of %ld "
      "acknowledged; uplink back with the disk still full: %ld of the %ld durable before it drained upstream; "
      "space back: lost %ld of %ld, duplicated %ld; the operator saw: %s | status full, edgegw_spool_full 1\n",
      held_at, k_all, k_before - drained.missing(k_before), k_before, t.missing(k_all), k_all, t.duplicates(),
      said.c_str());
}

// A stalled disk holds new messages, not the uplink: records durable before the stall
// drain upstream while one sync hangs.
TEST(DiskFaults, AStalledDiskStillDrainsTheDurableBacklogUpstream) {
  RigOptions o;
  o.binary = "edgegw-test-disk";
  Rig rig(o);
  const std::string stall = rig.dir().file("stall");
  rig.start_verifier();
  rig.upstream().stop();
  rig.start_daemon(true, {test_disk("stall_file=" + stall)});
  constexpr long k_before = 200;
  rig.publish_padded(0, k_before);
  ASSERT_GE(rig.wait_for_counter("durable", k_before, 60s), k_before) << rig.daemon_log();
  std::ofstream(stall) << "";
  rig.publish_padded(k_before, 1);  // its sync hangs on the disk
  ASSERT_GE(rig.wait_for_counter("received", k_before + 1, 30s), k_before + 1) << rig.daemon_log();

  rig.upstream().start();
  const Tally drained = rig.wait_for_all(k_before, 120s);
  EXPECT_EQ(drained.missing(k_before), 0) << "the durable backlog drains during the stall\n" << rig.daemon_log();
  const std::string json = rig.status_json();
  EXPECT_GT(json_number(json, "sync_waiting_ms"), 0) << "still stalled: " << json;
  EXPECT_EQ(drained.unique.count(k_before), 0u) << "forwarded before its sync ended";

  ::unlink(stall.c_str());
  const Tally t = rig.wait_for_all(k_before + 1, 60s);
  EXPECT_EQ(t.missing(k_before + 1), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf(
      "[ measured ] a sync stalled with a durable backlog of %ld and the uplink back: %ld of %ld drained upstream "
      "during the stall; after it: lost %ld of %ld, duplicated %ld\n",
      k_before, k_before - drained.missing(k_before), k_before, t.missing(k_before + 1), k_before + 1, t.duplicates());
}

// ---- the same on a real kernel: ext4 on a loop device ---------------------------------

// A 16 MiB ext4 file system on a loop device, mounted on a fresh directory for one test;
// unmounted and detached however the test ends. skipped() says why it could not be made.
// Host builds only: under qemu-user the daemon would meet the same host kernel, at 5-20x
// the time, so a cross build's run proves nothing more.
class LoopFs {
 public:
  explicit LoopFs(std::string options) : m_options(std::move(options)), m_skipped(make()) {}
  ~LoopFs() {
    unmount();
    if (!m_device.empty()) run({"losetup", "-d", m_device});
  }
  LoopFs(const LoopFs&) = delete;
  LoopFs& operator=(const LoopFs&) = delete;

  const std::string& skipped() const { return m_skipped; }
  const std::string& path() const { return m_mount; }
  // "loop0": its directory under /sys/fs/ext4
  std::string device_name() const { return m_device.substr(m_device.rfind('/') + 1); }

  // The disk repaired: unmounted, e2fsck -fy, mounted again read-write.
  void heal() {
    unmount();
    std::string out;
    EXPECT_LT(run({"e2fsck", "-fy", m_device}, &out), 4) << "e2fsck could not repair it: " << out;
    EXPECT_TRUE(mount(out)) << out;
  }

 private:
  // Why the file system could not be made ("" when it is mounted).
  std::string make() {
    if (std::string(EDGEGW_EMULATOR_TEXT).size() > 0)
      return "a cross build (qemu-user): the real-kernel tests run on host builds";
    if (::geteuid() != 0) return "needs root (losetup, mount)";
    if (run({"sh", "-c", "command -v mkfs.ext4 && command -v e2fsck && command -v losetup"}) != 0) {
      return "needs mkfs.ext4, e2fsck and losetup";
    }
    const std::string image = m_dir.file("ext4.img");
    std::string out;
    if (run({"truncate", "-s", "16M", image}, &out) != 0 || run({"mkfs.ext4", "-q", "-m", "0", image}, &out) != 0) {
      return "mkfs.ext4 failed: " + out;
    }
    if (run({"losetup", "-f", "--show", image}, &m_device) != 0 || m_device.rfind("/dev/", 0) != 0) {
      const std::string why = m_device;
      m_device.clear();
      return "no loop device (losetup -f): " + why;
    }
    m_device.erase(m_device.find_last_not_of(" \n") + 1);
    m_mount = m_dir.file("mnt");
    std::filesystem::create_directory(m_mount);
    if (!mount(out)) return "mount failed: " + out;
    return "";
  }
  bool mount(std::string& out) {
    std::vector<std::string> argv = {"mount", "-t", "ext4"};
    if (!m_options.empty()) argv.insert(argv.end(), {"-o", m_options});
    argv.insert(argv.end(), {m_device, m_mount});
    m_mounted = run(argv, &out) == 0;
    return m_mounted;
  }
  void unmount() {
    if (!m_mounted) return;
    if (run({"umount", m_mount}) != 0) run({"umount", "-l", m_mount});  // busy: detached now, freed when let go
    m_mounted = false;
  }

  std::string m_options;
  TempDir m_dir;  // the image and the mount point; after the unmount in the destructor
  std::string m_device, m_mount;
  bool m_mounted = false;
  std::string m_skipped;  // last: made by make(), which sets the others
};

// A rig whose state directory is on `fs`, with a spool that fits it (2 MiB: 128 KiB
// segments; the default 256 MiB spool's 16 MiB segments would not).
RigOptions on(const LoopFs& fs, RigOptions o = {.spool = "max_bytes = \"2MiB\"\nsync = \"batch\""}) {
  o.state_dir = fs.path() + "/state";
  return o;
}

// ENOSPC from a real file system: another process fills it during an uplink outage.
TEST(RealDisk, AFullExt4HoldsIngestAndWhenTheFillerGoesIngestResumesByItselfAndNothingIsLost) {
  LoopFs fs("");
  if (!fs.skipped().empty()) GTEST_SKIP() << fs.skipped();
  Rig rig(on(fs, RigOptions{.spool = "max_bytes = \"1MiB\"\nsync = \"batch\""}));  // 64 KiB segments
  const std::string filler = fs.path() + "/filler";
  rig.start_verifier();
  rig.upstream().stop();  // everything stays in the spool
  rig.start_daemon();
  constexpr long k_before = 200, k_during = 300, k_all = k_before + k_during;
  rig.publish_padded(0, k_before);
  ASSERT_GE(rig.wait_for_counter("durable", k_before, 60s), k_before) << rig.daemon_log();
  std::string out;
  run({"sh", "-c", "dd if=/dev/zero of=" + filler + " bs=64k; sync"}, &out, 120s);  // dd stops at ENOSPC
  ASSERT_NE(out.find("No space left on device"), std::string::npos) << out;
  const auto filled = Clock::now();
  rig.publish_padded(k_before, k_during);  // more segments than the reserved one: no room for them
  for (int i = 0; i < 600 && rig.daemon_log().find("spool: full") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  const double detect_s = seconds_since(filled);
  const std::string log = rig.daemon_log();
  const std::string disk_full = line_with(log, "the disk is full"), spool_full = line_with(log, "spool: full");
  EXPECT_FALSE(disk_full.empty()) << log;
  EXPECT_FALSE(spool_full.empty()) << log;
  const std::string json = rig.status_json();
  EXPECT_TRUE(json_true(json, "full")) << "the status shows the full spool: " << json;
  const long held_at = json_number(json, "durable");
  EXPECT_LT(held_at, k_all) << "ingest held while the disk is full";
  EXPECT_EQ(rig.daemon().running(), true) << "a full disk is no reason to exit";

  ASSERT_EQ(::unlink(filler.c_str()), 0);
  run({"sync"});
  const auto freed = Clock::now();
  EXPECT_GE(rig.wait_for_counter("durable", k_all, 60s), k_all) << "ingest resumes by itself\n" << rig.daemon_log();
  const double resume_s = seconds_since(freed);
  EXPECT_FALSE(json_true(rig.status_json(), "full"));
  rig.upstream().start();
  const Tally t = rig.wait_for_all(k_all, 120s);
  EXPECT_EQ(t.missing(k_all), 0) << rig.daemon_log();
  EXPECT_EQ(t.seq_conflicts, 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf(
      "[ measured ] ENOSPC on a real 16 MiB ext4 (dd filled it during an uplink outage): the spool full %.1f s "
      "later, ingest held at %ld of %ld acknowledged; the filler deleted: all %ld acknowledged %.1f s later with "
      "the uplink still down; upstream back: lost %ld, duplicated %ld; the operator saw: %s | %s\n",
      detect_s, held_at, k_all, k_all, resume_s, t.missing(k_all), t.duplicates(), disk_full.c_str(),
      spool_full.c_str());
}

TEST(RealDisk, Ext4RemountedReadOnlyByAnErrorStopsTheDaemonNamingTheErrorAndARestartDeliversEverything) {
  LoopFs fs("errors=remount-ro");
  if (!fs.skipped().empty()) GTEST_SKIP() << fs.skipped();
  const std::string trigger = "/sys/fs/ext4/" + fs.device_name() + "/trigger_fs_error";
  if (::access(trigger.c_str(), W_OK) != 0)
    GTEST_SKIP() << trigger << " is missing: this kernel cannot inject an ext4 error";
  Rig rig(on(fs));
  fault_mid_stream(rig, MidStream{
                            .fault = "EROFS from ext4 (errors=remount-ro)",
                            .how = "echo 1 > " + trigger + "; healed by umount, e2fsck -fy, mount",
                            .env = {},
                            .inject = [&] { std::ofstream(trigger) << "1\n"; },
                            .heal = [&] { fs.heal(); },
                            // ext4 aborts its journal as it remounts: a write then meets EROFS, a sync of the
                            // aborted journal EIO, whichever the daemon was doing.
                            .must_say = {rig.state_dir() + "/spool/"},
                            .one_of = {"Read-only file system (EROFS)", "Input/output error (EIO)"},
                        });
}

TEST(RealDisk, Ext4ShutDownStopsTheDaemonNamingEioAndARestartDeliversEverything) {
  LoopFs fs("");
  if (!fs.skipped().empty()) GTEST_SKIP() << fs.skipped();
  Rig rig(on(fs));
  // EXT4_IOC_SHUTDOWN (linux/ext4.h, not in every distribution's headers): every operation
  // on the file system fails with EIO from now on; NOLOGFLUSH: the journal is not flushed,
  // as at a device that went away.
  constexpr unsigned long k_ext4_shutdown = _IOR('X', 125, __u32);
  constexpr __u32 k_nologflush = 2;
  fault_mid_stream(rig,
                   MidStream{
                       .fault = "EIO from ext4 shut down",
                       .how = "ioctl EXT4_IOC_SHUTDOWN NOLOGFLUSH on the mount; healed by umount, e2fsck -fy, mount",
                       .env = {},
                       .inject =
                           [&] {
                             const int fd = ::open(fs.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                             __u32 flags = k_nologflush;
                             EXPECT_EQ(::ioctl(fd, k_ext4_shutdown, &flags), 0) << std::strerror(errno);
                             ::close(fd);
                           },
                       .heal = [&] { fs.heal(); },
                       .must_say = {rig.state_dir() + "/spool/", "Input/output error (EIO)"},
                   });
}

}  // namespace
}  // namespace edgegw::test
