// What hosted brokers ask of a client (issue 15), through the whole daemon against
// mosquitto: credentials (a listener that takes only a user name and password made with
// mosquitto_passwd, beside the rig's anonymous one, which the sensors and the verifier
// keep using), and the online status on uplink.status_topic. MQTT 5 and 3.1.1 each.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "edgegw/build_info.hpp"
#include "support/gateway_rig.hpp"
#include "support/text.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* k_password = "s3cret-Pa55";

// Brokers (both of the rig's) with a second listener on `port` that takes only user "gw"
// with k_password.
struct AuthBrokers {
  TempDir dir;
  std::uint16_t local_port = free_port(), upstream_port = free_port();
  std::string passwd = dir.file("mosquitto.passwd");

  AuthBrokers() {
    std::string out;
    EXPECT_EQ(run({"mosquitto_passwd", "-b", "-c", passwd, "gw", k_password}, &out), 0) << out;
  }
  std::string listener(std::uint16_t port) const {
    return "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous false\npassword_file " + passwd + "\n";
  }
  // The rig's options: the daemon on the password listeners, as user "gw" with `password`
  // (in a file of mode `mode`), speaking `version`.
  RigOptions options(const std::string& version, const std::string& password, mode_t mode = 0600) const {
    const std::string file = dir.write("password-" + std::to_string(mode), password + "\n");
    ::chmod(file.c_str(), mode);
    const std::string keys =
        "mqtt_version = \"" + version + "\"\nusername = \"gw\"\npassword_file = \"" + file + "\"\n";
    RigOptions o;
    o.broker_head = "per_listener_settings true\n";
    o.local_broker = listener(local_port);
    o.upstream_broker = listener(upstream_port);
    o.ingest_url = "mqtt://127.0.0.1:" + std::to_string(local_port);
    o.uplink_url = "mqtt://127.0.0.1:" + std::to_string(upstream_port);
    o.ingest = keys;
    o.uplink += "\n" + keys;
    return o;
  }
};

class CloudBroker : public ::testing::TestWithParam<std::string> {};

TEST_P(CloudBroker, with_credentials_ingest_and_uplink_forward_everything) {
  AuthBrokers auth;
  Rig rig(auth.options(GetParam(), k_password));
  rig.start_verifier();
  rig.start_daemon();
  constexpr long k_count = 300;
  Process sensors = rig.stream(k_count, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  Tally t = rig.wait_for_all(k_count, 60s);
  EXPECT_EQ(t.missing(k_count), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_NE(rig.local().log().find("as edgegw-gw-test-in (p"), std::string::npos) << rig.local().log();
  EXPECT_NE(rig.upstream().log().find("u'gw'"), std::string::npos) << rig.upstream().log();
  EXPECT_EQ(rig.daemon_log().find(k_password), std::string::npos);
}

TEST_P(CloudBroker, a_wrong_password_is_logged_once_retried_slowly_and_never_shown) {
  AuthBrokers auth;
  RigOptions o = auth.options(GetParam(), "wrong-Pa55");
  o.ingest.clear();  // the ingest on the rig's anonymous listener: only the uplink is refused
  o.ingest_url.clear();
  o.uplink += "reconnect_max = \"2s\"\n";
  Rig rig(o);
  rig.start_daemon();
  std::this_thread::sleep_for(7s);
  const std::string json = rig.status_json();
  std::string text;
  std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
  argv.insert(argv.end(), {"status", "--config", rig.config_path()});
  EXPECT_EQ(run(argv, &text), 0) << text;
  const std::string broker_log = rig.upstream().log();
  const long attempts = count_of(broker_log, "on port " + std::to_string(auth.upstream_port));
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  const std::string log = rig.daemon_log();
  std::printf("[ measured ] %ld connections refused in 7 s (reconnect_max 2 s), %ld lines saying so\n", attempts,
              count_of(log, "connection refused"));
  // One refusal shows as the session's error and the disconnection it caused; the
  // attempts after it, refused alike, add nothing.
  EXPECT_EQ(count_of(log, "mqtt edgegw-gw-test-up: connection refused: not authorized"), 1) << log;
  EXPECT_LE(count_of(log, "connection refused"), 3) << log;
  EXPECT_GE(attempts, 3) << "it keeps trying";
  EXPECT_LE(attempts, 5) << "at reconnect_max, not from reconnect_min up";
  EXPECT_EQ(count_of(broker_log, "u'gw'"), 0);
  EXPECT_EQ(log.find("wrong-Pa55"), std::string::npos);
  EXPECT_EQ(json.find("wrong-Pa55"), std::string::npos) << json;
  EXPECT_EQ(text.find("wrong-Pa55"), std::string::npos) << text;
  EXPECT_NE(json.find("\"uplink\":"), std::string::npos) << json;
}

TEST_P(CloudBroker, a_password_file_others_can_read_is_a_config_error_naming_the_key) {
  AuthBrokers auth;
  Rig rig(auth.options(GetParam(), k_password, 0644));
  std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
  argv.insert(argv.end(), {"check-config", "--config", rig.config_path()});
  std::string out;
  EXPECT_EQ(run(argv, &out), 1) << out;
  EXPECT_NE(out.find(": ingest.password_file: "), std::string::npos) << out;
  EXPECT_NE(out.find(": uplink.password_file: "), std::string::npos) << out;
  EXPECT_NE(out.find("readable by group or others (mode 0644); make it the service user's alone (chmod 600)"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find(k_password), std::string::npos) << out;
}

// The retained message on the status topic a new subscriber gets ("" if none in 5 s).
std::string status_message(Broker& upstream, const std::string& version) {
  std::string out;
  run(with_broker(upstream, {"mosquitto_sub", "-V", version == "5" ? "mqttv5" : "mqttv311", "-t", "site/+/status", "-C",
                             "1", "-W", "5"}),
      &out, 10s);
  return out;
}

// Polls status_message() until it holds `what`, for up to 10 s; returns the last.
std::string wait_for_status(Broker& upstream, const std::string& version, const std::string& what) {
  std::string s;
  for (int i = 0; i < 10 && s.find(what) == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(1s);
    s = status_message(upstream, version);
  }
  return s;
}

TEST_P(CloudBroker, the_status_topic_says_online_then_offline_on_a_stop_and_on_a_kill) {
  RigOptions o;
  o.uplink += "\nmqtt_version = \"" + GetParam() + "\"\nstatus_topic = \"site/gw-test/status\"\n";
  Rig rig(o);
  rig.start_daemon();
  const std::string online = wait_for_status(rig.upstream(), GetParam(), "online");
  EXPECT_NE(online.find(std::string(R"({"state":"online","version":")") + build::k_version +
                        R"(","spool_records":0,"oldest_age_s":0.0})"),
            std::string::npos)
      << online << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(status_message(rig.upstream(), GetParam()), "{\"state\":\"offline\"}\n") << rig.daemon_log();

  rig.start_daemon();
  EXPECT_NE(wait_for_status(rig.upstream(), GetParam(), "online").find("\"state\":\"online\""), std::string::npos);
  const auto killed = std::chrono::steady_clock::now();
  rig.daemon().kill();  // SIGKILL: the socket closes without a DISCONNECT, the broker sends the will
  const std::string will = wait_for_status(rig.upstream(), GetParam(), "offline");
  std::printf("[ measured ] the will after a kill -9: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count());
  EXPECT_EQ(will, "{\"state\":\"offline\"}\n") << rig.daemon_log();
}

// Retain Available 0: the status goes without the flag (a subscriber present when it is
// published sees it; a later one sees nothing), the will too after one refused CONNECT.
// MQTT 3.1.1 has no Retain Available: mosquitto with retain_available false closes a 3.1.1
// connection at its first retained PUBLISH (or retained will), so there status_topic
// cannot be used (docs/CONFIG.md).
TEST_P(CloudBroker, a_broker_without_retained_messages_still_forwards_and_gets_the_status_live) {
  if (GetParam() != "5") GTEST_SKIP() << "MQTT 3.1.1 cannot tell a client that retained messages are refused";
  RigOptions o;
  o.uplink += "\nmqtt_version = \"" + GetParam() + "\"\nstatus_topic = \"site/gw-test/status\"\n";
  o.upstream_broker = "retain_available false\n";
  Rig rig(o);
  const std::string live_file = rig.dir().file("status.txt");
  Process live(with_broker(rig.upstream(), {"mosquitto_sub", "-t", "site/+/status"}),
               Redirects{.stdout_file = live_file});
  std::this_thread::sleep_for(500ms);
  rig.start_verifier();
  rig.start_daemon();
  Process sensors = rig.stream(50, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  EXPECT_EQ(rig.wait_for_all(50, 60s).missing(50), 0) << rig.daemon_log();
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  for (int i = 0; i < 50 && count_of(read_file(live_file), "offline") == 0; ++i) std::this_thread::sleep_for(100ms);
  const std::string seen = read_file(live_file);
  EXPECT_EQ(count_of(seen, "\"state\":\"online\""), 1) << seen << rig.daemon_log();
  EXPECT_EQ(count_of(seen, "\"state\":\"offline\""), 1) << seen;
  EXPECT_EQ(status_message(rig.upstream(), GetParam()).find("state"), std::string::npos) << "nothing retained";
  live.kill();
}

INSTANTIATE_TEST_SUITE_P(Versions, CloudBroker, ::testing::Values("5", "3.1.1"),
                         [](const auto& p) { return p.param == "5" ? "v5" : "v311"; });

}  // namespace
}  // namespace edgegw::test
