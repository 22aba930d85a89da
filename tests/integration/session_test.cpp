// The MQTT engine against real mosquitto brokers on free loopback ports.
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <set>

#include "support/broker.hpp"
#include "support/clients.hpp"
#include "support/session_harness.hpp"

using namespace edgegw;
using namespace edgegw::test;
using namespace std::chrono_literals;
using mqtt::Version;

namespace edgegw::mqtt {
// What GoogleTest prints for the parameter (--gtest_list_tests, a failure), not its byte.
// (static: ADL finds it here, and no other file's definition can clash with it.)
static void PrintTo(Version v, std::ostream* os) { *os << (v == Version::v5 ? "v5" : "v311"); }
}  // namespace edgegw::mqtt

class SessionByVersion : public ::testing::TestWithParam<Version> {
 protected:
  std::string tag() const { return ::testing::PrintToString(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Mqtt, SessionByVersion, ::testing::Values(Version::v311, Version::v5),
                         ::testing::PrintToStringParamName());

TEST_P(SessionByVersion, connects_subscribes_and_receives_qos_0_1_and_2) {
  Broker broker;
  SessionHarness h(broker.url(), options(GetParam(), std::string("rx-") + tag(), {"sensors/#"}));
  ASSERT_TRUE(h.start_and_subscribe()) << h.last_detail;
  EXPECT_EQ(h.granted, std::vector<std::uint8_t>{2});
  for (int qos = 0; qos <= 2; ++qos) publish(broker, "sensors/t" + std::to_string(qos), "v" + std::to_string(qos), qos);
  ASSERT_TRUE(h.run_until([&] { return h.received.size() == 3; }));
  for (int qos = 0; qos <= 2; ++qos) {
    EXPECT_EQ(h.received[qos].topic, "sensors/t" + std::to_string(qos));
    EXPECT_EQ(h.received[qos].payload, "v" + std::to_string(qos));
    EXPECT_EQ(h.received[qos].qos, qos);
  }
  // Every QoS 1/2 message was acknowledged (PUBACK, PUBREC/PUBREL/PUBCOMP completed).
  h.run_until([&] { return h.session->unacked_received() == 0; }, 2s);
  EXPECT_EQ(h.session->unacked_received(), 0u);
  EXPECT_EQ(h.session->counters().protocol_errors, 0u);
}

TEST_P(SessionByVersion, publishes_qos1_to_an_independent_subscriber) {
  Broker broker;
  TempDir dir;
  const std::string verifier = std::string("verifier-") + tag();
  // A persistent session subscribed before we publish, so nothing can be missed.
  std::string out;
  ASSERT_EQ(run(with_broker(broker, {"mosquitto_sub", "-c", "-i", verifier, "-q", "1", "-t", "up/#", "-E"}), &out), 0)
      << out;

  SessionHarness h(broker.url(), options(GetParam(), std::string("tx-") + tag(), {}));
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 1; }));
  std::vector<std::string> payloads;
  for (int i = 0; i < 200; ++i) payloads.push_back("m" + std::to_string(i));
  std::size_t next = 0;
  ASSERT_TRUE(h.run_until([&] {
    while (next < payloads.size() && h.session->publish_room() > 0) {
      const std::string& p = payloads[next];
      mqtt::OutMessage m{"up/", "t", mqtt::Bytes(reinterpret_cast<const std::uint8_t*>(p.data()), p.size()), 1};
      EXPECT_EQ(h.session->publish(m, next), mqtt::PublishStatus::queued);
      ++next;
    }
    return h.published.size() == payloads.size();
  }));
  EXPECT_EQ(h.publish_refused, 0);
  ASSERT_EQ(run(with_broker(broker, {"mosquitto_sub", "-c", "-i", verifier, "-q", "1", "-t", "up/#", "-C", "200", "-W",
                                     "20", "-v"}),
                &out),
            0);
  for (int i = 0; i < 200; ++i) EXPECT_NE(out.find("up/t m" + std::to_string(i) + "\n"), std::string::npos) << i;
}

TEST_P(SessionByVersion, a_persistent_session_redelivers_what_was_received_but_not_acknowledged) {
  Broker broker;
  auto opts = options(GetParam(), std::string("persist-") + tag(), {"p/#"}, 1);
  opts.clean_start = false;
  {
    SessionHarness first(broker.url(), opts);
    first.auto_ack = false;
    ASSERT_TRUE(first.start_and_subscribe());
    for (int i = 0; i < 5; ++i) publish(broker, "p/x", "m" + std::to_string(i), 1);
    ASSERT_TRUE(first.run_until([&] { return first.received.size() == 5; }));
    first.session->stop();  // never acknowledged
  }
  SessionHarness second(broker.url(), opts);
  second.session->start();
  ASSERT_TRUE(second.run_until([&] { return second.received.size() >= 5; }));
  EXPECT_TRUE(second.session_present);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(second.received[i].payload, "m" + std::to_string(i));
    EXPECT_TRUE(second.received[i].dup);
  }
  // Acknowledged this time: a third session gets nothing more.
  second.run_until([&] { return second.session->unacked_received() == 0; }, 2s);
  second.session->stop();
  const std::size_t second_received = second.received.size();
  // Only once the broker has read the PUBACKs and the DISCONNECT: a new connection before
  // that takes the session over with those messages still in flight, and they come again.
  const std::string gone = "Client persist-" + std::string(tag()) + " disconnected";
  ASSERT_TRUE(second.run_until([&] {
    const std::string log = broker.log();
    std::size_t n = 0;
    for (std::size_t at = log.find(gone); at != std::string::npos; at = log.find(gone, at + 1)) ++n;
    return n >= 2;
  })) << broker.log();
  SessionHarness third(broker.url(), opts);
  third.session->start();
  third.run_for(500ms);
  EXPECT_TRUE(third.received.empty()) << third.received.size() << " redelivered, first: " << third.received[0].payload
                                      << " (second got " << second_received << ")";
}

TEST_P(SessionByVersion, a_full_pool_stops_reading_and_nothing_is_lost) {
  Broker broker;
  SessionHarness h(broker.url(), options(GetParam(), std::string("bp-") + tag(), {"bp/#"}, 1), 4, 256);
  h.hold_slots = true;
  h.auto_ack = false;
  ASSERT_TRUE(h.start_and_subscribe());
  for (int i = 0; i < 12; ++i) publish(broker, "bp/x", std::to_string(i), 1);
  h.run_for(500ms);
  EXPECT_EQ(h.received.size(), 4u);  // one per slot, then the session stopped reading
  EXPECT_GE(h.session->counters().input_pauses, 1u);
  EXPECT_EQ(h.pool.high_water(), 4u);
  ASSERT_TRUE(h.run_until([&] {
    h.ack_held();
    h.release_held_slots();
    return h.received.size() == 12;
  }));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(h.received[i].payload, std::to_string(i));
}

TEST_P(SessionByVersion, refuses_a_message_larger_than_a_slot_and_counts_it) {
  Broker broker;
  SessionHarness h(broker.url(), options(GetParam(), std::string("big-") + tag(), {"big/#"}, 1), 8, 64);
  ASSERT_TRUE(h.start_and_subscribe());
  publish(broker, "big/x", std::string(2000, 'x'), 1);  // beyond the slot and its headroom: streamed past
  publish(broker, "big/y", std::string(300, 'y'), 1);   // fits the headroom, not slot_bytes
  publish(broker, "big/z", "small", 1);
  ASSERT_TRUE(h.run_until([&] { return h.received.size() == 1; }));
  EXPECT_EQ(h.received[0].payload, "small");
  EXPECT_EQ(h.session->counters().refused_oversize, 2u);
  // Refused messages were acknowledged: the broker does not send them again.
  h.run_until([&] { return h.session->unacked_received() == 0; }, 2s);
  h.session->stop();
  h.session->start();
  h.run_for(500ms);
  EXPECT_EQ(h.received.size(), 1u);
}

TEST_P(SessionByVersion, keepalive_pings_and_detects_a_dead_broker) {
  Broker broker;
  auto opts = options(GetParam(), std::string("ka-") + tag(), {"ka/#"});
  opts.keepalive_s = 1;
  SessionHarness h(broker.url(), opts);
  ASSERT_TRUE(h.start_and_subscribe());
  h.run_for(3500ms);
  EXPECT_GE(h.session->counters().pings_sent, 2u);
  EXPECT_EQ(h.session->counters().pongs_received, h.session->counters().pings_sent);
  EXPECT_EQ(h.connects, 1);
  broker.pause();  // alive socket, no answers
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 5s));
  EXPECT_EQ(h.disconnects[0], mqtt::Reason::keepalive_timeout);
  broker.resume();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 2; }, 10s));
}

TEST_P(SessionByVersion, reconnects_with_backoff_after_the_broker_restarts) {
  Broker broker;
  auto opts = options(GetParam(), std::string("re-") + tag(), {"re/#"}, 1);
  opts.clean_start = false;
  SessionHarness h(broker.url(), opts);
  ASSERT_TRUE(h.start_and_subscribe());
  broker.stop();
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 5s));
  h.run_for(700ms);  // several refused attempts while it is down
  EXPECT_GE(h.session->counters().connect_failures, 1u);
  broker.start();
  ASSERT_TRUE(h.run_until([&] { return h.subscribed == 2; }, 10s));
  publish(broker, "re/x", "after", 1);
  ASSERT_TRUE(h.run_until([&] { return h.received.size() == 1; }));
}

TEST(Session, v5_receive_maximum_limits_what_the_broker_sends_unacknowledged) {
  Broker broker;
  auto opts = options(Version::v5, "rmax", {"rm/#"}, 1);
  opts.receive_maximum = 3;
  SessionHarness h(broker.url(), opts);
  h.auto_ack = false;
  ASSERT_TRUE(h.start_and_subscribe());
  for (int i = 0; i < 10; ++i) publish(broker, "rm/x", std::to_string(i), 1);
  h.run_for(500ms);
  EXPECT_EQ(h.received.size(), 3u);
  ASSERT_TRUE(h.run_until([&] {
    h.ack_held();
    return h.received.size() == 10;
  }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(h.received[i].payload, std::to_string(i));
}

TEST(Session, v5_honours_the_servers_receive_maximum_when_publishing) {
  Broker broker({.extra_config = "max_inflight_messages 5"});
  SessionHarness h(broker.url(), options(Version::v5, "window", {}));
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 1; }));
  EXPECT_EQ(h.session->publish_window(), 5u);
  std::string payload = "x";
  std::uint64_t next = 0;
  ASSERT_TRUE(h.run_until([&] {
    while (next < 50 && h.session->publish_room() > 0) {
      h.session->publish({"", "w", mqtt::Bytes(reinterpret_cast<const std::uint8_t*>(payload.data()), 1), 1}, next++);
    }
    return h.published.size() == 50;
  }));
  EXPECT_EQ(h.session->counters().publish_acked, 50u);
}

TEST(Session, connects_over_ipv6_and_unix_sockets) {
  for (BrokerOptions bo : {BrokerOptions{.ipv6 = true}, BrokerOptions{.unix_socket = true}}) {
    Broker broker(bo);
    SessionHarness h(broker.url(), options(Version::v5, "where", {"w/#"}));
    ASSERT_TRUE(h.start_and_subscribe()) << broker.url() << ": " << h.last_detail;
    publish(broker, "w/x", "here", 1);
    ASSERT_TRUE(h.run_until([&] { return h.received.size() == 1; })) << broker.url();
  }
}

TEST(Session, surfaces_the_servers_disconnect_reason) {
  // A QoS 1 publish to a broker that takes QoS 0 only, from a session not told what it
  // publishes at (publish_qos 0, so the CONNACK passes): mosquitto answers with DISCONNECT
  // "QoS not supported" (0x9b).
  Broker broker({.extra_config = "max_qos 0"});
  SessionHarness h(broker.url(), options(Version::v5, "qos1", {}));
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 1; }));
  std::string payload = "q";
  mqtt::OutMessage m{"", "q/x", mqtt::Bytes(reinterpret_cast<const std::uint8_t*>(payload.data()), 1), 1, false};
  ASSERT_EQ(h.session->publish(m, 1), mqtt::PublishStatus::queued);
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }));
  EXPECT_EQ(h.disconnects[0], mqtt::Reason::qos_not_supported);
  EXPECT_NE(h.last_detail.find("server sent DISCONNECT: QoS not supported"), std::string::npos) << h.last_detail;
  h.session->stop();
}

TEST(Session, resends_unacknowledged_publishes_with_dup_after_a_reconnect) {
  Broker broker;
  std::string out;
  ASSERT_EQ(
      run(with_broker(broker, {"mosquitto_sub", "-c", "-i", "dup-verifier", "-q", "1", "-t", "dup/#", "-E"}), &out), 0)
      << out;
  auto opts = options(Version::v5, "resender", {});
  opts.keepalive_s = 1;
  SessionHarness h(broker.url(), opts);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 1; }));
  broker.pause();  // what we send now is never acknowledged on this connection
  std::vector<std::string> payloads;
  for (int i = 0; i < 10; ++i) payloads.push_back("d" + std::to_string(i));
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    mqtt::OutMessage m{"", "dup/x", mqtt::Bytes(reinterpret_cast<const std::uint8_t*>(payloads[i].data()), 2), 1};
    ASSERT_EQ(h.session->publish(m, i), mqtt::PublishStatus::queued);
  }
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 5s));  // keepalive timeout
  EXPECT_TRUE(h.published.empty());
  broker.resume();
  ASSERT_TRUE(h.run_until([&] { return h.published.size() == payloads.size(); }, 15s));
  EXPECT_GE(h.session->counters().published, 2 * payloads.size());  // each went out twice
  EXPECT_EQ(h.session->counters().publish_acked, payloads.size());
  ASSERT_EQ(
      run(with_broker(broker, {"mosquitto_sub", "-c", "-i", "dup-verifier", "-q", "1", "-t", "dup/#", "-W", "3", "-v"}),
          &out),
      27);  // -W timeout once the queue is drained
  for (const std::string& p : payloads) EXPECT_NE(out.find("dup/x " + p + "\n"), std::string::npos) << p << "\n" << out;
}
