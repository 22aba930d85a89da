// The configuration: TOML (toml++) validated into an immutable Config at startup. Every
// problem found is reported as "FILE:LINE: key: reason"; docs/CONFIG.md lists the keys.
// Used at startup only (it allocates freely).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/url.hpp"
#include "util/log.hpp"

namespace edgegw::config {

// auto: MQTT 5, and 3.1.1 from then on if the broker answers as a 3.1.1-only broker.
enum class MqttVersion { v311, v5, automatic };

struct Tls {
  std::string ca_file = "/etc/ssl/certs/ca-certificates.crt";
  std::string cert_file;
  std::string key_file;
  std::string server_name;  // empty: the URL's host
  std::vector<std::string> alpn;
};

// A user name and password for a broker that refuses anonymous clients. The password
// comes from a file of its own (never the config: docs/CONFIG.md), read by load().
struct Credentials {
  std::string username;
  std::string password_file;  // empty: no password
  std::string password;       // the file's content, one trailing newline dropped (load())
  std::string password_key;   // "FILE:LINE: ingest.password_file", where load()'s errors point
};

// An HTTP proxy the uplink leaves through (HTTP CONNECT), with its own credentials.
struct Proxy {
  Url url;  // scheme http; empty host: no proxy
  Credentials credentials;
};

struct Gateway {
  std::string id;
  std::string state_dir = "/var/lib/edgegw";
  util::Level log_level = util::Level::info;
  std::string control_socket;  // default: <state_dir>/edgegw.sock
};

// A connection (TCP, TLS handshake, CONNACK) not done in connect_timeout fails; attempts
// back off from reconnect_min to reconnect_max.
struct Retry {
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(10);
  std::chrono::nanoseconds reconnect_min = std::chrono::milliseconds(200);
  std::chrono::nanoseconds reconnect_max = std::chrono::seconds(30);
};

struct Ingest {
  Url url;
  std::vector<std::string> topics;
  std::uint8_t qos = 1;
  MqttVersion mqtt_version = MqttVersion::v5;
  std::string client_id;  // default: "edgegw-<gateway.id>-in"
  std::uint16_t keepalive_s = 30;
  std::uint16_t receive_maximum = 0;  // default from the board profile
  Credentials credentials;
  Retry retry;
  Tls tls;
};

// One [[uplink.rule]]: local topics matching `filter` go upstream on a topic made by
// `action` from `text`, at `qos`, with the retain flag kept or cleared (gateway/routing.hpp
// applies them; docs/CONFIG.md).
struct UplinkRule {
  enum class Action : std::uint8_t { prefix, strip, topic };
  std::string filter;
  Action action = Action::prefix;
  std::string text;  // the prefix added, the leading text stripped, or the template
  std::uint8_t qos = 1;
  bool strip_retain = false;
  std::size_t line = 0;  // of its [[uplink.rule]] header, for messages
};

// The most brokers uplink.url may list.
inline constexpr std::size_t k_max_brokers = 4;

struct Uplink {
  Url url;                // the preferred broker: urls[0]
  std::vector<Url> urls;  // every broker, preferred first (docs/CONFIG.md, uplink.url)
  // While on a fallback broker, a preferred one is tried this often (failover.hpp).
  std::chrono::nanoseconds probe_interval = std::chrono::seconds(60);
  std::string topic_prefix;
  std::uint8_t qos = 1;
  std::uint16_t max_inflight = 64;
  MqttVersion mqtt_version = MqttVersion::v5;
  std::string client_id;  // default: "edgegw-<gateway.id>-up"
  std::uint16_t keepalive_s = 30;
  std::uint32_t drain_rate = 0;  // messages/s replayed from the spool; 0: no limit
  std::string status_topic;      // the online status (retained, and the Last Will); empty: none
  // The first rule whose filter matches a topic applies; a topic none matches goes as
  // topic_prefix + topic at qos, its retain flag kept.
  std::vector<UplinkRule> rules;
  Credentials credentials;
  Proxy proxy;
  Retry retry;
  Tls tls;
};

struct Pool {
  std::uint32_t slots = 0;       // default from the board profile
  std::uint32_t slot_bytes = 0;  // default from the board profile
};

enum class SpoolSync { batch, none };
enum class WhenFull { backpressure, drop_oldest };

struct Spool {
  std::uint64_t max_bytes = 0;  // default from the board profile
  SpoolSync sync = SpoolSync::batch;
  std::chrono::nanoseconds commit_interval{0};  // least time between two syncs; default from the board profile
  WhenFull when_full = WhenFull::backpressure;
  // A record older than this when it would be sent upstream is dropped (docs/SPOOL.md,
  // "Message age"); 0: no limit.
  std::chrono::nanoseconds max_age{0};
};

struct Metrics {
  std::string textfile;  // Prometheus textfile-collector file; empty: none
  std::chrono::nanoseconds interval = std::chrono::seconds(15);
};

// A latency budget: p99, p999 and max may not be exceeded.
struct Budget {
  std::chrono::nanoseconds p99{}, p999{}, max{};
};
// Parses "p99 p999 max" (three durations, in order); nothing if malformed.
std::optional<Budget> parse_budget(std::string_view text);

struct Selftest {
  std::string probe_topic;  // default: the first ingest filter's fixed levels + "edgegw-selftest"
  std::uint32_t probes = 200;
  std::chrono::nanoseconds canary_interval{0};  // in service: one probe this often; 0: off
  Budget intrinsic, fsync, end_to_end;          // defaults from the board profile
};

// A downlink rule (gateway/downlink.hpp): messages on `filter` upstream are published
// locally on `prefix` + the topic less its leading `strip`.
struct DownlinkRule {
  std::string filter;        // an upstream topic filter
  std::string strip;         // taken off the front of the upstream topic (the filter starts with it)
  std::string prefix;        // put before what is left, locally
  std::uint8_t qos = 1;      // of the local publish (1: the upstream ack waits for the local PUBACK)
  std::string local_filter;  // prefix + filter less strip: every local topic the rule can publish on
};

struct Downlink {
  std::vector<DownlinkRule> rules;  // none: no downlink (the uplink session subscribes to nothing)
  std::uint32_t slots = 32;         // messages received from upstream and not yet acknowledged locally
  // How long each upstream broker keeps the uplink's session (its subscriptions and the
  // commands queued for it) while edgegw is away.
  std::chrono::nanoseconds session_expiry = std::chrono::hours(1);
};

struct Config {
  std::string source;  // the file it came from
  // Valid, but worth telling: keys of earlier versions and what to write instead, as
  // "FILE:LINE: key: reason" (check-config prints them, the daemon logs them).
  std::vector<std::string> warnings;
  Gateway gateway;
  Ingest ingest;
  Uplink uplink;
  Pool pool;
  Spool spool;
  Metrics metrics;
  Selftest selftest;
  Downlink downlink;
};

// Parses and validates TOML text; `source` names it in errors. On failure returns nothing
// and appends every error found to `errors`.
std::optional<Config> parse(std::string_view text, const std::string& source, std::vector<std::string>& errors);
// Reads the file and parses it, then the password files; an unreadable file is
// "FILE:0: file: reason", a bad password file "FILE:LINE: KEY: PASSWORD_FILE: reason".
std::optional<Config> load(const std::string& path, std::vector<std::string>& errors);
// Reads `credentials.password_file` into `credentials.password` (load() does, and a reload
// again); false with "FILE:LINE: KEY: PASSWORD_FILE: reason" appended to `errors`.
bool read_password(Credentials& credentials, std::vector<std::string>& errors);

}  // namespace edgegw::config
