#include <gtest/gtest.h>
#include <sys/stat.h>

#include "config/config.hpp"
#include "support/temp_dir.hpp"

using namespace edgegw;

namespace {

constexpr const char* k_valid = R"(# comment
[gateway]
id = "gw-0001"
state_dir = "/var/lib/edgegw"

[ingest]
url = "mqtt://127.0.0.1:1883"
topics = ["sensors/#", "+/status"]
qos = 2

[uplink]
url = "mqtts://broker.example.com:8883"
topic_prefix = "site-a/"
qos = 1
max_inflight = 32

[uplink.tls]
ca_file = "/etc/edgegw/ca.pem"
cert_file = "/etc/edgegw/device.crt"
key_file = "/etc/edgegw/device.key"
alpn = ["x-amzn-mqtt-ca"]

[pool]
slots = 128
slot_bytes = "8KiB"

[spool]
max_bytes = "64MiB"
sync = "batch"
commit_interval = "5ms"
when_full = "drop-oldest"
)";

std::vector<std::string> errors_for(const std::string& text) {
  std::vector<std::string> errors;
  EXPECT_FALSE(config::parse(text, "gw.toml", errors));
  return errors;
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST(Config, reads_every_key_of_the_brief) {
  std::vector<std::string> errors;
  auto cfg = config::parse(k_valid, "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->gateway.id, "gw-0001");
  EXPECT_EQ(cfg->ingest.url.host, "127.0.0.1");
  EXPECT_EQ(cfg->ingest.url.port, 1883);
  EXPECT_EQ(cfg->ingest.topics.size(), 2u);
  EXPECT_EQ(cfg->ingest.qos, 2);
  EXPECT_EQ(cfg->ingest.client_id, "edgegw-gw-0001-in");
  EXPECT_EQ(cfg->uplink.url.scheme, config::Scheme::mqtts);
  EXPECT_EQ(cfg->uplink.topic_prefix, "site-a/");
  EXPECT_EQ(cfg->uplink.max_inflight, 32);
  EXPECT_EQ(cfg->uplink.tls.alpn, std::vector<std::string>{"x-amzn-mqtt-ca"});
  EXPECT_EQ(cfg->pool.slots, 128u);
  EXPECT_EQ(cfg->pool.slot_bytes, 8192u);
  EXPECT_EQ(cfg->spool.max_bytes, 64u << 20);
  EXPECT_EQ(cfg->spool.commit_interval, std::chrono::milliseconds(5));
  EXPECT_EQ(cfg->spool.when_full, config::WhenFull::drop_oldest);
  EXPECT_TRUE(cfg->warnings.empty());
}

// Configs written for 0.1 keep working: the old key's value becomes the commit interval,
// and check-config says what to write instead.
TEST(Config, the_replaced_batch_max_delay_is_honoured_and_names_its_replacement) {
  std::vector<std::string> errors;
  auto cfg =
      config::parse(replace(k_valid, "commit_interval = \"5ms\"", "batch_max_delay = \"250ms\""), "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->spool.commit_interval, std::chrono::milliseconds(250));
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_EQ(cfg->warnings[0].rfind("gw.toml:30: spool.batch_max_delay: replaced by spool.commit_interval", 0), 0u)
      << cfg->warnings[0];
  EXPECT_NE(cfg->warnings[0].find("write commit_interval = \"250ms\""), std::string::npos) << cfg->warnings[0];
}

TEST(Config, spool_max_age_is_a_duration_off_by_default) {
  std::vector<std::string> errors;
  auto plain = config::parse(k_valid, "gw.toml", errors);
  ASSERT_TRUE(plain) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(plain->spool.max_age, std::chrono::nanoseconds(0)) << "no limit unless set";
  auto cfg = config::parse(replace(k_valid, "when_full = \"drop-oldest\"", "max_age = \"72h\""), "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->spool.max_age, std::chrono::hours(72));
  auto bad = errors_for(replace(k_valid, "when_full = \"drop-oldest\"", "max_age = 3600"));
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].rfind("gw.toml:31: spool.max_age: ", 0), 0u) << bad[0];
  bad = errors_for(replace(k_valid, "when_full = \"drop-oldest\"", "max_age = \"100000h\""));
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0], "gw.toml:31: spool.max_age: out of range (0s to 315360000s)");
}

TEST(Config, both_the_old_and_the_new_commit_key_is_an_error) {
  auto errors =
      errors_for(replace(k_valid, "commit_interval = \"5ms\"", "commit_interval = \"5ms\"\nbatch_max_delay = \"1ms\""));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "gw.toml:31: spool.batch_max_delay: replaced by spool.commit_interval, which is set too: remove this line");
}

TEST(Config, fills_defaults_from_the_board_profile) {
  std::vector<std::string> errors;
  auto cfg = config::parse(
      "[gateway]\nid = \"a\"\n[ingest]\nurl = \"unix:///run/m.sock\"\ntopics = [\"#\"]\n"
      "[uplink]\nurl = \"mqtt://[::1]:1884\"\n",
      "min.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->ingest.url.path, "/run/m.sock");
  EXPECT_EQ(cfg->uplink.url.host, "::1");
  EXPECT_EQ(cfg->uplink.url.port, 1884);
  EXPECT_GT(cfg->pool.slots, 0u);
  // One sync must be able to cover hundreds of messages (the ingest window bounds a batch).
  EXPECT_GE(cfg->ingest.receive_maximum, 512);
  EXPECT_EQ(cfg->spool.sync, config::SpoolSync::batch);
  EXPECT_EQ(cfg->uplink.tls.ca_file, "/etc/ssl/certs/ca-certificates.crt");
}

TEST(Config, mqtt_version_takes_auto) {
  std::vector<std::string> errors;
  auto cfg = config::parse(replace(k_valid, "max_inflight = 32", "max_inflight = 32\nmqtt_version = \"auto\""),
                           "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->uplink.mqtt_version, config::MqttVersion::automatic);
  EXPECT_EQ(errors_for(replace(k_valid, "max_inflight = 32", "max_inflight = 32\nmqtt_version = \"4\""))[0],
            "gw.toml:16: uplink.mqtt_version: must be one of \"3.1.1\", \"5\", \"auto\", not \"4\"");
}

TEST(Config, a_shared_subscription_on_mqtt_311_is_a_warning_naming_the_filter_and_the_setting) {
  const std::string shared =
      replace(k_valid, "topics = [\"sensors/#\", \"+/status\"]", "topics = [\"sensors/#\", \"$share/gws/+/status\"]");
  std::vector<std::string> errors;
  auto cfg = config::parse(replace(shared, "qos = 2", "qos = 2\nmqtt_version = \"3.1.1\""), "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_EQ(cfg->warnings[0],
            "gw.toml:8: ingest.topics: \"$share/gws/+/status\" is a shared subscription, which MQTT "
            "3.1.1 does not have: a 3.1.1 broker refuses it or takes it as a plain filter that no "
            "message matches; set ingest.mqtt_version = \"5\"");
  cfg = config::parse(shared, "gw.toml", errors);
  ASSERT_TRUE(cfg);
  EXPECT_TRUE(cfg->warnings.empty()) << "MQTT 5 has them";
}

TEST(Config, names_file_line_and_key_of_an_unknown_key) {
  auto errors = errors_for(replace(k_valid, "qos = 1\n", "qos = 1\nmax_infligt = 3\n"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "gw.toml:15: uplink.max_infligt: unknown key");
}

TEST(Config, names_a_wrong_type) {
  auto errors = errors_for(replace(k_valid, "max_inflight = 32", "max_inflight = \"32\""));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "gw.toml:15: uplink.max_inflight: must be an integer");
}

TEST(Config, names_an_out_of_range_value) {
  auto errors = errors_for(replace(k_valid, "qos = 2", "qos = 3"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "gw.toml:9: ingest.qos: must be from 0 to 2, not 3");
}

TEST(Config, reports_every_error_not_just_the_first) {
  std::string text = replace(k_valid, "sync = \"batch\"", "sync = \"sometimes\"");
  text = replace(text, "commit_interval = \"5ms\"", "commit_interval = \"5\"");
  text = replace(text, "url = \"mqtt://127.0.0.1:1883\"", "url = \"http://127.0.0.1\"");
  auto errors = errors_for(text);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "gw.toml:7: ingest.url: the scheme must be mqtt://, mqtts:// or unix://");
  EXPECT_EQ(errors[1], "gw.toml:29: spool.sync: must be one of \"batch\", \"none\", not \"sometimes\"");
  EXPECT_EQ(errors[2],
            "gw.toml:30: spool.commit_interval: must be a duration with a unit, such as \"10ms\" or \"30s\"");
}

TEST(Config, rejects_bad_values_with_reasons) {
  struct Case {
    const char* from;
    const char* to;
    const char* error;
  } cases[] = {
      {"\"+/status\"", "\"a/#/b\"", "gw.toml:8: ingest.topics: '#' must be the last level: \"a/#/b\""},
      {"\"site-a/\"", "\"site/+/\"", "gw.toml:13: uplink.topic_prefix: cannot hold the wildcards '+' or '#'"},
      {":8883", ":88830", "gw.toml:12: uplink.url: the port must be a number from 1 to 65535"},
      {"\"8KiB\"", "\"8 lots\"", "gw.toml:25: pool.slot_bytes: must be a size such as 4096, \"64KiB\" or \"256MiB\""},
      {"id = \"gw-0001\"", "id = \"gw 1\"", "gw.toml:3: gateway.id: 1 to 64 characters of A-Z a-z 0-9 . _ -"},
      {"key_file = \"/etc/edgegw/device.key\"\n", "",
       "gw.toml:17: uplink.tls: cert_file and key_file go together (mutual TLS needs both)"},
      {"slots = 128", "slots = 33",
       "gw.toml:24: pool.slots: must be at least uplink.max_inflight + 2 (34): each unacknowledged upstream "
       "message holds a slot, and replay from the spool needs one more"},
  };
  for (const Case& c : cases) EXPECT_EQ(errors_for(replace(k_valid, c.from, c.to))[0], c.error) << c.from;
}

TEST(Config, rejects_a_spool_too_small_for_the_largest_message) {
  const std::string text = replace(replace(k_valid, "\"8KiB\"", "\"1MiB\""), "\"64MiB\"", "\"2MiB\"");
  EXPECT_EQ(
      errors_for(text)[0],
      "gw.toml:28: spool.max_bytes: must hold at least four of the largest messages (4 x (pool.slot_bytes + 36) = "
      "4194448 bytes)");
}

TEST(Config, reports_missing_required_keys_and_tables) {
  auto errors = errors_for("[gateway]\nid = \"x\"\n[ingest]\nurl = \"mqtt://h\"\n");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "gw.toml:3: ingest.topics: required");
  EXPECT_EQ(errors[1], "gw.toml:1: uplink: missing table");
}

TEST(Config, reports_a_syntax_error_with_its_line) {
  auto errors = errors_for("[gateway]\nid = \"x\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(errors[0].starts_with("gw.toml:2: syntax: ")) << errors[0];
}

// toml++ 3.3 tests non-ASCII characters for whitespace with a check that reaches an
// "unreachable" point for U+00A1..U+0499 (undefined behaviour; UBSan aborts this test if
// the workaround in config.cpp goes). Such text is read as TOML says.
TEST(Config, non_ascii_text_is_read_or_refused_with_its_line) {
  std::vector<std::string> errors;
  auto cfg = config::parse(
      replace(k_valid, "topic_prefix = \"site-a/\"", "topic_prefix = \"\"\"caf\\\n  \u00e9/\"\"\""), "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->uplink.topic_prefix, "caf\u00e9/");
  for (const char* bad : {"\u00e9d = 1\n", "n = 5\"\u00e9\n", "\u03dc = 1\n", "# \u00e9\nn = \u00e9\n"}) {
    auto refused = errors_for(bad);
    ASSERT_FALSE(refused.empty()) << bad;
    EXPECT_TRUE(refused[0].starts_with(std::string("gw.toml:") + (bad[0] == '#' ? "2" : "1") + ": syntax: "))
        << bad << " -> " << refused[0];
  }
}

TEST(Config, reports_an_unreadable_file_with_its_path) {
  std::vector<std::string> errors;
  EXPECT_FALSE(config::load("/nonexistent/edgegw.toml", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "/nonexistent/edgegw.toml:0: file: cannot read: No such file or directory");
  errors.clear();
  test::TempDir dir;
  EXPECT_FALSE(config::load(dir.path(), errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], dir.path() + ":0: file: cannot read: Is a directory");
}

TEST(Config, the_shipped_example_is_valid) {
  std::vector<std::string> errors;
  auto cfg = config::load(std::string(EDGEGW_SOURCE_DIR) + "/docs/edgegw.example.toml", errors);
  EXPECT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
}

TEST(Config, selftest_budgets_default_from_the_board_and_are_validated) {
  std::vector<std::string> errors;
  auto cfg = config::parse(k_valid, "gw.toml", errors);
  ASSERT_TRUE(cfg);
  EXPECT_GT(cfg->selftest.fsync.p99.count(), 0);
  EXPECT_LE(cfg->selftest.fsync.p99, cfg->selftest.fsync.max);
  auto strict = config::parse(std::string(k_valid) + "[selftest]\nbudget_fsync = \"1ms 2ms 3ms\"\n", "gw.toml", errors);
  ASSERT_TRUE(strict);
  EXPECT_EQ(strict->selftest.fsync.max, std::chrono::milliseconds(3));
  EXPECT_EQ(errors_for(std::string(k_valid) + "[selftest]\nbudget_fsync = \"5ms 1ms 10ms\"\n")[0],
            "gw.toml:33: selftest.budget_fsync: three durations in order, \"p99 p999 max\", such as \"1ms 2ms 10ms\"");
  EXPECT_EQ(errors_for(std::string(k_valid) + "[selftest]\nprobe_topic = \"sensors/#\"\n")[0],
            "gw.toml:33: selftest.probe_topic: must be a topic (no wildcards) that ingest.topics match");
}

TEST(Config, connect_timeout_and_backoff_per_connection) {
  std::vector<std::string> errors;
  auto cfg = config::parse(
      replace(k_valid, "max_inflight = 32",
              "max_inflight = 32\nconnect_timeout = \"2s\"\nreconnect_min = \"50ms\"\nreconnect_max = \"5s\""),
      "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->uplink.retry.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(cfg->uplink.retry.reconnect_min, std::chrono::milliseconds(50));
  EXPECT_EQ(cfg->uplink.retry.reconnect_max, std::chrono::seconds(5));
  EXPECT_EQ(cfg->ingest.retry.connect_timeout, std::chrono::seconds(10)) << "the defaults";
  EXPECT_EQ(cfg->ingest.retry.reconnect_min, std::chrono::milliseconds(200));
  EXPECT_EQ(cfg->ingest.retry.reconnect_max, std::chrono::seconds(30));
  EXPECT_EQ(errors_for(replace(k_valid, "qos = 2", "qos = 2\nreconnect_min = \"5s\"\nreconnect_max = \"1s\""))[0],
            "gw.toml:11: ingest.reconnect_max: cannot be less than reconnect_min");
}

// A password comes from a file of the service's alone, like a TLS key; its content never
// shows in an error.
TEST(Config, credentials_read_the_password_file_and_check_its_permissions) {
  test::TempDir dir;
  const std::string secret = dir.write("uplink-password", "s3cret-Pa55\n");
  ::chmod(secret.c_str(), 0600);
  const std::string text = replace(replace(k_valid, "max_inflight = 32\n",
                                           "max_inflight = 32\nusername = \"gw-0001\"\npassword_file = \"" + secret +
                                               "\"\nstatus_topic = \"site-a/gw-0001/status\"\n"),
                                   "qos = 2\n", "qos = 2\nusername = \"local\"\n");
  const std::string path = dir.write("gw.toml", text);
  std::vector<std::string> errors;
  auto cfg = config::load(path, errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->uplink.credentials.username, "gw-0001");
  EXPECT_EQ(cfg->uplink.credentials.password, "s3cret-Pa55") << "the trailing newline is not part of it";
  EXPECT_EQ(cfg->uplink.status_topic, "site-a/gw-0001/status");
  EXPECT_EQ(cfg->ingest.credentials.username, "local");
  EXPECT_TRUE(cfg->ingest.credentials.password_file.empty());

  ::chmod(secret.c_str(), 0644);
  errors.clear();
  EXPECT_FALSE(config::load(path, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], path + ":18: uplink.password_file: " + secret +
                           ": readable by group or others (mode 0644); make it the service user's alone (chmod 600)");
  errors.clear();
  EXPECT_FALSE(config::load(dir.write("gw.toml", replace(text, secret, dir.file("none"))), errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            path + ":18: uplink.password_file: " + dir.file("none") + ": cannot read: No such file or directory");
  for (const std::string& e : errors) EXPECT_EQ(e.find("s3cret"), std::string::npos);
}

TEST(Config, a_password_needs_a_username_and_a_status_topic_no_wildcards) {
  auto errors = errors_for(replace(k_valid, "max_inflight = 32\n",
                                   "max_inflight = 32\npassword_file = \"/p\"\nstatus_topic = \"site/+/status\"\n"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "gw.toml:17: uplink.status_topic: must be a topic, without the wildcards '+' or '#'");
  EXPECT_EQ(errors[1],
            "gw.toml:16: uplink.password_file: needs a username too (MQTT 3.1.1 sends no password without one)");
}

// The uplink through an HTTP proxy: its password from a file checked like password_file.
TEST(Config, an_http_proxy_with_credentials_from_a_file) {
  test::TempDir dir;
  const std::string secret = dir.write("proxy-password", "pr0xy-Pa55\n");
  ::chmod(secret.c_str(), 0600);
  const std::string text =
      replace(k_valid, "max_inflight = 32\n",
              "max_inflight = 32\nproxy = \"http://[::1]:3128\"\nproxy_username = \"gw\"\nproxy_password_file = \"" +
                  secret + "\"\n");
  const std::string path = dir.write("gw.toml", text);
  std::vector<std::string> errors;
  auto cfg = config::load(path, errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(cfg->uplink.proxy.url.host, "::1");
  EXPECT_EQ(cfg->uplink.proxy.url.port, 3128);
  EXPECT_EQ(cfg->uplink.proxy.credentials.username, "gw");
  EXPECT_EQ(cfg->uplink.proxy.credentials.password, "pr0xy-Pa55");
  EXPECT_TRUE(cfg->ingest.credentials.password_file.empty());

  ::chmod(secret.c_str(), 0640);
  errors.clear();
  EXPECT_FALSE(config::load(path, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], path + ":18: uplink.proxy_password_file: " + secret +
                           ": readable by group or others (mode 0640); make it the service user's alone (chmod 600)");
  EXPECT_EQ(errors[0].find("pr0xy"), std::string::npos);

  auto no_proxy = config::parse(k_valid, "gw.toml", errors);
  ASSERT_TRUE(no_proxy);
  EXPECT_TRUE(no_proxy->uplink.proxy.url.host.empty()) << "no proxy unless configured (nothing from the environment)";
}

TEST(Config, rejects_bad_proxy_settings_with_reasons) {
  const std::pair<std::string, std::string> cases[] = {
      {"proxy = \"https://p:3128\"", "uplink.proxy: an https:// proxy is not supported; give its http:// address"},
      {"proxy = \"socks5://p:1080\"", "uplink.proxy: the scheme must be http:// (http://proxy.example.com:3128)"},
      {"proxy = \"http://p\"", "uplink.proxy: needs a port (http://proxy.example.com:3128)"},
      {"proxy = \"http://p:0\"", "uplink.proxy: the port must be a number from 1 to 65535"},
      {"proxy = \"http://u:pw@p:3128\"",
       "uplink.proxy: put no credentials in the URL; use proxy_username and proxy_password_file"},
      {"proxy_username = \"gw\"", "uplink.proxy_username: needs uplink.proxy"},
      {"proxy = \"http://p:3128\"\nproxy_password_file = \"/p\"",
       "uplink.proxy_password_file: needs proxy_username too"},
  };
  for (const auto& [line, error] : cases) {
    auto errors = errors_for(replace(k_valid, "max_inflight = 32\n", "max_inflight = 32\n" + line + "\n"));
    ASSERT_FALSE(errors.empty()) << line;
    EXPECT_EQ(errors.back().substr(errors.back().find(' ') + 1), error) << line;
  }
  auto errors = errors_for(replace(k_valid, "url = \"mqtts://broker.example.com:8883\"",
                                   "url = \"unix:///run/mqtt.sock\"\nproxy = \"http://p:3128\""));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "gw.toml:13: uplink.proxy: a unix:// uplink cannot go through a proxy");
}

TEST(Config, uplink_url_may_list_several_brokers_preferred_first) {
  std::vector<std::string> errors;
  auto cfg = config::parse(replace(k_valid, "url = \"mqtts://broker.example.com:8883\"",
                                   "url = [\"mqtts://a.example.com:8883\", \"mqtt://[::1]:1884\"]\n"
                                   "probe_interval = \"5s\""),
                           "gw.toml", errors);
  ASSERT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  ASSERT_EQ(cfg->uplink.urls.size(), 2u);
  EXPECT_EQ(cfg->uplink.url.host, "a.example.com");
  EXPECT_EQ(cfg->uplink.urls[1].port, 1884);
  EXPECT_EQ(cfg->uplink.probe_interval, std::chrono::seconds(5));
  cfg = config::parse(k_valid, "gw.toml", errors);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->uplink.urls.size(), 1u);
  EXPECT_EQ(cfg->uplink.probe_interval, std::chrono::seconds(60));
}

TEST(Config, rejects_a_bad_list_of_uplink_brokers_naming_the_line) {
  const std::string url = "url = \"mqtts://broker.example.com:8883\"";
  struct Case {
    const char* to;
    const char* error;
  } cases[] = {
      {"url = []", "gw.toml:12: uplink.url: must be a url, or an array of 1 to 4 urls (preferred first)"},
      {"url = [\"mqtt://a:1\", \"mqtt://b:1\", \"mqtt://c:1\", \"mqtt://d:1\", \"mqtt://e:1\"]",
       "gw.toml:12: uplink.url: must be a url, or an array of 1 to 4 urls (preferred first)"},
      {"url = [\"mqtt://a:1\",\n  \"http://b:1\"]",
       "gw.toml:12: uplink.url: the scheme must be mqtt://, mqtts:// or unix://"},
      {"url = [\"mqtt://a:1\", 7]", "gw.toml:12: uplink.url: must be an array of strings"},
      {"url = [\"mqtt://a:1\", \"mqtt://a:1\"]", "gw.toml:12: uplink.url: lists mqtt://a:1 twice"},
      {"url = 7", "gw.toml:12: uplink.url: must be a url, or an array of 1 to 4 urls (preferred first)"},
  };
  for (const Case& c : cases) EXPECT_EQ(errors_for(replace(k_valid, url, c.to))[0], c.error) << c.to;
  EXPECT_EQ(errors_for(replace(k_valid, url, url + "\nprobe_interval = \"10ms\""))[0],
            "gw.toml:13: uplink.probe_interval: out of range (1s to 86400s)");
}
