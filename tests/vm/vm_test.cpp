// The packaged service on the emulated arm64 board (board_vm.hpp, docs/BOARD-VM.md): the
// .deb installed, started by systemd at boot, restarted by its watchdog, and power-cut
// while messages stream in. Brokers are real mosquitto: on the board (systemd's), or on
// the host, reached over virtio-serial.
#include <glob.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include "support/gateway_rig.hpp"
#include "vm/board_vm.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string the_deb() {
  glob_t g{};
  std::string path;
  if (::glob(EDGEGW_VM_DEB_DIR "/edgegw_*_arm64.deb", 0, nullptr, &g) == 0 && g.gl_pathc == 1) path = g.gl_pathv[0];
  ::globfree(&g);
  EXPECT_FALSE(path.empty()) << "no single edgegw_*_arm64.deb in " EDGEGW_VM_DEB_DIR " (the vm.prepare test makes it)";
  return path;
}

std::string bin(const std::string& name) { return std::string(EDGEGW_BIN_DIR) + "/" + name; }

// The board's configuration. Commits every 250 ms: at any moment, several received
// messages are waiting for their fsync, and the cuts land among them.
std::string board_config(const TempDir& dir, int ingest_port) {
  return dir.write("edgegw.toml",
                   "[gateway]\nid = \"board\"\nstate_dir = \"/var/lib/edgegw\"\n"
                   "[ingest]\nurl = \"mqtt://127.0.0.1:" +
                       std::to_string(ingest_port) +
                       "\"\ntopics = [\"sensors/#\"]\nreceive_maximum = 32\n"
                       "[uplink]\nurl = \"mqtt://127.0.0.1:11883\"\ntopic_prefix = \"up/\"\n"
                       "keepalive = \"5s\"\nmax_inflight = 32\n"
                       "[pool]\nslots = 512\nslot_bytes = 1024\n"
                       "[spool]\nmax_bytes = \"16MiB\"\nsync = \"batch\"\ncommit_interval = \"250ms\"\n");
}

// "Key=value" from `systemctl show` output.
std::string prop(const std::string& show, const std::string& key) {
  std::size_t at = show.find(key + "=");
  if (at == std::string::npos) return "";
  at += key.size() + 1;
  return show.substr(at, show.find('\n', at) - at);
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string journal(BoardVm& vm) { return vm.sh("journalctl -u edgegw -b -o short-monotonic --no-pager | tail -n 60"); }

// The operator's steps: install the package, put the configuration in place.
void install(BoardVm& vm) {
  int rc = -1;
  std::string out = vm.sh("dpkg -i /vm/edgegw.deb", &rc, 300s);
  ASSERT_EQ(rc, 0) << out;
  out = vm.sh(
      "install -m 0640 -o root -g edgegw /vm/edgegw.toml /etc/edgegw/edgegw.toml && "
      "edgegw check-config --config /etc/edgegw/edgegw.toml && sync",
      &rc);
  ASSERT_EQ(rc, 0) << out;
}

// Until the ingest subscription is in place (systemd's READY comes before it).
bool wait_subscribed(BoardVm& vm, std::chrono::seconds timeout) {
  return vm.wait_until(
      "systemctl is-active --quiet edgegw && journalctl -u edgegw -b -o cat | grep -q 'ingest: subscribed'", timeout);
}

// Progress lines go out at once: a run takes minutes.
__attribute__((format(printf, 1, 2))) void say(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
  std::fflush(stdout);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(BoardService, PackageInstallsBootsForwardsAndTheWatchdogRestartsAStoppedDaemon) {
  TempDir dir;
  Broker upstream(BrokerOptions{.persistent = true});
  const std::string upstream_file = dir.file("upstream.txt");
  Process verifier = start_upstream_verifier(upstream, upstream_file);
  const std::uint16_t sensor_port = free_port();
  BoardVm vm(
      EDGEGW_VM_IMAGE_DIR,
      {{the_deb(), "edgegw.deb"}, {board_config(dir, 1883), "edgegw.toml"}, {bin("edgegw-vport"), "edgegw-vport"}},
      BoardPorts{.upstream = upstream.port(), .sensor = sensor_port});
  std::string why;
  ASSERT_TRUE(vm.boot(300s, &why)) << why;
  say("first boot: control channel up %.1f s after QEMU started\n", vm.since_start());
  install(vm);

  // Boot again: systemd starts mosquitto and edgegw on its own.
  vm.send("systemctl reboot");
  const auto reboot_at = Clock::now();
  ASSERT_TRUE(vm.wait_ready(300s, &why)) << why;
  ASSERT_TRUE(wait_subscribed(vm, 120s)) << journal(vm);
  say("reboot: edgegw READY and subscribed %.1f s after `systemctl reboot`\n",
      std::chrono::duration<double>(Clock::now() - reboot_at).count());
  int rc = -1;
  std::string active = vm.sh("systemctl is-active mosquitto edgegw", &rc);
  EXPECT_EQ(rc, 0) << active;
  const std::string unit = vm.sh("systemctl show -p Type,User,WatchdogUSec,RestartUSec,NRestarts,MainPID edgegw");
  say("%s\n", unit.c_str());
  EXPECT_EQ(prop(unit, "Type"), "notify");
  EXPECT_EQ(prop(unit, "User"), "edgegw");

  // A sensor on the board's broker (reached from the host over the sensor port).
  constexpr long k_count = 3000;
  Process sensor =
      publish_stream_to({"-h", "127.0.0.1", "-p", std::to_string(sensor_port)}, "sensors/stream", k_count, 100, 1);
  Tally t = wait_for_tally(
      upstream_file, [](const Tally& x) { return x.unique.size() >= 300; }, 120s);
  ASSERT_GE(t.unique.size(), 300u) << journal(vm);

  // Freeze the daemon: no more watchdog keep-alives, so systemd kills and restarts it.
  const std::string pid = prop(unit, "MainPID");
  std::string stopped_at = trim(vm.sh("kill -STOP " + pid + " && cut -d' ' -f1 /proc/uptime", &rc));
  ASSERT_EQ(rc, 0) << stopped_at;
  ASSERT_TRUE(vm.wait_until(
      "[ \"$(systemctl show -p MainPID --value edgegw)\" != " + pid + " ] && systemctl is-active --quiet edgegw", 120s))
      << journal(vm);
  const std::string show =
      vm.sh("systemctl show -p NRestarts,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic edgegw");
  const double stop_s = std::atof(stopped_at.c_str());
  const double restarted = std::atof(prop(show, "ExecMainStartTimestampMonotonic").c_str()) / 1e6 - stop_s;
  const double ready = std::atof(prop(show, "ActiveEnterTimestampMonotonic").c_str()) / 1e6 - stop_s;
  const double watchdog_s = std::atof(prop(unit, "WatchdogUSec").c_str());  // "10s"
  const double restart_sec = std::atof(prop(unit, "RestartUSec").c_str());
  say("watchdog: SIGSTOP at %.2f s; new process started %.2f s later, READY %.2f s later "
      "(WatchdogSec %.0f s + RestartSec %.0f s); NRestarts=%s\n",
      stop_s, restarted, ready, watchdog_s, restart_sec, prop(show, "NRestarts").c_str());
  const std::string log = journal(vm);
  EXPECT_NE(log.find("Watchdog timeout"), std::string::npos) << log;
  EXPECT_EQ(prop(show, "NRestarts"), "1") << log;
  EXPECT_GT(restarted, watchdog_s * 0.5) << "restarted before the watchdog could have fired";
  // systemd kills within WatchdogSec of the last keep-alive and restarts RestartSec after the
  // exit; 3 s more for the kill and exit of the stopped process on the emulated cores.
  EXPECT_LE(restarted, watchdog_s + restart_sec + 3.0) << log;

  // Forwarding resumes, nothing lost.
  EXPECT_EQ(sensor.wait(120s), 0);
  t = wait_for_tally(
      upstream_file, [](const Tally& x) { return x.missing(k_count) == 0; }, 180s);
  say("forwarded: %zu of %ld unique, %ld duplicates, %ld malformed\n", t.unique.size(), k_count, t.duplicates(),
      t.malformed);
  EXPECT_EQ(t.missing(k_count), 0) << journal(vm);
  EXPECT_EQ(t.malformed, 0);
  EXPECT_EQ(t.seq_conflicts, 0);
}

// What a power-cut run saw.
struct CutResult {
  long count = 0;
  int cuts = 0;
  int cuts_while_booting = 0;
  Tally tally;
  std::vector<double> ready_s;  // QEMU start to edgegw subscribed, per boot that got there
};

// Both brokers on the host, so that what the board's edgegw acknowledged and what arrived
// upstream survive the cuts. Messages stream in for the whole run; the uplink is cut off
// between cuts 3 and 6. Each cut is at a random moment: every fourth during boot, the
// others 0.5-6 s after edgegw is back. `edgegw` is the binary installed over the
// packaged one (empty: the package's).
CutResult power_cut_run(int cuts, long count, int rate, const std::string& edgegw) {
  CutResult r;
  r.count = count;
  TempDir dir;
  Broker local(BrokerOptions{.persistent = true});
  Broker upstream(BrokerOptions{.persistent = true});
  const std::string upstream_file = dir.file("upstream.txt");
  Process verifier = start_upstream_verifier(upstream, upstream_file);
  std::vector<std::pair<std::string, std::string>> files = {
      {the_deb(), "edgegw.deb"}, {board_config(dir, 11884), "edgegw.toml"}, {bin("edgegw-vport"), "edgegw-vport"}};
  if (!edgegw.empty()) files.emplace_back(edgegw, "edgegw-test");
  BoardVm vm(EDGEGW_VM_IMAGE_DIR, files, BoardPorts{.upstream = upstream.port(), .local = local.port()});
  std::string why;
  EXPECT_TRUE(vm.boot(300s, &why)) << why;
  if (::testing::Test::HasFailure()) return r;
  install(vm);
  int rc = -1;
  if (!edgegw.empty()) {
    std::string out = vm.sh("install -m 0755 /vm/edgegw-test /usr/bin/edgegw && sync && edgegw --version", &rc);
    EXPECT_EQ(rc, 0) << out;
  }
  std::string out = vm.sh("systemctl start edgegw", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(wait_subscribed(vm, 120s)) << journal(vm);
  if (::testing::Test::HasFailure()) return r;

  // Two at a time: a steady stream, so that every cut finds messages between receipt and
  // fsync (in bursts of 20, a cut could fall in a quiet gap).
  Process sensor = publish_stream(local, "sensors/stream", count, rate, 1, 0, 2);
  const unsigned seed = static_cast<unsigned>(std::random_device{}());
  say("power cuts: seed %u\n", seed);
  std::mt19937 rng(seed);
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  bool upstream_down = false;
  while (r.cuts < cuts && !::testing::Test::HasFailure()) {
    if (r.cuts % 4 == 3) {  // during boot: before, while or after edgegw opens its spool
      vm.start();
      std::this_thread::sleep_for(std::chrono::duration<double>(uniform(3.0, 25.0)));
      ++r.cuts_while_booting;
    } else {
      if (r.cuts > 0) {
        if (!vm.boot(300s, &why)) {
          ADD_FAILURE() << "after cut " << r.cuts << ": " << why;
          break;
        }
        if (!wait_subscribed(vm, 120s)) {
          ADD_FAILURE() << "after cut " << r.cuts << ", the spool did not open:\n" << journal(vm);
          break;
        }
        r.ready_s.push_back(vm.since_start());
        say("cut %d: booted, edgegw subscribed after %.1f s; %s\n", r.cuts, vm.since_start(),
            trim(vm.sh("journalctl -u edgegw -b -o cat | grep -E '^spool: (recovered|.*recovery took)' | "
                       "tr '\\n' ' '"))
                .c_str());
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(uniform(0.5, 6.0)));
    }
    if (r.cuts == 3) {
      upstream.stop();
      upstream_down = true;
    } else if (r.cuts == 6) {
      upstream.start();
      upstream_down = false;
    }
    vm.power_cut();
    ++r.cuts;
  }
  if (upstream_down) upstream.start();
  EXPECT_TRUE(vm.boot(300s, &why)) << why;
  EXPECT_TRUE(wait_subscribed(vm, 120s)) << journal(vm);
  EXPECT_EQ(sensor.wait(std::chrono::seconds(count / rate + 300)), 0) << "the sensor's publisher failed";

  // Until everything arrived, or nothing new for 20 s (a lost message never comes).
  auto last_change = Clock::now();
  std::size_t seen = 0;
  r.tally = wait_for_tally(
      upstream_file,
      [&](const Tally& t) {
        if (t.unique.size() != seen) last_change = Clock::now(), seen = t.unique.size();
        return t.missing(count) == 0 || Clock::now() - last_change > 20s;
      },
      600s);
  const std::string status = vm.sh(
      "edgegw status; systemctl show -p NRestarts edgegw; "
      "journalctl -u edgegw -b -o short-monotonic | grep -E 'systemd|stopp|error' | tail -n 20");
  say("power cuts: %d (%d while booting); %ld published, %ld lost, %ld duplicates, %ld malformed, "
      "%ld seq conflicts; READY after boot: median %.1f s, max %.1f s\nedgegw status:\n%s\n",
      r.cuts, r.cuts_while_booting, count, r.tally.missing(count), r.tally.duplicates(), r.tally.malformed,
      r.tally.seq_conflicts, median(r.ready_s),
      r.ready_s.empty() ? 0.0 : *std::max_element(r.ready_s.begin(), r.ready_s.end()), status.c_str());
  return r;
}

TEST(BoardPowerCut, EveryMessageArrivesAcrossTwelvePowerCuts) {
  CutResult r = power_cut_run(12, 10000, 40, "");
  EXPECT_GE(r.cuts, 12);
  EXPECT_EQ(r.tally.missing(r.count), 0);
  EXPECT_EQ(r.tally.malformed, 0);
  EXPECT_EQ(r.tally.seq_conflicts, 0);
}

// The same run against a build that acknowledges before the fsync must lose messages:
// this is what shows that the test above can fail.
TEST(BoardPowerCut, AnEdgegwThatAcknowledgesBeforeFsyncLosesMessages) {
  CutResult r = power_cut_run(6, 3000, 40, bin("edgegw-ack-before-fsync"));
  EXPECT_GE(r.cuts, 6);
  EXPECT_GT(r.tally.missing(r.count), 0) << "the acknowledge-before-fsync build lost nothing: the power-cut test would "
                                            "not catch it";
}

}  // namespace
}  // namespace edgegw::test
