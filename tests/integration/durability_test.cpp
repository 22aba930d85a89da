// The durable path under a slow or stalled disk (the edgegw-test-disk build, its spool's
// syncs slowed or held by EDGEGW_TEST_DISK): the event loop never waits for the disk, a
// slow sync is covered by big batches, and the cursor costs no sync per commit. Counts
// are asserted; times are printed, not asserted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "support/gateway_rig.hpp"
#include "support/notify_socket.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

TEST(Durability, ASyncStalledForSecondsStopsNeitherForwardingNorKeepalivesNorTheWatchdog) {
  RigOptions o;
  o.binary = "edgegw-test-disk";
  o.uplink = "max_inflight = 32\nkeepalive = \"1s\"";  // mosquitto drops a client silent for 1.5 s
  o.ingest = "keepalive = \"1s\"";
  o.receive_maximum = 256;  // the local broker may send this many before it waits for PUBACKs
  o.slots = 1024;
  Rig rig(o);
  const std::string stall = rig.dir().file("stall");
  NotifySocket systemd(rig.dir().file("notify.sock"));
  rig.start_verifier();
  rig.upstream().stop();
  rig.start_daemon(
      true, {"EDGEGW_TEST_DISK=stall_file=" + stall, "NOTIFY_SOCKET=" + systemd.path(), "WATCHDOG_USEC=1000000"});
  // A backlog of durable records, made while the upstream broker is away.
  constexpr long k_backlog = 1000;
  Process sensors = rig.stream(k_backlog, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  ASSERT_GE(rig.wait_for_counter("durable", k_backlog, 60s), k_backlog) << rig.daemon_log();

  // From now on every sync waits; one more message puts one on the disk, stalled.
  std::ofstream(stall) << "";
  publish(rig.local(), "sensors/stream", std::to_string(k_backlog), 1);
  ASSERT_GE(rig.wait_for_counter("received", k_backlog + 1, 30s), k_backlog + 1) << rig.daemon_log();
  const auto stalled_at = Clock::now();
  // Ingest keeps reading during the stall, into the next batch: the messages are received
  // and appended, none is durable (nor acknowledged locally) before the sync ends.
  constexpr long k_during = 200, k_all = k_backlog + 1 + k_during;
  Process more = rig.stream(k_during, 0, 1, k_backlog + 1);
  EXPECT_EQ(more.wait(60s), 0);
  EXPECT_EQ(rig.wait_for_counter("received", k_all, 30s), k_all) << "ingest stopped reading during the stall";
  EXPECT_EQ(rig.status_counter("records"), k_all) << "not appended to the next batch (the spool's records)";
  EXPECT_EQ(rig.status_counter("durable"), k_backlog);
  systemd.receive_for(100ms);  // what was sent before the stall
  rig.upstream().start();

  // The durable backlog goes upstream during the stall...
  Tally t = rig.wait_for_unique(k_backlog, 120s);
  EXPECT_EQ(t.missing(k_backlog), 0) << rig.daemon_log();
  const double forwarded_after = seconds_since(stalled_at);
  // ...and the loop keeps both sessions alive and systemd's watchdog fed, both sessions idle.
  const std::vector<std::string> beats = systemd.receive_for(3s);
  EXPECT_GE(count_containing(beats, "WATCHDOG=1"), 4) << "a keep-alive every 500 ms";
  EXPECT_EQ(rig.status_counter("ingest_reconnects"), 0) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("uplink_reconnects"), 0) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("durable"), k_backlog) << "acknowledged locally before its sync ended";
  EXPECT_EQ(rig.status_counter("received"), k_all);
  const Tally during = rig.tally();
  EXPECT_EQ(during.unique.lower_bound(k_backlog), during.unique.end()) << "forwarded before its sync ended";
  const double stalled_for = seconds_since(stalled_at);

  ::unlink(stall.c_str());  // the sync ends: the messages are acknowledged and forwarded
  t = rig.wait_for_all(k_all, 60s);
  EXPECT_EQ(t.missing(k_all), 0) << rig.daemon_log();
  EXPECT_EQ(rig.status_counter("durable"), k_all);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf(
      "[ measured ] one sync stalled %.1f s: %ld messages received during it; the %ld-record backlog was upstream "
      "%.1f s into it, %ld keep-alives in its last 3 s, no reconnect\n",
      stalled_for, k_during, k_backlog, forwarded_after, count_containing(beats, "WATCHDOG=1"));
}

TEST(Durability, SlowSyncsAreCoveredByBigBatchesAndNothingIsLost) {
  RigOptions o;
  o.binary = "edgegw-test-disk";
  o.receive_maximum = 1024;
  o.slots = 2048;
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon(true, {"EDGEGW_TEST_DISK=sync_delay=20ms"});
  constexpr long k_count = 5000;
  const auto start = Clock::now();
  Process sensors = publish_lines(rig.local(), rig.dir(), "sensors/load", k_count, 1);  // flat out
  EXPECT_EQ(sensors.wait(120s), 0);
  Tally t = rig.wait_for_all(k_count, 120s);
  const double took = seconds_since(start);
  EXPECT_EQ(t.missing(k_count), 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const long commits = rig.stat("commits"), spooled = rig.stat("spooled");
  ASSERT_GT(commits, 0) << rig.daemon_log();
  std::printf(
      "[ measured ] every sync 20 ms slower: %ld messages in %.2f s (%.0f msg/s), %ld commits, %.1f records "
      "per commit\n",
      k_count, took, k_count / took, commits, static_cast<double>(spooled) / static_cast<double>(commits));
  // A commit of one or a few records per 20 ms sync would cap the gateway far below the
  // publisher's pace: the window lets what arrives during a sync ride the next one.
  EXPECT_GE(spooled, 20 * commits) << "at least 20 records per sync on average";
}

TEST(Durability, TheCursorIsWrittenAtMostOncePerSecondUnderSteadyLoad) {
  Rig rig;
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 2000;
  const auto start = Clock::now();
  Process sensors = rig.stream(k_count, 500);
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 60s);
  EXPECT_EQ(t.missing(k_count), 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const double took = seconds_since(start);
  const long cursor_writes = rig.stat("cursor_writes"), commits = rig.stat("commits");
  std::printf("[ measured ] %ld messages at 500 msg/s over %.1f s: %ld commits, %ld writes of the ack file\n", k_count,
              took, commits, cursor_writes);
  // The acknowledged position rides along with the records (ack marks); the file is
  // written when they do not flow, at most once a second, and at the stop.
  EXPECT_LE(cursor_writes, static_cast<long>(took) + 2);
  EXPECT_GT(commits, 0);
}

// A disk full when a new segment must start: ingest is held (the local broker keeps the
// messages), and once space returns it resumes by itself: a retry every second, not an
// upstream event that may never come.
TEST(Durability, a_full_disk_holds_ingest_until_space_returns_and_then_resumes_by_itself) {
  RigOptions o;
  o.binary = "edgegw-test-disk";
  o.spool = "max_bytes = \"1MiB\"\nsync = \"batch\"";  // 64 KiB segments
  Rig rig(o);
  const std::string full = rig.dir().file("disk-full");
  rig.start_verifier();
  rig.start_daemon(true, {"EDGEGW_TEST_DISK=no_room_file=" + full});
  constexpr long k_before = 200, k_during = 300;
  rig.publish_padded(0, k_before);  // into a second segment; the third one's file is made
  EXPECT_EQ(rig.wait_for_all(k_before, 60s).missing(k_before), 0) << rig.daemon_log();
  std::ofstream(full) << "";               // the disk fills up
  rig.publish_padded(k_before, k_during);  // needs a fourth segment: no room for its file
  for (int i = 0; i < 300 && rig.daemon_log().find("spool: full") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  const std::string log = rig.daemon_log();
  EXPECT_NE(log.find("the disk is full"), std::string::npos) << log;
  EXPECT_NE(log.find("spool: full"), std::string::npos) << log;
  EXPECT_LT(rig.tally().unique.size(), static_cast<std::size_t>(k_before + k_during)) << "held while the disk is full";
  ::unlink(full.c_str());  // space returns; nothing else happens upstream
  Tally t = rig.wait_for_all(k_before + k_during, 60s);
  EXPECT_EQ(t.missing(k_before + k_during), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

}  // namespace
}  // namespace edgegw::test
