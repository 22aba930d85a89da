// Reload (SIGHUP) of the TLS and password files under load (issue 15, item 5), through the
// whole daemon against mosquitto: the uplink on a TLS listener that requires a client
// certificate of the test CA and takes its CN as the user name (so the broker's log names
// the certificate each connection presented), or on a listener that takes only a user
// name and password. The sensors and the verifier stay on the rig's plain listeners.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "support/gateway_rig.hpp"
#include "support/text.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

// Replaces `to` with `text` as a rotation tool does: a new file renamed over the old one.
void install(const TempDir& dir, const std::string& to, const std::string& text) {
  const std::string tmp = dir.write("install.tmp", text);
  ::chmod(tmp.c_str(), 0600);
  ASSERT_EQ(std::rename(tmp.c_str(), to.c_str()), 0) << to;
}

// Waits until `log()` holds `what` at least `n` times; returns how many it holds.
template <typename Log>
long wait_for_log(Log log, const std::string& what, long n, std::chrono::seconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  long have = count_of(log(), what);
  while (have < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    have = count_of(log(), what);
  }
  return have;
}

// The uplink over mutual TLS with the client certificate and key in files of the test's
// own (copies of client.pem/.key), which it replaces.
struct TlsUplink {
  TempDir files;
  std::uint16_t port = free_port();
  std::string cert_file = files.file("client.pem"), key_file = files.file("client.key");

  TlsUplink() { use("client"); }
  void use(const std::string& name) {
    install(files, cert_file, read_file(cert(name + ".pem")));
    install(files, key_file, read_file(cert(name + ".key")));
  }
  RigOptions options() const {
    RigOptions o;
    o.upstream_broker = "listener " + std::to_string(port) + " 127.0.0.1\n" +
                        listener("server.pem", "require_certificate true\nuse_identity_as_username true\n");
    o.uplink_url = "mqtts://127.0.0.1:" + std::to_string(port);
    o.uplink += "\n[uplink.tls]\nca_file = \"" + cert("ca.pem") + "\"\ncert_file = \"" + cert_file +
                "\"\nkey_file = \"" + key_file + "\"\n";
    return o;
  }
};

TEST(Reload, a_rotated_client_certificate_is_used_at_once_and_nothing_is_lost) {
  TlsUplink tls;
  Rig rig(tls.options());
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 3000;
  Process sensors = rig.stream(k_count, 500);
  rig.wait_for_unique(500, 30s);
  tls.use("client2");
  rig.daemon().signal(SIGHUP);
  const auto daemon_log = [&] { return rig.daemon_log(); };
  EXPECT_EQ(wait_for_log(daemon_log, "reload: uplink: reconnecting with it", 1), 1) << rig.daemon_log();
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 60s);
  const long reloads = rig.status_counter("reloads"), failures = rig.status_counter("reload_failures");
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const std::string log = rig.daemon_log(), broker = rig.upstream().log();
  std::printf("[ measured ] %zu received of %ld, %ld duplicates, across a certificate rotation\n", t.unique.size(),
              k_count, t.duplicates());
  EXPECT_EQ(t.missing(k_count), 0) << log;
  EXPECT_LE(t.duplicates(), 32) << "at most the window in flight";
  EXPECT_EQ(t.seq_conflicts, 0);
  EXPECT_NE(log.find("reload: uplink: new TLS files loaded: client certificate CN=edgegw-client-2"), std::string::npos)
      << log;
  EXPECT_EQ(log.find("reload: ingest: reconnecting"), std::string::npos) << "the ingest has no files to reload";
  // The broker saw the old certificate, then the new one.
  EXPECT_GE(count_of(broker, "u'edgegw-client'"), 1) << broker;
  EXPECT_GE(count_of(broker, "u'edgegw-client-2'"), 1) << broker;
  EXPECT_GT(broker.rfind("u'edgegw-client-2'"), broker.rfind("u'edgegw-client'"));
  EXPECT_EQ(reloads, 1);
  EXPECT_EQ(failures, 0);
}

TEST(Reload, a_broken_file_is_logged_with_its_key_and_the_files_in_use_are_kept) {
  TlsUplink tls;
  Rig rig(tls.options());
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 2000;
  Process sensors = rig.stream(k_count, 500);
  rig.wait_for_unique(300, 30s);
  const auto daemon_log = [&] { return rig.daemon_log(); };
  // Not a certificate.
  install(tls.files, tls.cert_file, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
  rig.daemon().signal(SIGHUP);
  EXPECT_EQ(wait_for_log(daemon_log, "nothing changed", 1), 1) << rig.daemon_log();
  // A key that is not the certificate's.
  tls.use("client");
  install(tls.files, tls.key_file, read_file(cert("client2.key")));
  rig.daemon().signal(SIGHUP);
  EXPECT_EQ(wait_for_log(daemon_log, "nothing changed", 2), 2) << rig.daemon_log();
  std::string text;
  std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
  argv.insert(argv.end(), {"status", "--config", rig.config_path()});
  EXPECT_EQ(run(argv, &text), 0) << text;
  EXPECT_NE(text.find("reload   FAILED, the files in use kept: uplink.tls.key_file: " + tls.key_file),
            std::string::npos)
      << text;
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 60s);
  const long reconnects = rig.status_counter("uplink_reconnects"), failures = rig.status_counter("reload_failures");
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const std::string log = rig.daemon_log();
  EXPECT_EQ(t.missing(k_count), 0) << log;
  EXPECT_EQ(t.duplicates(), 0);
  EXPECT_NE(log.find("reload: uplink.tls.cert_file: " + tls.cert_file + ": not a certificate"), std::string::npos)
      << log;
  EXPECT_NE(log.find("reload: uplink.tls.key_file: " + tls.key_file + ": does not match the certificate in " +
                     tls.cert_file + "; nothing changed"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("reload: uplink: reconnecting"), std::string::npos) << log;
  EXPECT_EQ(reconnects, 0) << "the connection in use was kept";
  EXPECT_EQ(failures, 2);
}

TEST(Reload, twenty_reloads_under_load_lose_nothing) {
  TlsUplink tls;
  Rig rig(tls.options());
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 5000;
  constexpr long k_reloads = 20;
  Process sensors = rig.stream(k_count, 500);
  rig.wait_for_unique(200, 30s);
  const auto daemon_log = [&] { return rig.daemon_log(); };
  for (long i = 1; i <= k_reloads; ++i) {
    tls.use(i % 2 ? "client2" : "client");  // a change every time: every reload reconnects
    rig.daemon().signal(SIGHUP);
    ASSERT_EQ(wait_for_log(daemon_log, "reload: uplink: reconnecting with it", i), i) << rig.daemon_log();
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 60s);
  const long reloads = rig.status_counter("reloads"), reconnects = rig.status_counter("uplink_reconnects");
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  std::printf("[ measured ] %ld reloads under load: %zu received of %ld, %ld duplicates, %ld uplink reconnects\n",
              reloads, t.unique.size(), k_count, t.duplicates(), reconnects);
  EXPECT_EQ(t.missing(k_count), 0) << rig.daemon_log();
  EXPECT_LE(t.duplicates(), k_reloads * 32) << "at most the window in flight per reconnect";
  EXPECT_EQ(t.seq_conflicts, 0);
  EXPECT_EQ(reloads, k_reloads);
  EXPECT_GE(reconnects, k_reloads);
  EXPECT_GE(count_of(rig.daemon_log(), "uplink: connected to"), k_reloads + 1) << rig.daemon_log();
}

TEST(Reload, a_new_password_is_used_at_once) {
  TempDir dir;
  const std::uint16_t port = free_port();
  const std::string passwd = dir.file("mosquitto.passwd");
  std::string out;
  ASSERT_EQ(run({"mosquitto_passwd", "-b", "-c", passwd, "gw", "old-Pa55"}, &out), 0) << out;
  const std::string password_file = dir.file("password");
  install(dir, password_file, "old-Pa55\n");
  RigOptions o;
  o.broker_head = "per_listener_settings true\n";
  o.upstream_broker =
      "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous false\npassword_file " + passwd + "\n";
  o.uplink_url = "mqtt://127.0.0.1:" + std::to_string(port);
  // Refused connections are tried again only after this long: what connects is the reload.
  o.uplink += "\nusername = \"gw\"\npassword_file = \"" + password_file + "\"\nreconnect_max = \"10m\"\n";
  Rig rig(o);
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 2000;
  Process sensors = rig.stream(k_count, 400);
  rig.wait_for_unique(200, 30s);
  // The broker changes the password first (mosquitto's reload may end the connection with
  // the old one, and it is then refused), then the gateway's file changes and it reloads.
  ASSERT_EQ(run({"mosquitto_passwd", "-b", passwd, "gw", "new-Pa55"}, &out), 0) << out;
  rig.upstream().reload();
  std::this_thread::sleep_for(1s);
  install(dir, password_file, "new-Pa55\n");
  rig.daemon().signal(SIGHUP);
  const auto daemon_log = [&] { return rig.daemon_log(); };
  EXPECT_EQ(wait_for_log(daemon_log, "reload: uplink: reconnecting with it", 1), 1) << rig.daemon_log();
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 60s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const std::string log = rig.daemon_log();
  EXPECT_EQ(t.missing(k_count), 0) << log;
  EXPECT_NE(log.find("reload: uplink: new password loaded from " + password_file), std::string::npos) << log;
  EXPECT_EQ(log.find("Pa55"), std::string::npos) << "never logged";
  EXPECT_GE(count_of(rig.upstream().log(), "u'gw'"), 2) << rig.upstream().log();
}

}  // namespace
}  // namespace edgegw::test
