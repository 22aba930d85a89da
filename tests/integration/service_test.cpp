// edgegw under systemd's notify protocol, with a notify socket the test owns: READY=1 once
// started, STATUS= lines, WATCHDOG=1 keep-alives from the event loop that stop while the
// process is stopped (what makes systemd restart a stuck daemon), RELOADING=1 and READY=1
// around a reload (SIGHUP), STOPPING=1 on SIGTERM.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "support/gateway_rig.hpp"
#include "support/notify_socket.hpp"
#include "util/fd.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

TEST(Service, notifies_ready_status_watchdog_and_stopping_and_the_watchdog_stops_with_the_loop) {
  Rig rig;
  NotifySocket systemd(rig.dir().file("notify.sock"));
  // WatchdogSec=0.6s: keep-alives every 300 ms.
  rig.start_daemon(true, {"NOTIFY_SOCKET=" + systemd.path(), "WATCHDOG_USEC=600000"});
  const std::string ready = systemd.wait_for("READY=1", 30s);
  ASSERT_NE(ready, "") << rig.daemon_log();
  EXPECT_NE(ready.find("STATUS=ingest "), std::string::npos) << ready;
  EXPECT_EQ(ready.find("()"), std::string::npos) << "no empty list of unsubscribed filters: " << ready;

  std::vector<std::string> running = systemd.receive_for(2s);
  const long beats = count_containing(running, "WATCHDOG=1");
  EXPECT_GE(beats, 4) << "about one keep-alive every 300 ms";
  EXPECT_GE(count_containing(running, "STATUS="), 0);

  // A stuck event loop sends nothing: systemd would restart it after WatchdogSec.
  rig.daemon().signal(SIGSTOP);
  systemd.receive_for(200ms);  // what was already on its way
  std::vector<std::string> stuck = systemd.receive_for(1500ms);
  rig.daemon().signal(SIGCONT);
  EXPECT_EQ(count_containing(stuck, "WATCHDOG=1"), 0);
  EXPECT_NE(systemd.wait_for("WATCHDOG=1", 5s), "") << "keep-alives resume with the loop";

  // SIGHUP (ExecReload=): RELOADING=1 with the time, then READY=1 once the reload is done.
  rig.daemon().signal(SIGHUP);
  std::vector<std::string> reload = systemd.receive_for(1500ms);
  const auto at = [&](const std::string& what) {
    return std::find_if(reload.begin(), reload.end(), [&](const std::string& m) { return m.find(what) != m.npos; });
  };
  ASSERT_NE(at("RELOADING=1"), reload.end()) << rig.daemon_log();
  EXPECT_NE(at("RELOADING=1")->find("MONOTONIC_USEC="), std::string::npos) << *at("RELOADING=1");
  EXPECT_GT(at("READY=1"), at("RELOADING=1"));

  rig.daemon().signal(SIGTERM);
  const std::string stopping = systemd.wait_for("STOPPING=1", 10s);
  EXPECT_NE(stopping, "");
  EXPECT_EQ(rig.daemon().wait(30s), 0) << rig.daemon_log();
  std::printf("[ measured ] %ld keep-alives in 2 s at WATCHDOG_USEC=600000; READY: %s", beats, ready.c_str());
}

TEST(Service, without_notify_socket_the_daemon_runs_and_sends_nothing) {
  Rig rig;
  rig.start_daemon();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(rig.daemon_log().find("NOTIFY_SOCKET"), std::string::npos);
}

std::vector<std::string> edgegw(std::vector<std::string> args) {
  std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

TEST(Status, reports_sessions_counters_and_stage_latencies_and_fails_cleanly_without_a_daemon) {
  Rig rig;
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 2000;
  Process sensors = rig.stream(k_count, 1000);
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 60s);
  ASSERT_EQ(t.missing(k_count), 0);

  std::string text, json;
  EXPECT_EQ(run(edgegw({"status", "--config", rig.config_path()}), &text), 0) << text;
  std::printf("%s", text.c_str());
  EXPECT_NE(text.find("ingest   connected"), std::string::npos) << text;
  EXPECT_NE(text.find("uplink   connected"), std::string::npos) << text;
  EXPECT_NE(text.find("forwarded 2000 "), std::string::npos) << text;
  EXPECT_NE(text.find("end_to_end        2000 "), std::string::npos) << text;
  EXPECT_EQ(run(edgegw({"status", "--json", "--config", rig.config_path()}), &json), 0) << json;
  EXPECT_NE(json.find("\"forwarded\":2000,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"end_to_end\":{\"count\":2000,"), std::string::npos) << json;

  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::string down;
  EXPECT_EQ(run(edgegw({"status", "--config", rig.config_path()}), &down), 1);
  EXPECT_NE(down.find("no edgegw daemon answers at " + rig.state_dir() + "/edgegw.sock"), std::string::npos) << down;
}

TEST(Metrics, the_textfile_is_replaced_atomically_counts_what_was_forwarded_and_passes_promtool) {
  RigOptions o;
  TempDir out;
  const std::string file = out.file("edgegw.prom");
  o.extra = "[metrics]\ntextfile = \"" + file + "\"\ninterval = \"1s\"";
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  Process sensors = rig.stream(500, 1000);
  EXPECT_EQ(sensors.wait(60s), 0);
  ASSERT_EQ(rig.wait_for_all(500, 60s).missing(500), 0);
  std::string metrics;
  for (int i = 0; i < 100 && metrics.find("edgegw_forwarded_total 500\n") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    metrics = read_file(file);
  }
  EXPECT_NE(metrics.find("edgegw_forwarded_total 500\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("edgegw_stage_latency_seconds_count{stage=\"end_to_end\"} 500\n"), std::string::npos);
  EXPECT_NE(metrics.find("edgegw_stage_latency_seconds_bucket{stage=\"durable\",le=\"+Inf\"} 500\n"),
            std::string::npos);
  std::string lint;
  EXPECT_EQ(run({"bash", "-c", "promtool check metrics < '" + file + "'"}, &lint), 0) << lint << metrics;
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_FALSE(::access((file + ".tmp").c_str(), F_OK) == 0) << "the temporary file is renamed, never left";
}

TEST(Status, the_in_service_canary_measures_the_live_path_without_outside_load) {
  RigOptions o;
  o.extra = "[selftest]\ncanary_interval = \"100ms\"";
  Rig rig(o);
  rig.start_daemon();
  const std::string key = "\"canary\":{\"count\":";
  const auto canary_count = [&](const std::string& json) {
    const std::size_t at = json.find(key);
    return at == std::string::npos ? -1L : std::stol(json.substr(at + key.size()));
  };
  std::string text;
  for (int i = 0; i < 100; ++i) {  // until at least 10 probes came back
    std::this_thread::sleep_for(100ms);
    text.clear();
    run(edgegw({"status", "--json", "--config", rig.config_path()}), &text);
    if (canary_count(text) >= 10) break;
  }
  EXPECT_GE(canary_count(text), 10) << text;
  std::string table;
  EXPECT_EQ(run(edgegw({"status", "--config", rig.config_path()}), &table), 0);
  EXPECT_NE(table.find("  canary  "), std::string::npos) << table;
  std::printf("%s", table.c_str());
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

bool emulated() { return std::string(EDGEGW_EMULATOR_TEXT).size() > 0; }

TEST(Selftest, measures_the_board_and_the_daemon_within_generous_budgets_and_fails_an_impossible_one) {
  RigOptions o;
  o.spool = "sync = \"batch\"\ncommit_interval = \"2ms\"";  // not a board's default: the one in force is shown
  Rig rig(o);
  rig.start_daemon();
  // Under QEMU the times are not the board's: report, do not enforce.
  std::vector<std::string> args = {"selftest", "--config", rig.config_path()};
  if (emulated()) args.push_back("--report-only");
  std::string out;
  EXPECT_EQ(run(edgegw(args), &out, 120s), 0) << out << rig.daemon_log();
  std::printf("%s", out.c_str());
  EXPECT_NE(out.find(emulated() ? "verdict: not enforced" : "verdict: within budget"), std::string::npos) << out;
  for (const char* stage : {"intrinsic ", "fsync ", "end_to_end "})
    EXPECT_NE(out.find(stage), std::string::npos) << out;
  EXPECT_NE(out.find("end_to_end  probe, local -> upstream       200 "), std::string::npos) << out;
  EXPECT_NE(out.find("\n  spool sync batch, commit interval 2 ms, ingest window 32 messages\n"), std::string::npos)
      << out;

  std::string json;
  args.push_back("--json");
  EXPECT_EQ(run(edgegw(args), &json, 120s), 0) << json;
  EXPECT_NE(json.find("\"end_to_end\":{\"ran\":true,\"count\":200,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"spool_sync\":\"batch\",\"commit_interval_ms\":2.000,\"ingest_window\":32,"), std::string::npos)
      << json;

  // No disk syncs in a nanosecond: over budget, and the verdict names the stage.
  const std::string strict =
      rig.dir().write("strict.toml", read_file(rig.config_path()) + "[selftest]\nbudget_fsync = \"1ns 1ns 1ns\"\n");
  std::string over;
  EXPECT_EQ(run(edgegw({"selftest", "--config", strict}), &over, 120s), 1) << over;
  // (Under emulation other stages may be over the board's budget too, listed first.)
  const std::size_t verdict = over.find("verdict: over budget: ");
  ASSERT_NE(verdict, std::string::npos) << over;
  EXPECT_NE(over.find("fsync p99 ", verdict), std::string::npos) << over;
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
}

TEST(Selftest, cannot_run_without_the_daemon_and_says_why) {
  Rig rig;
  std::string out;
  EXPECT_EQ(run(edgegw({"selftest", "--config", rig.config_path()}), &out, 60s), 2) << out;
  EXPECT_NE(out.find("could not run: the daemon is not running"), std::string::npos) << out;
}

}  // namespace
}  // namespace edgegw::test
