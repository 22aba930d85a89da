// TLS (mbedTLS) against real mosquitto TLS listeners, with certificates this test makes
// with the openssl command line (tests/support/make-certs.sh). Every fault is tried on a
// first connect and on a reconnect after a good session; a refused server gets no MQTT
// byte (mosquitto never logs the client as connected) and the reason names the fault.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <thread>

#include "support/broker.hpp"
#include "support/certs.hpp"
#include "support/process.hpp"
#include "support/session_harness.hpp"
#include "support/temp_dir.hpp"
#include "tls/tls.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

tls::Options client_options(bool with_client_cert = false) {
  tls::Options o;
  o.key_prefix = "uplink.tls";
  o.ca_file = cert("ca.pem");
  if (with_client_cert) {
    o.cert_file = cert("client.pem");
    o.key_file = cert("client.key");
  }
  return o;
}

// A session over TLS to `broker`, subscribed to t/#.
struct TlsClient {
  TlsClient(const Broker& broker, const tls::Options& options) {
    std::string error;
    context = tls::Context::load(options, error);
    EXPECT_TRUE(context) << error;
    auto t = std::make_unique<tls::Transport>(*context, mqtt::TcpTransport::tcp(broker.host(), broker.port()),
                                              broker.host());
    tls = t.get();
    harness = std::make_unique<SessionHarness>(std::move(t), options_for("tls-client"));
  }
  static mqtt::SessionOptions options_for(const std::string& id) {
    mqtt::SessionOptions o = options(mqtt::Version::v5, id, {"t/#"}, 1);
    o.connect_timeout = 5s;
    return o;
  }
  std::unique_ptr<tls::Context> context;
  tls::Transport* tls = nullptr;
  std::unique_ptr<SessionHarness> harness;
};

void print_handshake(const char* what, const tls::Transport& t) {
  const tls::Stats& s = t.stats();
  std::printf("[ measured ] %s: %s, %s handshake %llu bytes in %.2f ms, session heap %zu bytes\n", what,
              t.ciphersuite(), s.last_resumed ? "resumed" : "full",
              static_cast<unsigned long long>(s.last_handshake_bytes), static_cast<double>(s.last_handshake_us) / 1e3,
              t.heap_bytes());
}

// Connects, subscribes, and sends a QoS 1 message to itself through the broker.
void expect_round_trip(TlsClient& c) {
  SessionHarness& h = *c.harness;
  ASSERT_TRUE(h.start_and_subscribe()) << h.last_detail;
  const std::uint8_t payload[] = {'o', 'k'};
  mqtt::OutMessage m;
  m.topic = "t/tls";
  m.payload = payload;
  ASSERT_EQ(h.session->publish(m, 1), mqtt::PublishStatus::queued);
  ASSERT_TRUE(h.run_until([&] { return !h.received.empty() && !h.published.empty(); })) << h.last_detail;
  EXPECT_EQ(h.received[0].payload, "ok");
}

TEST(Tls, a_good_chain_connects_and_carries_messages_both_ways) {
  certs();
  Broker broker(BrokerOptions{.extra_config = listener("server.pem")});
  TlsClient c(broker, client_options());
  expect_round_trip(c);
  EXPECT_EQ(c.tls->stats().handshakes, 1u);
  EXPECT_EQ(c.tls->stats().failures, 0u);
  EXPECT_STRNE(c.tls->ciphersuite(), "");
  print_handshake("good chain", *c.tls);
}

TEST(Tls, mutual_tls_with_a_required_client_certificate) {
  certs();
  Broker broker(BrokerOptions{.extra_config = listener("server.pem", "require_certificate true\n")});
  TlsClient c(broker, client_options(true));
  expect_round_trip(c);
  print_handshake("mutual TLS", *c.tls);
}

TEST(Tls, a_reconnect_resumes_the_session_instead_of_a_full_handshake) {
  certs();
  Broker broker(BrokerOptions{.extra_config = listener("server.pem", "require_certificate true\n")});
  TlsClient c(broker, client_options(true));
  SessionHarness& h = *c.harness;
  ASSERT_TRUE(h.start_and_subscribe()) << h.last_detail;
  const std::uint64_t full_bytes = c.tls->stats().last_handshake_bytes;
  h.session->stop();
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 2; })) << h.last_detail;
  print_handshake("reconnect", *c.tls);
  EXPECT_EQ(c.tls->stats().resumed, 1u);
  EXPECT_LT(c.tls->stats().last_handshake_bytes, full_bytes);
}

TEST(Tls, alpn_is_offered_and_a_broker_without_it_still_connects) {
  // mosquitto 2.0 selects no ALPN protocol; the offer must not break the handshake.
  certs();
  Broker broker(BrokerOptions{.extra_config = listener("server.pem")});
  tls::Options o = client_options();
  o.alpn = {"x-amzn-mqtt-ca", "mqtt"};
  TlsClient c(broker, o);
  expect_round_trip(c);
  EXPECT_STREQ(c.tls->alpn(), "");
}

// A TLS server that selects an ALPN protocol (mosquitto 2.0 has no ALPN setting): the
// transport alone, driven through its handshake, shows what was negotiated.
TEST(Tls, alpn_is_negotiated_with_a_server_that_selects_it) {
  const std::uint16_t port = free_port();
  Process server({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", cert("server.pem"),
                  "-key", cert("server.key"), "-alpn", "x-amzn-mqtt-ca", "-quiet"},
                 Redirects{.stdout_file = "/dev/null", .stderr_file = "/dev/null"});
  for (int i = 0; i < 500; ++i) {  // until it listens
    std::string out;
    if (run({"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port)}, &out) == 0) break;
    std::this_thread::sleep_for(10ms);
  }
  tls::Options o = client_options();
  o.alpn = {"mqtt", "x-amzn-mqtt-ca"};
  std::string error;
  auto context = tls::Context::load(o, error);
  ASSERT_TRUE(context) << error;
  tls::Transport t(*context, mqtt::TcpTransport::tcp("127.0.0.1", port), "127.0.0.1");
  mqtt::Progress p = t.open();
  for (int i = 0; i < 1000 && (p == mqtt::Progress::want_read || p == mqtt::Progress::want_write); ++i) {
    pollfd pfd{t.fd(), static_cast<short>(p == mqtt::Progress::want_read ? POLLIN : POLLOUT), 0};
    ::poll(&pfd, 1, 100);
    p = t.progress();
  }
  ASSERT_EQ(p, mqtt::Progress::done) << t.error();
  EXPECT_STREQ(t.alpn(), "x-amzn-mqtt-ca");
  t.close();
}

struct Fault {
  const char* name;
  std::string listener;     // what the bad server presents (a mosquitto listener), or
  bool tls_1_1_only;        // ... an openssl s_server that speaks TLS 1.1 and nothing newer
  std::string client_cert;  // "" none, else the name of a client certificate (and key)
  std::string reason;       // must appear in the logged reason
};
// What GoogleTest prints for the parameter (--gtest_list_tests, a failure): its name, not its 112 bytes.
void PrintTo(const Fault& f, std::ostream* os) { *os << f.name; }

std::vector<Fault> faults() {
  const std::string require = "require_certificate true\n";
  return {
      {"unknown_ca", listener("unknown-ca.pem"), false, "", "unknown CA: issued by CN=some other CA, which is not in"},
      {"wrong_hostname", listener("wrong-host.pem"), false, "",
       "name mismatch: \"127.0.0.1\" is not among its names (CN=other.example, DNS:other.example)"},
      {"expired", listener("expired.pem"), false, "",
       "expired (valid from 2020-01-01 00:00:00 UTC to 2021-01-01 00:00:00 UTC)"},
      {"not_yet_valid", listener("future.pem"), false, "", "not yet valid (valid from 2040-01-01 00:00:00 UTC"},
      {"self_signed", listener("self-signed.pem"), false, "", "self-signed (CN=localhost), not in"},
      {"missing_client_certificate", listener("server.pem", require), false, "",
       "it requires a client certificate, and uplink.tls.cert_file/key_file are not set"},
      {"client_certificate_refused", listener("server.pem", require), false, "rogue-client",
       "client certificate " + cert("rogue-client.pem") + " refused"},
      {"tls_1_1_only_server", "", true, "", "no TLS version or cipher suite in common"},
  };
}

tls::Options client_options(const std::string& client_cert) {
  tls::Options o = client_options();
  if (!client_cert.empty()) {
    o.cert_file = cert(client_cert + ".pem");
    o.key_file = cert(client_cert + ".key");
  }
  return o;
}

// A TLS server that speaks TLS 1.1 at most (mosquitto's tls_version is only a minimum).
Process tls_1_1_server(std::uint16_t port) {
  Process p(
      {"env", "OPENSSL_CONF=/dev/null", "openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert",
       cert("server.pem"), "-key", cert("server.key"), "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-quiet"},
      Redirects{.stdout_file = "/dev/null", .stderr_file = "/dev/null"});
  for (int i = 0; i < 500; ++i) {  // until it listens
    std::string out;
    if (run({"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port)}, &out) == 0) break;
    std::this_thread::sleep_for(10ms);
  }
  return p;
}

// Nothing of MQTT reached the broker after `from` in its log: it never saw a CONNECT.
void expect_no_mqtt(const Broker& broker, std::size_t from = 0) {
  const std::string log = broker.log();
  EXPECT_EQ(log.find("New client connected", from), std::string::npos) << log.substr(from);
}

class TlsFault : public ::testing::TestWithParam<Fault> {};

TEST_P(TlsFault, is_refused_on_the_first_connect_with_the_reason) {
  const Fault& f = GetParam();
  Broker broker(BrokerOptions{.extra_config = f.listener});
  Process tls_1_1;
  if (f.tls_1_1_only) {
    broker.stop();
    tls_1_1 = tls_1_1_server(broker.port());
  }
  TlsClient c(broker, client_options(f.client_cert));
  SessionHarness& h = *c.harness;
  h.session->start();
  // Two attempts: refused, backed off, refused again.
  ASSERT_TRUE(h.run_until([&] { return h.disconnects.size() >= 2; }, 30s)) << h.last_detail;
  EXPECT_EQ(h.connects, 0);
  EXPECT_GE(c.tls->stats().failures, 2u);
  EXPECT_NE(h.last_detail.find(f.reason), std::string::npos) << h.last_detail;
  std::printf("[ reason   ] %s\n", h.last_detail.c_str());
  expect_no_mqtt(broker);
}

TEST_P(TlsFault, is_refused_on_a_reconnect_after_a_good_session) {
  const Fault& f = GetParam();
  Broker broker(BrokerOptions{.extra_config = listener("server.pem")});
  TlsClient c(broker, client_options(f.client_cert));
  SessionHarness& h = *c.harness;
  ASSERT_TRUE(h.start_and_subscribe()) << h.last_detail;
  // The same address now presents the fault (and cannot resume the old session).
  broker.stop();
  const std::size_t log_from = broker.log().size();
  Process tls_1_1;
  if (f.tls_1_1_only) {
    tls_1_1 = tls_1_1_server(broker.port());
  } else {
    broker.set_extra_config(f.listener);
    broker.start();
  }
  ASSERT_TRUE(h.run_until([&] { return h.disconnects.size() >= 3; }, 30s)) << h.last_detail;
  EXPECT_EQ(h.connects, 1);
  EXPECT_NE(h.last_detail.find(f.reason), std::string::npos) << h.last_detail;
  expect_no_mqtt(broker, log_from);
}

INSTANTIATE_TEST_SUITE_P(Tls, TlsFault, ::testing::ValuesIn(faults()), ::testing::PrintToStringParamName());

TEST(Tls, a_key_file_readable_by_others_is_refused_at_startup) {
  TempDir dir;
  const std::string key = dir.write("client.key", read_file(cert("client.key")));
  ::chmod(key.c_str(), 0644);
  tls::Options o = client_options(true);
  o.key_file = key;
  std::string error;
  EXPECT_FALSE(tls::Context::load(o, error));
  EXPECT_EQ(error, "uplink.tls.key_file: " + key +
                       ": readable by group or others (mode 0644); make it the service user's alone (chmod 600)");
}

TEST(Tls, a_missing_or_unreadable_ca_file_is_refused_at_startup_with_its_path) {
  tls::Options o = client_options();
  o.ca_file = "/nonexistent/ca.pem";
  std::string error;
  EXPECT_FALSE(tls::Context::load(o, error));
  EXPECT_EQ(error, "uplink.tls.ca_file: /nonexistent/ca.pem: cannot read: No such file or directory");
  TempDir dir;
  o.ca_file = dir.write("not-a-cert.pem", "hello\n");
  EXPECT_FALSE(tls::Context::load(o, error));
  EXPECT_NE(error.find("uplink.tls.ca_file: " + o.ca_file + ": not a PEM or DER certificate list"), std::string::npos)
      << error;
}

TEST(Tls, the_daemon_refuses_to_start_with_a_key_readable_by_others) {
  TempDir dir;
  const std::string key = dir.write("client.key", read_file(cert("client.key")));
  ::chmod(key.c_str(), 0644);
  const std::string config =
      dir.write("edgegw.toml", "[gateway]\nid = \"tls\"\nstate_dir = \"" + dir.file("state") +
                                   "\"\n[ingest]\nurl = \"mqtt://127.0.0.1:1\"\ntopics = [\"a/#\"]\n[uplink]\nurl = "
                                   "\"mqtts://127.0.0.1:2\"\n[uplink.tls]\nca_file = \"" +
                                   cert("ca.pem") + "\"\ncert_file = \"" + cert("client.pem") + "\"\nkey_file = \"" +
                                   key + "\"\n[pool]\nslots = 128\n");
  std::vector<std::string> argv = own_binary(std::string(EDGEGW_BIN_DIR) + "/edgegw");
  argv.insert(argv.end(), {"run", "--config", config});
  std::string out;
  EXPECT_EQ(run(argv, &out, 30s), 1);
  EXPECT_NE(out.find("uplink.tls.key_file: " + key + ": readable by group or others (mode 0644)"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("BEGIN"), std::string::npos) << "key material must never reach a log";
}

}  // namespace
}  // namespace edgegw::test
