// What mosquitto (2.0.11, Debian 12) does with QoS 1 messages for a subscriber that does
// not acknowledge them: how many it sends before it waits for PUBACKs (the in-flight
// window), and how many it queues behind a full window before it drops the rest. edgegw's
// ingest session acknowledges a message only once it is durable, and stops reading while
// a full spool holds input, so these are the numbers that bound one fsync batch and that
// decide whether the local broker loses messages meant for edgegw. docs/INSTALL.md ("The
// board's mosquitto") is written from them.
//
// The subscriber is the engine's own mqtt::Session that never calls ack() until a test
// says so; the publisher is mosquitto_pub. The session stops reading only when a PUBLISH
// arrives beyond its receive_maximum, so every window case checks that it never had to
// (input_pauses == 0): the count it measured is where the broker stopped sending.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "support/broker.hpp"
#include "support/clients.hpp"
#include "support/session_harness.hpp"

using namespace edgegw;
using namespace edgegw::test;
using namespace std::chrono_literals;
using mqtt::Version;

namespace {

// mosquitto's own defaults (man mosquitto.conf), spelled out: the test broker's base
// configuration sets max_queued_messages 0 (support/broker.cpp), and a later line wins.
const std::string k_mosquitto_defaults = "max_inflight_messages 20\nmax_queued_messages 1000\n";

const char* name(Version v) { return v == Version::v5 ? "v5" : "3.1.1"; }

// The broker configuration on one line, for the measurement lines.
std::string one_line(const std::string& config) {
  std::string out;
  for (char c : config) {
    if (c != '\n') out += c;
    else if (!out.empty()) out += "; ";
  }
  while (out.size() >= 2 && out.ends_with("; ")) out.resize(out.size() - 2);
  return out;
}

mqtt::SessionOptions subscriber(Version v, const std::string& client_id, std::uint16_t receive_maximum) {
  auto o = options(v, client_id, {"win/#"}, 1);
  o.receive_maximum = receive_maximum;
  return o;
}

// Runs the loop (acknowledging everything received when `ack`) until the count of
// received messages has not changed for a whole second.
void settle(SessionHarness& h, bool ack) {
  for (int i = 0; i < 240; ++i) {
    const std::size_t before = h.received.size();
    h.run_until(
        [&] {
          if (ack) h.ack_held();
          return false;
        },
        1s);
    if (h.received.size() == before) return;
  }
  ADD_FAILURE() << "still receiving after 4 minutes";
}

// Publishes "0".."count-1" as QoS 1 messages on win/x with mosquitto_pub while the
// subscriber runs, waits for mosquitto_pub to finish (the broker then holds every message:
// in flight, queued or dropped), then until nothing more arrives.
void publish_and_settle(const Broker& broker, SessionHarness& h, int count, bool ack) {
  TempDir dir;
  Process pub = publish_lines(broker, dir, "win/x", count, 1);
  int rc = -1;
  EXPECT_TRUE(h.run_until(
      [&] {
        if (ack) h.ack_held();
        if (rc == -1) rc = pub.wait(0ms);  // once: the child is reaped then
        return rc != -1;
      },
      300s))
      << "mosquitto_pub did not finish";
  EXPECT_EQ(rc, 0) << "mosquitto_pub failed";
  settle(h, ack);
}

// How many QoS 1 messages a subscriber that acknowledges nothing gets out of `published`.
std::size_t in_flight(Version v, std::uint16_t receive_maximum, const std::string& broker_config, int published) {
  Broker broker({.extra_config = broker_config});
  SessionHarness h(broker.url(), subscriber(v, "window", receive_maximum));
  h.auto_ack = false;
  EXPECT_TRUE(h.start_and_subscribe()) << h.last_detail;
  publish_and_settle(broker, h, published, false);
  // The session never found its ack ring full: the broker stopped by itself.
  EXPECT_EQ(h.session->counters().input_pauses, 0u);
  EXPECT_EQ(h.session->counters().protocol_errors, 0u);
  EXPECT_EQ(h.connects, 1);
  for (std::size_t i = 0; i < h.received.size(); ++i) EXPECT_EQ(h.received[i].payload, std::to_string(i));
  std::printf("[ measured ] %s subscriber, receive_maximum %u, broker config {%s}: %zu of %d in flight\n", name(v),
              receive_maximum, one_line(broker_config).c_str(), h.received.size(), published);
  return h.received.size();
}

struct Delivery {
  std::size_t window = 0;  // in flight while the subscriber acknowledged nothing (0: offline)
  std::size_t delivered = 0;
  bool broker_logged_drops = false;
};

// A subscriber that acknowledges nothing while `published` messages arrive, then
// acknowledges everything: how many it gets in all (the rest were dropped by the broker).
Delivery after_a_stall(Version v, std::uint16_t receive_maximum, const std::string& broker_config, int published) {
  Broker broker({.extra_config = broker_config});
  SessionHarness h(broker.url(), subscriber(v, "stalled", receive_maximum));
  h.auto_ack = false;
  EXPECT_TRUE(h.start_and_subscribe()) << h.last_detail;
  publish_and_settle(broker, h, published, false);
  const std::size_t window = h.received.size();
  settle(h, true);
  EXPECT_EQ(h.session->counters().protocol_errors, 0u);
  EXPECT_EQ(h.connects, 1);
  // In order, each once: what is missing is a tail the broker never kept.
  for (std::size_t i = 0; i < h.received.size(); ++i) EXPECT_EQ(h.received[i].payload, std::to_string(i));
  Delivery d{window, h.received.size(), broker.log().find("Outgoing messages are being dropped") != std::string::npos};
  std::printf(
      "[ measured ] %s subscriber, receive_maximum %u, broker config {%s}: %zu in flight while stalled, "
      "%zu of %d delivered once acknowledged%s\n",
      name(v), receive_maximum, one_line(broker_config).c_str(), window, d.delivered, published,
      d.broker_logged_drops ? " (broker log: \"Outgoing messages are being dropped\")" : "");
  return d;
}

// A persistent v5 session that is disconnected while `published` messages arrive, then
// reconnects: how many the broker kept for it.
Delivery while_disconnected(const std::string& broker_config, int published) {
  Broker broker({.extra_config = broker_config});
  auto opts = subscriber(Version::v5, "away", 1024);
  opts.clean_start = false;
  SessionHarness h(broker.url(), opts);
  EXPECT_TRUE(h.start_and_subscribe()) << h.last_detail;
  h.session->stop();
  // Only once the broker has read the DISCONNECT is the client offline to it.
  EXPECT_TRUE(h.run_until([&] { return broker.log().find("Client away disconnected") != std::string::npos; }))
      << broker.log();
  TempDir dir;
  Process pub = publish_lines(broker, dir, "win/x", published, 1);
  EXPECT_EQ(pub.wait(300s), 0) << "mosquitto_pub failed";
  h.session->start();
  EXPECT_TRUE(h.run_until([&] { return h.connects == 2; })) << h.last_detail;
  EXPECT_TRUE(h.session_present);
  settle(h, true);
  for (std::size_t i = 0; i < h.received.size(); ++i) EXPECT_EQ(h.received[i].payload, std::to_string(i));
  Delivery d{0, h.received.size(), broker.log().find("Outgoing messages are being dropped") != std::string::npos};
  std::printf("[ measured ] v5 persistent session offline, broker config {%s}: %zu of %d kept for it%s\n",
              one_line(broker_config).c_str(), d.delivered, published,
              d.broker_logged_drops ? " (broker log: \"Outgoing messages are being dropped\")" : "");
  return d;
}

}  // namespace

// ---- The in-flight window ----

// MQTT 5: the broker sends as many as the subscriber's CONNECT Receive Maximum says ...
TEST(MosquittoWindow, v5_subscriber_gets_its_receive_maximum_with_the_default_config) {
  EXPECT_EQ(in_flight(Version::v5, 1024, k_mosquitto_defaults, 3000), 1024u);
}

// ... whatever max_inflight_messages says: that option does not limit v5 subscribers ...
TEST(MosquittoWindow, v5_subscriber_gets_its_receive_maximum_not_max_inflight_messages) {
  EXPECT_EQ(in_flight(Version::v5, 1024, "max_inflight_messages 20", 3000), 1024u);
}

// ... a small Receive Maximum is honoured just the same ...
TEST(MosquittoWindow, v5_subscriber_gets_a_small_receive_maximum_exactly) {
  EXPECT_EQ(in_flight(Version::v5, 10, k_mosquitto_defaults, 3000), 10u);
}

// ... and the broker has no count limit of its own: at 65535 everything published is in flight.
TEST(MosquittoWindow, v5_subscriber_at_receive_maximum_65535_gets_everything_published) {
  EXPECT_EQ(in_flight(Version::v5, 65535, k_mosquitto_defaults, 3000), 3000u);
}

// MQTT 3.1.1 has no Receive Maximum: the broker's max_inflight_messages (default 20) is the window.
TEST(MosquittoWindow, v311_subscriber_gets_max_inflight_messages_not_more) {
  EXPECT_EQ(in_flight(Version::v311, 1024, k_mosquitto_defaults, 3000), 20u);
}

TEST(MosquittoWindow, v311_subscriber_gets_a_raised_max_inflight_messages) {
  EXPECT_EQ(in_flight(Version::v311, 1024, "max_inflight_messages 1000", 3000), 1000u);
}

// ---- The queue behind a full window ----

// While the window is full (the subscriber acknowledges nothing, or stops reading), the
// broker queues max_queued_messages (default 1000) more per client and silently drops
// the rest: 1024 in flight + 1000 queued of 2500.
TEST(MosquittoWindow, v5_stalled_subscriber_loses_what_exceeds_receive_maximum_plus_max_queued_messages) {
  Delivery d = after_a_stall(Version::v5, 1024, k_mosquitto_defaults, 2500);
  EXPECT_EQ(d.window, 1024u);
  EXPECT_EQ(d.delivered, 2024u);
  EXPECT_TRUE(d.broker_logged_drops);
}

// 20 in flight + 1000 queued of 1500.
TEST(MosquittoWindow, v311_stalled_subscriber_loses_what_exceeds_max_inflight_plus_max_queued_messages) {
  Delivery d = after_a_stall(Version::v311, 1024, k_mosquitto_defaults, 1500);
  EXPECT_EQ(d.window, 20u);
  EXPECT_EQ(d.delivered, 1020u);
  EXPECT_TRUE(d.broker_logged_drops);
}

// max_queued_messages 0 is no limit: nothing is dropped.
TEST(MosquittoWindow, v5_stalled_subscriber_loses_nothing_with_max_queued_messages_0) {
  Delivery d = after_a_stall(Version::v5, 1024, "max_queued_messages 0", 2500);
  EXPECT_EQ(d.window, 1024u);
  EXPECT_EQ(d.delivered, 2500u);
  EXPECT_FALSE(d.broker_logged_drops);
}

TEST(MosquittoWindow, v311_stalled_subscriber_loses_nothing_with_max_queued_messages_0) {
  Delivery d = after_a_stall(Version::v311, 1024, "max_inflight_messages 20\nmax_queued_messages 0", 1500);
  EXPECT_EQ(d.window, 20u);
  EXPECT_EQ(d.delivered, 1500u);
  EXPECT_FALSE(d.broker_logged_drops);
}

// While the subscriber is disconnected (edgegw restarting) nothing is in flight: the broker
// keeps max_queued_messages for its persistent session, not the window on top.
TEST(MosquittoWindow, disconnected_v5_subscriber_gets_only_max_queued_messages_kept) {
  Delivery d = while_disconnected(k_mosquitto_defaults, 1500);
  EXPECT_EQ(d.delivered, 1000u);
  EXPECT_TRUE(d.broker_logged_drops);
}

TEST(MosquittoWindow, disconnected_v5_subscriber_loses_nothing_with_max_queued_messages_0) {
  Delivery d = while_disconnected("max_queued_messages 0", 1500);
  EXPECT_EQ(d.delivered, 1500u);
  EXPECT_FALSE(d.broker_logged_drops);
}

// ---- The lines docs/INSTALL.md puts in /etc/mosquitto/conf.d/edgegw.conf ----

const std::string k_install_md_config = "max_inflight_messages 1024\nmax_queued_messages 0\n";

TEST(MosquittoWindow, install_md_config_gives_a_v5_subscriber_its_window_and_drops_nothing) {
  Delivery d = after_a_stall(Version::v5, 1024, k_install_md_config, 2500);
  EXPECT_EQ(d.window, 1024u);
  EXPECT_EQ(d.delivered, 2500u);
  EXPECT_FALSE(d.broker_logged_drops);
}

TEST(MosquittoWindow, install_md_config_gives_a_v311_subscriber_a_1024_window_and_drops_nothing) {
  Delivery d = after_a_stall(Version::v311, 1024, k_install_md_config, 2500);
  EXPECT_EQ(d.window, 1024u);
  EXPECT_EQ(d.delivered, 2500u);
  EXPECT_FALSE(d.broker_logged_drops);
}
