// Honour what the broker says, for the packet sequences no real broker is set up to send:
// a scripted server (tests/support/scripted_broker.hpp) plays them to the session. The
// ones a configured mosquitto shows are in gateway_broker_says_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/scripted_broker.hpp"
#include "support/session_harness.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;

const Bytes k_connack_v5_ok = {0x00, 0x00, 0x00};  // no session, success, no properties

mqtt::SessionOptions scripted(const std::string& key = "uplink") {
  mqtt::SessionOptions o = options(mqtt::Version::v5, "scripted", {}, 1);
  o.config_key = key;
  o.reconnect_min = 50ms;
  o.reconnect_max = 2s;
  return o;
}

// The protocol level of a CONNECT body: 4 for 3.1.1, 5 for MQTT 5.
int protocol_level(const Bytes& connect) { return connect.size() > 6 ? connect[6] : -1; }

TEST(BrokerSays, a_311_connack_to_an_mqtt5_connect_names_the_setting_and_is_not_hammered) {
  ScriptedBroker broker([](ScriptedConnection& c, int) {
    Bytes body;
    if (c.read_until(1, body)) c.write({0x20, 0x02, 0x00, 0x01});  // 3.1.1: unacceptable protocol version
  });
  SessionHarness h(broker.url(), scripted());
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 10s));
  EXPECT_NE(h.last_detail.find("the broker speaks MQTT 3.1.1 only"), std::string::npos) << h.last_detail;
  EXPECT_NE(h.last_detail.find("set uplink.mqtt_version = \"3.1.1\""), std::string::npos) << h.last_detail;
  h.run_for(1s);  // reconnect_min is 50 ms: a loop would have come back many times
  EXPECT_EQ(broker.connections(), 1) << "the next attempt waits reconnect_max";
  EXPECT_EQ(h.connects, 0);
}

TEST(BrokerSays, mqtt_version_auto_falls_back_to_311_when_the_broker_answers_so) {
  std::vector<int> levels;
  ScriptedBroker broker([&](ScriptedConnection& c, int) {
    Bytes body;
    if (!c.read_until(1, body)) return;
    levels.push_back(protocol_level(body));
    if (protocol_level(body) == 5) {
      c.write({0x20, 0x02, 0x00, 0x01});
      return;
    }
    c.write({0x20, 0x02, 0x00, 0x00});  // 3.1.1 CONNACK: accepted
    std::uint8_t first;
    c.read(first, body, 3s);  // stays until the client goes
  });
  mqtt::SessionOptions o = scripted();
  o.version_fallback = true;
  SessionHarness h(broker.url(), o);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 1; }, 10s)) << h.last_detail;
  EXPECT_EQ(h.session->version(), mqtt::Version::v311);
  h.session->stop();
  ASSERT_GE(levels.size(), 2u);
  EXPECT_EQ(levels[0], 5);
  EXPECT_EQ(levels[1], 4);
}

TEST(BrokerSays, session_present_after_a_clean_start_closes_the_connection) {
  ScriptedBroker broker([](ScriptedConnection& c, int) {
    Bytes body;
    if (c.read_until(1, body)) c.send_packet(0x20, {0x01, 0x00, 0x00});  // Session Present, success
    std::uint8_t first;
    c.read(first, body, 2s);
  });
  SessionHarness h(broker.url(), scripted());
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 10s));
  EXPECT_EQ(h.connects, 0);
  EXPECT_EQ(h.disconnects[0], mqtt::Reason::protocol_error);
  EXPECT_NE(h.last_detail.find("Session Present after a clean start"), std::string::npos) << h.last_detail;
}

TEST(BrokerSays, use_another_server_is_logged_with_the_reference_and_not_hammered) {
  ScriptedBroker broker([](ScriptedConnection& c, int) {
    Bytes body;
    if (!c.read_until(1, body)) return;
    const std::string ref = "other.example:8883";
    Bytes connack = {0x00, 0x9c, static_cast<std::uint8_t>(3 + ref.size()),
                     0x1c, 0x00, static_cast<std::uint8_t>(ref.size())};
    connack.insert(connack.end(), ref.begin(), ref.end());
    c.send_packet(0x20, connack);
  });
  SessionHarness h(broker.url(), scripted());
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 10s));
  EXPECT_EQ(h.disconnects[0], mqtt::Reason::use_another_server);
  EXPECT_NE(h.last_detail.find("\"other.example:8883\" (not followed: set uplink.url)"), std::string::npos)
      << h.last_detail;
  h.run_for(1s);
  EXPECT_EQ(broker.connections(), 1);
}

// A Server Reference is told with the setting to change, never followed (the gateway's
// credentials go only to the host the operator configured): in a CONNACK "server moved"
// (retried only at reconnect_max), and in a DISCONNECT of a connected session.
Bytes with_reference(Bytes head, const std::string& ref) {
  head.insert(head.end(),
              {static_cast<std::uint8_t>(3 + ref.size()), 0x1c, 0x00, static_cast<std::uint8_t>(ref.size())});
  head.insert(head.end(), ref.begin(), ref.end());
  return head;
}

TEST(BrokerSays, server_moved_in_a_connack_is_logged_with_the_reference_and_not_hammered) {
  ScriptedBroker broker([](ScriptedConnection& c, int) {
    Bytes body;
    if (c.read_until(1, body)) c.send_packet(0x20, with_reference({0x00, 0x9d}, "new.example:8883"));
  });
  SessionHarness h(broker.url(), scripted());
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 10s));
  EXPECT_EQ(h.disconnects[0], mqtt::Reason::server_moved);
  EXPECT_NE(h.last_detail.find("server moved; it names another server, \"new.example:8883\" (not followed: set "
                               "uplink.url)"),
            std::string::npos)
      << h.last_detail;
  h.run_for(1s);
  EXPECT_EQ(broker.connections(), 1) << "the next attempt waits reconnect_max";
}

TEST(BrokerSays, a_disconnect_naming_another_server_is_logged_with_the_reference_and_the_setting) {
  ScriptedBroker broker([](ScriptedConnection& c, int index) {
    Bytes body;
    if (index > 0 || !c.read_until(1, body)) return;
    c.send_packet(0x20, k_connack_v5_ok);
    c.send_packet(0xe0, with_reference({0x9d}, "new.example:8883"));  // DISCONNECT, server moved
    std::uint8_t first;
    c.read(first, body, 2s);
  });
  SessionHarness h(broker.url(), scripted("ingest"));
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 10s));
  h.session->stop();
  EXPECT_EQ(h.connects, 1);
  EXPECT_EQ(h.disconnects[0], mqtt::Reason::server_moved);
  EXPECT_NE(h.last_detail.find("server sent DISCONNECT: server moved; it names another server, \"new.example:8883\" "
                               "(not followed: set ingest.url)"),
            std::string::npos)
      << h.last_detail;
}

// CONNACK Shared Subscription Available 0 and Wildcard Subscription Available 0: those
// filters are an error of their own (with the setting to change), not in the SUBSCRIBE.
TEST(BrokerSays, filters_the_connack_says_the_broker_cannot_take_are_not_asked_for) {
  std::vector<std::string> asked;
  ScriptedBroker broker([&](ScriptedConnection& c, int) {
    Bytes body;
    if (!c.read_until(1, body)) return;
    c.send_packet(0x20, {0x00, 0x00, 0x04, 0x28, 0x00, 0x2a, 0x00});  // no wildcards, no shared subscriptions
    if (!c.read_until(8, body)) return;  // SUBSCRIBE: packet id, properties (none), filters
    Bytes suback = {body[0], body[1], 0x00};
    for (std::size_t at = 3; at + 2 < body.size(); at += 2 + (body[at] << 8 | body[at + 1]) + 1) {
      asked.emplace_back(reinterpret_cast<const char*>(body.data()) + at + 2, body[at] << 8 | body[at + 1]);
      suback.push_back(0x01);
    }
    c.send_packet(0x90, suback);
    std::uint8_t first;
    c.read(first, body, 3s);
  });
  mqtt::SessionOptions o = scripted("ingest");
  o.subscriptions = {"sensors/#", "$share/g/x", "plain"};
  SessionHarness h(broker.url(), o);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.subscribed >= 1; }, 10s));
  h.session->stop();
  EXPECT_EQ(asked, std::vector<std::string>{"plain"});
  EXPECT_EQ(h.granted, (std::vector<std::uint8_t>{0xa2, 0x9e, 0x01}))
      << "wildcard subscriptions not supported, shared subscriptions not supported, granted QoS 1";
}

// A persistent session (clean_start false) the broker no longer has on a reconnect
// (Session Present 0 after a connect) is counted; the first connect, or one it kept, not.
TEST(BrokerSays, a_session_the_broker_lost_is_counted) {
  ScriptedBroker broker([](ScriptedConnection& c, int index) {
    Bytes body;
    if (!c.read_until(1, body)) return;
    c.send_packet(0x20, {index == 2 ? std::uint8_t{0x01} : std::uint8_t{0x00}, 0x00, 0x00});
    if (index == 3) {
      std::uint8_t first;
      c.read(first, body, 3s);
    }
  });
  mqtt::SessionOptions o = scripted("ingest");
  o.clean_start = false;
  SessionHarness h(broker.url(), o);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 4; }, 20s));
  h.session->stop();
  EXPECT_EQ(h.session->counters().sessions_lost, 2u) << "the second (new) and the fourth (new after a kept one)";
}

TEST(BrokerSays, a_refused_filter_is_asked_for_again_alone_and_its_state_is_known) {
  std::vector<std::size_t> filters_asked;
  ScriptedBroker broker([&](ScriptedConnection& c, int) {
    Bytes body;
    if (!c.read_until(1, body)) return;
    c.send_packet(0x20, k_connack_v5_ok);
    for (int round = 0; round < 2; ++round) {
      if (!c.read_until(8, body)) return;  // SUBSCRIBE: packet id, properties (none), filters
      std::size_t n = 0;
      for (std::size_t at = 3; at + 2 < body.size(); at += 2 + (body[at] << 8 | body[at + 1]) + 1) ++n;
      filters_asked.push_back(n);
      Bytes suback = {body[0], body[1], 0x00};
      if (round == 0) suback.insert(suback.end(), {0x01, 0x87});  // the second: not authorized
      else suback.push_back(0x01);
      c.send_packet(0x90, suback);
    }
    std::uint8_t first;
    c.read(first, body, 3s);
  });
  mqtt::SessionOptions o = scripted("ingest");
  o.subscriptions = {"sensors/a", "sensors/b"};
  o.resubscribe_min = 200ms;
  SessionHarness h(broker.url(), o);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.subscribed == 1; }, 10s));
  EXPECT_EQ(h.granted, (std::vector<std::uint8_t>{0x01, 0x87}));
  ASSERT_TRUE(h.run_until([&] { return h.subscribed == 2; }, 10s)) << "the refused filter is asked for again";
  EXPECT_EQ(h.granted, (std::vector<std::uint8_t>{0x01, 0x01}));
  EXPECT_EQ(filters_asked, (std::vector<std::size_t>{2, 1}));
  EXPECT_EQ(h.session->counters().subscribe_refusals, 1u);
  h.session->stop();
}

TEST(BrokerSays, a_message_too_large_for_the_new_connections_limit_is_refused_not_resent) {
  std::atomic<int> resent{-1};  // the script's verdict: 1 resent, 0 not
  ScriptedBroker broker([&](ScriptedConnection& c, int index) {
    Bytes body;
    if (!c.read_until(1, body)) return;
    if (index == 0) {  // no limit: the message goes, and the connection breaks before its PUBACK
      c.send_packet(0x20, k_connack_v5_ok);
      c.read_until(3, body);
      return;
    }
    c.send_packet(0x20, {0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x40});  // Maximum Packet Size 64
    resent = c.read_until(3, body, 1s) ? 1 : 0;
  });
  mqtt::SessionOptions o = scripted();
  o.max_inflight = 4;
  SessionHarness h(broker.url(), o);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 1; }, 10s));
  const std::string payload(200, 'x');
  mqtt::OutMessage m;
  m.topic = "big";
  m.payload = {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()};
  m.qos = 1;
  ASSERT_EQ(h.session->publish(m, 7), mqtt::PublishStatus::queued);
  ASSERT_TRUE(h.run_until([&] { return h.connects == 2 && !h.published.empty(); }, 10s));
  EXPECT_EQ(h.published, std::vector<std::uint64_t>{7});
  EXPECT_EQ(h.publish_refused, 1) << "reported as refused: packet too large";
  ASSERT_TRUE(h.run_until([&] { return resent >= 0; }, 10s));
  EXPECT_EQ(resent, 0) << "a packet over the broker's Maximum Packet Size was sent";
  h.session->stop();
}

// A publish acknowledged out of order before a reconnect is passed over on the next
// connection; with a Receive Maximum of 1 the send cursor may still point at it when the
// PUBACK of the one before it empties the ring's head past it. Publishes made in that
// on_published then refill the ring, its storage included: they must still go in order,
// each once.
TEST(BrokerSays, publishes_acknowledged_before_a_reconnect_are_not_sent_ahead_of_newer_ones) {
  std::vector<std::string> topics;  // PUBLISHes on the second connection, in order
  std::atomic<bool> done{false};
  ScriptedBroker broker([&](ScriptedConnection& c, int index) {
    Bytes body;
    std::uint8_t first = 0;
    if (!c.read_until(1, body)) return;
    if (index == 0) {  // a and b go out; only b is acknowledged, then the connection breaks
      c.send_packet(0x20, k_connack_v5_ok);
      if (!c.read_until(3, body) || !c.read_until(3, body)) return;
      const std::size_t id_at = 2 + (body[0] << 8 | body[1]);
      c.send_packet(0x40, {body[id_at], body[id_at + 1]});
      return;
    }
    c.send_packet(0x20, {0x01, 0x00, 0x03, 0x21, 0x00, 0x01});  // session present, Receive Maximum 1
    while (topics.size() < 5 && c.read(first, body, 1s)) {
      if (first >> 4 != 3) continue;
      const std::size_t topic_len = body[0] << 8 | body[1];
      topics.emplace_back(reinterpret_cast<const char*>(body.data()) + 2, topic_len);
      c.send_packet(0x40, {body[2 + topic_len], body[3 + topic_len]});
    }
    done = true;
    c.read(first, body, 3s);  // stays until the client goes
  });
  mqtt::SessionOptions o = scripted();
  o.clean_start = false;
  o.max_inflight = 4;
  SessionHarness h(broker.url(), o);
  const auto publish = [&](const char* topic, std::uint64_t cookie) {
    mqtt::OutMessage m;
    m.topic = topic;
    m.qos = 1;
    EXPECT_EQ(h.session->publish(m, cookie), mqtt::PublishStatus::queued) << topic;
  };
  h.after_published = [&](std::uint64_t cookie) {
    if (cookie != 1) return;
    publish("c", 3), publish("d", 4), publish("e", 5), publish("f", 6);
  };
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 1; }, 10s));
  publish("a", 1), publish("b", 2);
  ASSERT_TRUE(h.run_until([&] { return done.load(); }, 15s));
  h.run_until([&] { return h.published.size() >= 6; }, 2s);  // the last PUBACK
  h.session->stop();
  EXPECT_EQ(topics, (std::vector<std::string>{"a", "c", "d", "e", "f"}));
  EXPECT_EQ(h.published, (std::vector<std::uint64_t>{2, 1, 3, 4, 5, 6}));
}

TEST(BrokerSays, a_keepalive_timeout_disconnect_carries_a_reason_a_client_may_send) {
  std::atomic<int> reason{-1};  // of the DISCONNECT the script read; 256: none came
  ScriptedBroker broker([&](ScriptedConnection& c, int index) {
    Bytes body;
    if (index > 0 || !c.read_until(1, body)) return;
    c.send_packet(0x20, k_connack_v5_ok);
    // PINGREQs go unanswered; then the client's DISCONNECT
    reason = c.read_until(14, body, 10s) && !body.empty() ? body[0] : 256;
  });
  mqtt::SessionOptions o = scripted();
  o.keepalive_s = 1;
  SessionHarness h(broker.url(), o);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 10s));
  EXPECT_EQ(h.disconnects[0], mqtt::Reason::keepalive_timeout);
  ASSERT_TRUE(h.run_until([&] { return reason >= 0; }, 10s));
  h.session->stop();
  EXPECT_EQ(reason, 0x80) << "0x8D (keepalive timeout) is for servers to send";
}

// A half-open link under load: the publish goes out, nothing ever comes back. The session
// gives the broker up 1.5 keepalives after it went silent (as a broker gives up a silent
// client), not a keepalive after its PINGREQ (2 keepalives after the publish). The chaos
// tests (host only) show the same for the daemon through a proxy and nftables.
TEST(BrokerSays, a_broker_silent_under_load_is_given_up_within_one_and_a_half_keepalives) {
  ScriptedBroker broker([&](ScriptedConnection& c, int index) {
    Bytes body;
    if (index > 0 || !c.read_until(1, body)) return;
    c.send_packet(0x20, k_connack_v5_ok);
    (void)c.read_until(14, body, 20s);  // reads the PUBLISH and the PINGREQ, answers nothing
  });
  mqtt::SessionOptions o = scripted();
  o.keepalive_s = 4;
  SessionHarness h(broker.url(), o);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return h.connects == 1; }, 10s));
  const auto silent_from = std::chrono::steady_clock::now();
  mqtt::OutMessage m;
  m.topic = "t";
  m.qos = 1;
  ASSERT_EQ(h.session->publish(m, 1), mqtt::PublishStatus::queued);
  ASSERT_TRUE(h.run_until([&] { return !h.disconnects.empty(); }, 20s));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - silent_from).count();
  h.session->stop();
  std::printf("[ measured ] a broker silent under load given up after %.2f s (keepalive 4 s)\n", took);
  EXPECT_EQ(h.disconnects[0], mqtt::Reason::keepalive_timeout);
  EXPECT_LE(took, 7.0) << "1.5 keepalives (6 s), not 2 (8 s)";
}

TEST(BrokerSays, a_broker_that_ends_every_session_at_once_is_retried_ever_more_slowly) {
  ScriptedBroker broker([](ScriptedConnection& c, int) {
    Bytes body;
    if (c.read_until(1, body)) c.send_packet(0x20, k_connack_v5_ok);  // then the connection closes
  });
  mqtt::SessionOptions o = scripted();
  o.reconnect_min = 50ms;
  o.reconnect_max = 5s;
  SessionHarness h(broker.url(), o);
  h.session->start();
  ASSERT_TRUE(h.run_until([&] { return broker.connections() >= 6; }, 30s));
  h.session->stop();
  const auto at = broker.accepted_at();
  const auto gap = [&](std::size_t i) { return std::chrono::duration<double, std::milli>(at[i] - at[i - 1]).count(); };
  std::printf("[ measured ] gaps between attempts: %.0f %.0f %.0f %.0f %.0f ms\n", gap(1), gap(2), gap(3), gap(4),
              gap(5));
  // The sixth attempt waits 400-800 ms (50 ms doubled four times, jitter in its upper half),
  // not 25-50 ms as a backoff that a CONNACK resets would.
  EXPECT_GE(gap(5), 300.0);
  EXPECT_GE(h.connects, 5);
}

}  // namespace
}  // namespace edgegw::test
