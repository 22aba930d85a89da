// edgegw-sub: subscribes with edgegw's MQTT engine and prints what arrives. Each message is
// read into a pool slot, printed, acknowledged (PUBACK/PUBREC) and its slot released,
// which is the gateway's receive path without the spool.
//
//   edgegw-sub --url mqtt://127.0.0.1:1883 --topic 'sensors/#' [--qos 1] [--mqtt 3.1.1|5]
//              [--count N] [--quiet] [--slots N] [--slot-bytes N] [--client-id ID]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "config/url.hpp"
#include "event/signals.hpp"
#include "mqtt/session.hpp"
#include "mqtt/tcp_transport.hpp"

using namespace edgegw;

namespace {

class Subscriber : public mqtt::SessionHandler, public event::SignalWatcher::Handler {
 public:
  Subscriber(event::Loop& loop, mem::Pool& pool, long count, bool quiet)
      : m_loop(loop), m_pool(pool), m_count(count), m_quiet(quiet) {}
  void attach(mqtt::Session& session) { m_session = &session; }
  long received() const { return m_received; }

  void on_connected(bool session_present) override {
    std::fprintf(stderr, "edgegw-sub: connected (session %s)\n", session_present ? "resumed" : "new");
  }
  void on_disconnected(const mqtt::DisconnectInfo& info) override {
    std::fprintf(stderr, "edgegw-sub: disconnected: %s\n", info.detail);
  }
  void on_subscribed(mqtt::Bytes reasons) override {
    for (std::uint8_t r : reasons) std::fprintf(stderr, "edgegw-sub: subscribed (granted 0x%02x)\n", r);
  }
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override {
    ++m_received;
    if (!m_quiet) {
      std::printf("%.*s (qos %u%s) %.*s\n", static_cast<int>(m.topic.size()), m.topic.data(), m.qos,
                  m.retain ? ", retained" : "", static_cast<int>(m.payload.size()),
                  reinterpret_cast<const char*>(m.payload.data()));
    }
    m_pool.release(m.slot);
    if (m.qos > 0) m_session->ack(token);
    if (m_count > 0 && m_received >= m_count) m_loop.stop();
  }
  void on_signal(int) override { m_loop.stop(); }

 private:
  event::Loop& m_loop;
  mem::Pool& m_pool;
  mqtt::Session* m_session = nullptr;
  long m_count;
  bool m_quiet;
  long m_received = 0;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "edgegw-sub: %s\nusage: edgegw-sub --url URL --topic FILTER [--topic FILTER...] [--qos 0|1|2]\n"
               "                  [--mqtt 3.1.1|5] [--count N] [--quiet] [--slots N] [--slot-bytes N]\n"
               "                  [--client-id ID] [--clean]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url_text;
  mqtt::SessionOptions options;
  options.client_id = "edgegw-sub";
  long count = 0;
  bool quiet = false;
  std::uint32_t slots = 256, slot_bytes = 4096;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--url") url_text = value();
    else if (a == "--topic") options.subscriptions.push_back(value());
    else if (a == "--qos") options.subscribe_qos = static_cast<std::uint8_t>(std::atoi(value().c_str()));
    else if (a == "--mqtt") options.version = value() == "3.1.1" ? mqtt::Version::v311 : mqtt::Version::v5;
    else if (a == "--count") count = std::atol(value().c_str());
    else if (a == "--quiet") quiet = true;
    else if (a == "--slots") slots = static_cast<std::uint32_t>(std::atol(value().c_str()));
    else if (a == "--slot-bytes") slot_bytes = static_cast<std::uint32_t>(std::atol(value().c_str()));
    else if (a == "--client-id") options.client_id = value();
    else if (a == "--clean") options.clean_start = true;
    else usage(("unknown argument " + a).c_str());
  }
  if (url_text.empty() || options.subscriptions.empty()) usage("--url and --topic are required");
  if (options.subscribe_qos > 2 || slots == 0 || slot_bytes == 0) usage("bad --qos, --slots or --slot-bytes");
  std::string why;
  auto url = config::parse_url(url_text, why);
  if (!url || url->scheme == config::Scheme::mqtts) usage(url ? "mqtts:// needs the TLS transport" : why.c_str());

  event::Loop loop;
  mem::Pool pool(slots, slot_bytes);
  mqtt::TcpTransport transport = url->scheme == config::Scheme::unix_socket
                                     ? mqtt::TcpTransport::unix_socket(url->path)
                                     : mqtt::TcpTransport::tcp(url->host, url->port);
  Subscriber sub(loop, pool, count, quiet);
  event::SignalWatcher signals(loop, sub);
  mqtt::Session session(loop, transport, &pool, options, sub);
  sub.attach(session);
  session.start();
  loop.run();
  session.stop();
  const auto& c = session.counters();
  std::fprintf(
      stderr,
      "edgegw-sub: received %ld messages; refused oversize %llu; reconnects %llu; pool high-water %u of %u slots\n",
      sub.received(), static_cast<unsigned long long>(c.refused_oversize),
      static_cast<unsigned long long>(c.connects ? c.connects - 1 : 0), pool.high_water(), pool.slot_count());
  return 0;
}
