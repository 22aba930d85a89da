// The daemon end to end: local mosquitto -> edgegw run -> upstream mosquitto, with the
// faults the spool exists for. Counts are asserted; times are printed, not asserted.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "spool/spool.hpp"
#include "support/gateway_rig.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

TEST(Gateway, Forwards100kMessagesInOrderWithNoneLost) {
  Rig rig;
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 100'000;
  auto start = Clock::now();
  Process sensors = publish_lines(rig.local(), rig.dir(), "sensors/load", k_count, 1);
  EXPECT_EQ(sensors.wait(600s), 0);
  Tally t = rig.wait_for_all(k_count, 600s);
  std::printf("[ measured ] 100000 QoS 1 messages through edgegw in %.2f s\n", seconds_since(start));
  EXPECT_EQ(t.missing(k_count), 0);
  EXPECT_EQ(t.duplicates(), 0);
  std::vector<long> expected(k_count);
  for (long i = 0; i < k_count; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_TRUE(t.order == expected) << "upstream order differs from ingest order";
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stat("forwarded"), k_count) << rig.daemon_log();
}

TEST(Gateway, ForwardsOverAMutualTlsUplinkAndReconnectsAfterAnOutage) {
  RigOptions o;
  o.uplink_tls = true;
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 3000;
  Process sensors = rig.stream(k_count, 1000);
  std::this_thread::sleep_for(1s);
  rig.upstream().stop();  // the TLS session breaks; the restarted broker cannot resume it
  std::this_thread::sleep_for(2s);
  rig.upstream().start();
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 120s);
  EXPECT_EQ(t.missing(k_count), 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const std::string log = rig.daemon_log();
  EXPECT_NE(log.find("uplink: TLS TLS-ECDHE-"), std::string::npos) << log;
  std::size_t at = log.find("uplink: TLS ");
  std::printf("[ measured ] %s\n", log.substr(at, log.find('\n', at) - at).c_str());
}

TEST(Gateway, Mqtt5UplinkCarriesGwAndSeqPropertiesAndKeepsTheRetainFlag) {
  Rig rig;
  rig.start_daemon();
  // A second upstream subscriber that prints each message's user properties.
  const std::string out = rig.dir().file("props.txt");
  Process props(with_broker(rig.upstream(),
                            {"mosquitto_sub", "-V", "mqttv5", "-q", "1", "-t", "up/sensors/props/#", "-F", "%P|%p"}),
                Redirects{.stdout_file = out});
  for (int i = 0; i < 500 && read_file(out).find("probe") == std::string::npos; ++i) {
    publish(rig.upstream(), "up/sensors/props/probe", "probe", 1);
    std::this_thread::sleep_for(20ms);
  }
  publish(rig.local(), "sensors/props/a", "first", 1);
  publish(rig.local(), "sensors/props/b", "second", 1);
  publish(rig.local(), "sensors/props/c", "kept", 1, true);
  std::vector<std::string> lines;
  for (int i = 0; i < 500 && lines.size() < 3; ++i) {
    std::this_thread::sleep_for(20ms);
    lines.clear();
    std::istringstream in(read_file(out));
    for (std::string line; std::getline(in, line);) {
      if (line.find("probe") == std::string::npos) lines.push_back(line);
    }
  }
  ASSERT_EQ(lines.size(), 3u) << read_file(out);
  long last_seq = 0;
  const char* payloads[] = {"first", "second", "kept"};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NE(lines[i].find("gw:gw-test"), std::string::npos) << lines[i];
    std::size_t at = lines[i].find("seq:");
    ASSERT_NE(at, std::string::npos) << lines[i];
    long seq = std::stol(lines[i].substr(at + 4));
    EXPECT_GT(seq, last_seq) << "seq must grow: " << lines[i];
    last_seq = seq;
    EXPECT_EQ(lines[i].substr(lines[i].find('|') + 1), payloads[i]);
  }
  // The retained message is retained upstream: a new subscriber gets it at once.
  std::string retained;
  EXPECT_EQ(run(with_broker(rig.upstream(),
                            {"mosquitto_sub", "-t", "up/sensors/props/c", "-C", "1", "-W", "10", "-F", "%r %p"}),
                &retained),
            0);
  EXPECT_EQ(retained, "1 kept\n");
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

// End to end with real brokers and a real outage. The rules under it (nothing lost, no
// slot held for the backlog, replay in order) are tested to the message, without sleeping,
// in tests/unit/gateway/pipeline_test.cpp: this outage is 8 s (it was 30 s).
TEST(Gateway, UpstreamDownUnderLoadLosesNothing) {
  Rig rig;
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 4'000;  // ~13 s at 300 messages/s
  Process sensors = rig.stream(k_count, 300);
  std::this_thread::sleep_for(3s);
  rig.upstream().stop();
  auto outage = Clock::now();
  std::this_thread::sleep_for(8s);
  rig.upstream().start();
  std::printf("[ measured ] upstream down for %.1f s\n", seconds_since(outage));
  EXPECT_EQ(sensors.wait(120s), 0);
  Tally t = rig.wait_for_all(k_count, 300s);
  EXPECT_EQ(t.missing(k_count), 0);
  std::printf("[ measured ] %zu received upstream, %ld duplicates (resent after the disconnect)\n", t.order.size(),
              t.duplicates());
  EXPECT_LE(t.duplicates(), 2 * 32);  // the unacknowledged window, resent on reconnect
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_GT(rig.stat("replayed"), 1000) << "the outage backlog (2,400) should come from the spool\n"
                                        << rig.daemon_log();
}

TEST(Gateway, TwentyKillNinesDuringOneStreamLoseNothing) {
  Rig rig;
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 15'000;  // ~25 s at 600 messages/s
  Process sensors = rig.stream(k_count, 600);
  std::mt19937 random(12345);
  std::uniform_int_distribution<int> pause_ms(200, 900);
  int kills = 0;
  while (kills < 20 || sensors.running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random)));
    if (kills >= 40) break;
    rig.daemon().signal(SIGKILL);
    rig.daemon().wait(10s);
    ++kills;
    rig.start_daemon(false);
  }
  EXPECT_EQ(sensors.wait(120s), 0);
  Tally t = rig.wait_for_all(k_count, 300s);
  EXPECT_GE(kills, 20);
  EXPECT_EQ(t.missing(k_count), 0);
  // docs/SPOOL.md "What a crash resends", per crash at most: the uplink's window in flight
  // (max_inflight, 32); the records upstream acknowledged after the last ack mark reached
  // the disk: records flow all through this stream, so an ack mark ends every sync and
  // that is what upstream acknowledges during one sync (a few ms on this disk, taken as
  // one more window); and, with new seqs, what the local broker redelivers because its
  // PUBACK had not reached it (the ingest window, receive_maximum, 32). The bound when no
  // records flow (the "ack" file: 1 s, at most 4,096) is Spool.ACrashWhileABacklogDrains...
  constexpr long k_uplink_window = 32, k_acks_during_one_sync = 32, k_ingest_window = 32;
  const long bound = kills * (k_uplink_window + k_acks_during_one_sync + k_ingest_window);
  std::printf("[ measured ] %d SIGKILLs: %zu received, %ld duplicates (bound %ld), 0 lost\n", kills, t.order.size(),
              t.duplicates(), bound);
  EXPECT_LE(t.duplicates(), bound);
  EXPECT_EQ(t.seq_conflicts, 0) << "a seq reused for another message after a crash";
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

TEST(Gateway, SigtermUnderLoadStopsCleanlyAndARestartLosesNothing) {
  Rig rig;
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 3000;
  Process sensors = rig.stream(k_count, 500);
  std::this_thread::sleep_for(2s);
  auto stop = Clock::now();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf("[ measured ] graceful stop under load took %.3f s\n", seconds_since(stop));
  EXPECT_NE(rig.daemon_log().find("gateway: stopped:"), std::string::npos);
  rig.start_daemon();  // the local broker kept what arrived meanwhile
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 120s);
  EXPECT_EQ(t.missing(k_count), 0);
  // The stop commits and acknowledges the batch in flight, waits for the upstream
  // acknowledgements and persists the cursor, then closes gracefully. Typically nothing
  // is sent twice; the design bound is one ingest window (receive_maximum, 32 here) that
  // the local broker may redeliver if its connection ends before it read our PUBACKs.
  std::printf("[ measured ] %ld duplicates after a graceful stop and restart\n", t.duplicates());
  EXPECT_LE(t.duplicates(), 32);
  EXPECT_EQ(t.seq_conflicts, 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

// A message is forwarded only once its record is durable. Before, a message went upstream
// straight from the pool while its record still waited for the group commit; a crash then
// let the restarted spool give the same seq to another message (QoS 0 is not redelivered),
// and a consumer dropping duplicates by seq would drop real data.
TEST(Gateway, NoSeqIsEverGivenToTwoMessagesAcrossACrashBeforeTheCommit) {
  RigOptions o;
  o.spool = "sync = \"batch\"\ncommit_interval = \"2s\"";  // a wide window before the second commit
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  // QoS 0 (never redelivered). The first message's sync starts at once; the rest wait for
  // the next one, 2 s later.
  Process before = rig.stream(20, 0, 0);
  EXPECT_EQ(before.wait(30s), 0);
  std::this_thread::sleep_for(300ms);
  rig.daemon().signal(SIGKILL);  // inside the 2 s before the second commit
  rig.daemon().wait(10s);
  rig.start_daemon();
  Process after = rig.stream(20, 0, 0, 100);  // "100".."119"
  EXPECT_EQ(after.wait(30s), 0);
  Tally t = rig.wait_until([](const Tally& x) { return x.unique.count(119) > 0; }, 60s);
  EXPECT_GT(t.unique.count(119), 0u) << rig.daemon_log();
  EXPECT_EQ(t.seq_conflicts, 0) << "the same seq went upstream for two different messages";
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

// Writes `count` records as the daemon would have spooled them ("0".."count-1").
void fill_spool(const std::string& state_dir, long count) {
  spool::Options o;
  o.dir = state_dir + "/spool";
  o.max_bytes = 256ull << 20;
  o.sync = false;
  spool::Spool s(o);
  std::string error;
  ASSERT_TRUE(s.open(error)) << error;
  std::uint64_t seq = 0;
  for (long i = 0; i < count; ++i) {
    std::string p = std::to_string(i);
    const std::span<const std::uint8_t> payload(reinterpret_cast<const std::uint8_t*>(p.data()), p.size());
    spool::Append a = s.append("sensors/old", payload, 1, false, 0, seq);
    if (a == spool::Append::busy && s.commit()) a = s.append("sensors/old", payload, 1, false, 0, seq);  // batch full
    ASSERT_EQ(a, spool::Append::ok);
  }
  ASSERT_TRUE(s.commit());
}

TEST(Gateway, RestartWithAMillionRecordsForwardsAfterBoundedRecovery) {
  Rig rig;
  constexpr long k_records = 1'000'000;
  fill_spool(rig.state_dir(), k_records);
  rig.start_verifier();
  auto start = Clock::now();
  rig.start_daemon(false);
  Tally t;
  while (t.order.size() < 1000 && seconds_since(start) < 120) {
    std::this_thread::sleep_for(20ms);
    t = rig.tally();
  }
  const double first_1000 = seconds_since(start);
  ASSERT_GE(t.order.size(), 1000u) << rig.daemon_log();
  EXPECT_EQ(t.order[0], 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::string log = rig.daemon_log();
  std::size_t at = log.find("recovery took ");
  ASSERT_NE(at, std::string::npos) << log;
  double ms = 0;
  unsigned long long bytes_read = 0;
  ASSERT_EQ(std::sscanf(log.c_str() + at, "recovery took %lf ms, read %llu bytes", &ms, &bytes_read), 2);
  std::printf("[ measured ] %ld records: recovery %.2f ms reading %llu bytes; first 1000 upstream %.2f s after start\n",
              k_records, ms, bytes_read, first_1000);
  EXPECT_NE(log.find("recovered 1000000 unacknowledged records"), std::string::npos) << log;
  // The work is bounded by one segment (16 MiB here), not by the spool's 50+ MB.
  EXPECT_LE(bytes_read, (16u << 20) + (64u << 10));
}

TEST(Gateway, BacklogDrainsAtTheConfiguredRateWithNewMessagesBehindItInOrder) {
  RigOptions o;
  o.uplink += "\ndrain_rate = 500";
  Rig rig(o);
  constexpr long k_backlog = 1000, k_live = 300;
  fill_spool(rig.state_dir(), k_backlog);  // "0".."999", as if left by an outage
  rig.start_verifier();
  rig.start_daemon();
  auto start = Clock::now();
  Process sensors = rig.stream(k_live, 300, 1, k_backlog);  // "1000".."1299" meanwhile
  Tally t = rig.wait_for_unique(k_backlog, 60s);
  const double drained = seconds_since(start);
  EXPECT_EQ(sensors.wait(60s), 0);
  t = rig.wait_for_all(k_backlog + k_live, 60s);
  std::printf("[ measured ] backlog of %ld drained in %.2f s (%.0f msg/s, drain_rate 500)\n", k_backlog, drained,
              static_cast<double>(k_backlog) / drained);
  // The token bucket allows one burst of max_inflight (32), then 500/s: no faster than
  // that, however fast the machine. (Slower is allowed: emulated runs are.)
  EXPECT_GE(drained, (k_backlog - 32) / 500.0 * 0.9);
  std::vector<long> expected(k_backlog + k_live);
  for (long i = 0; i < k_backlog + k_live; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_TRUE(t.order == expected) << "the backlog must come first, new messages behind it, each in order";
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

TEST(Gateway, DamagedSpoolIsRecoveredNotRefused) {
  Rig rig;
  constexpr long k_records = 1000;
  fill_spool(rig.state_dir(), k_records);
  std::string seg = rig.state_dir() + "/spool/0000000000000001.seg";
  {  // flip a payload byte of record 501 ("500"): 32-byte segment header, then records
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    long off = 32;
    for (int i = 0; i < 500; ++i) off += 36 + 11 + static_cast<long>(std::to_string(i).size());
    f.seekp(off + 36 + 11);
    f.put('X');
  }
  {  // and a torn record after the last (the rest of the file is preallocated zeros)
    const std::string file = read_file(seg);
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<long>(file.find_last_not_of('\0') + 1));
    f.write("EGWR\x40\x00\x00\x00torn", 12);
  }
  rig.start_verifier();
  rig.start_daemon(false);
  // Records go upstream in order, so once 999 have arrived, record 500 would have too.
  Tally t = rig.wait_for_unique(k_records - 1, 120s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(t.missing(k_records), 1);
  EXPECT_EQ(t.unique.count(500), 0u) << "a record failing its checksum must never be forwarded";
  const std::string log = rig.daemon_log();
  EXPECT_NE(log.find("cutting a torn tail of 12 bytes"), std::string::npos) << log;
  EXPECT_NE(log.find("record failing its checksum at offset"), std::string::npos) << log;
  EXPECT_EQ(rig.stat("corrupt"), 1) << log;
}

RigOptions small_spool(const char* when_full) {
  RigOptions o;
  o.spool = std::string("max_bytes = \"1MiB\"\nsync = \"batch\"\nwhen_full = \"") + when_full + "\"";
  return o;
}

// With the upstream broker down, sensors publish 8,000 messages of ~400 bytes (3.2 MB)
// against a 1 MiB spool; returns once the daemon said its spool is full.
constexpr long k_full_count = 8000;
void overfill_spool(Rig& rig) {
  rig.start_verifier();
  rig.upstream().stop();
  rig.start_daemon();
  std::string path = rig.dir().file("big.txt");
  std::ofstream f(path);
  for (long i = 0; i < k_full_count; ++i) f << i << ' ' << std::string(400, 'x') << '\n';
  f.close();
  std::string cmd;
  for (const std::string& a : with_broker(rig.local(), {"mosquitto_pub", "-t", "sensors/big", "-q", "1", "-l"}))
    cmd += a + " ";
  Process sensors({"sh", "-c", cmd + "< " + path});
  EXPECT_EQ(sensors.wait(120s), 0);
  for (int i = 0; i < 600 && rig.daemon_log().find("spool: full") == std::string::npos; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_NE(rig.daemon_log().find("spool: full"), std::string::npos) << rig.daemon_log();
}

TEST(Gateway, FullSpoolWithBackpressureHoldsIngestAndLosesNothing) {
  Rig rig(small_spool("backpressure"));
  overfill_spool(rig);  // the local broker holds what the spool cannot take
  rig.upstream().start();
  Tally t = rig.wait_for_all(k_full_count, 300s);
  EXPECT_EQ(t.missing(k_full_count), 0);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stat("dropped"), 0);
}

TEST(Gateway, FullSpoolWithDropOldestCountsWhatItDropped) {
  Rig rig(small_spool("drop-oldest"));
  overfill_spool(rig);  // every message is taken in, the oldest segments make room
  rig.upstream().start();
  // Delivery is done once the newest message is there and nothing new has arrived for 3 s
  // (under emulation the uplink's reconnect can take longer than 3 s to start delivering).
  Tally t = rig.wait_until([](const Tally& x) { return x.unique.count(k_full_count - 1) > 0; }, 120s);
  for (auto quiet_since = Clock::now(); seconds_since(quiet_since) < 3;) {
    std::this_thread::sleep_for(200ms);
    Tally now = rig.tally();
    if (now.unique.size() != t.unique.size()) quiet_since = Clock::now();
    t = now;
  }
  EXPECT_EQ(rig.stop_daemon(), 0);
  const long dropped = rig.stat("dropped");
  std::printf("[ measured ] drop-oldest: %ld dropped, %zu delivered of %ld\n", dropped, t.unique.size(), k_full_count);
  EXPECT_GT(dropped, 0) << rig.daemon_log();
  EXPECT_NE(rig.daemon_log().find("dropped the oldest segment"), std::string::npos);
  EXPECT_EQ(rig.stat("received"), k_full_count);
  EXPECT_EQ(static_cast<long>(t.unique.size()) + dropped, k_full_count) << "every message is delivered or counted";
  EXPECT_GT(t.unique.count(k_full_count - 1), 0u) << "the newest messages are the ones kept";
}

TEST(Gateway, UnusableStateDirectoryIsAClearErrorAndExitCode1) {
  Rig rig;
  std::ofstream(rig.state_dir()) << "a file, not a directory";
  rig.start_daemon(false);
  EXPECT_EQ(rig.daemon().wait(60s), 1);
  const std::string log = rig.daemon_log();
  EXPECT_NE(log.find("gateway.state_dir: " + rig.state_dir()), std::string::npos) << log;
  EXPECT_NE(log.find("Not a directory"), std::string::npos) << log;
}

}  // namespace
}  // namespace edgegw::test
