// The keepalive rule on a hand-moved clock (ManualTime) over an in-memory transport: the
// exact instants, which tests against a real broker can only bracket with sleeps.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "event/loop.hpp"
#include "mqtt/session.hpp"
#include "support/memory_transport.hpp"
#include "support/scripted_broker.hpp"

using namespace edgegw;
using namespace std::chrono_literals;

namespace {

constexpr std::uint8_t k_connect = 1, k_pingreq = 12;

struct Recorder final : mqtt::SessionHandler {
  int connects = 0;
  std::vector<mqtt::Reason> disconnects;
  void on_connected(bool) override { ++connects; }
  void on_disconnected(const mqtt::DisconnectInfo& info) override { disconnects.push_back(info.reason); }
  void on_message(const mqtt::Message&, mqtt::AckToken) override {}
};

// A 3.1.1 uplink session with a 4 s keepalive, connected at the clock's start.
struct KeepaliveRig {
  event::ManualTime time;
  event::Loop loop{&time};
  test::MemoryTransport transport;
  Recorder recorder;
  mqtt::Session session{loop, transport, nullptr, options(), recorder};

  static mqtt::SessionOptions options() {
    mqtt::SessionOptions o;
    o.version = mqtt::Version::v311;
    o.client_id = "ka";
    o.keepalive_s = 4;
    o.random_seed = 1;
    return o;
  }
  // What the session wrote since the last call: the packet types, in order.
  std::vector<std::uint8_t> sent() {
    std::vector<std::uint8_t> types;
    test::ScriptedConnection peer(transport.peer());
    std::uint8_t first;
    std::vector<std::uint8_t> body;
    // The bytes are written already: the wait only covers what is not there.
    while (peer.read(first, body, 20ms)) types.push_back(static_cast<std::uint8_t>(first >> 4));
    return types;
  }
  void reply(std::vector<std::uint8_t> packet) { test::ScriptedConnection(transport.peer()).write(packet); }
  void step(event::Duration by = 0s) {
    time.advance(by);
    for (int i = 0; i < 3; ++i) loop.run_once(0s);  // read, then what it deferred, then the flush
  }
  void connect() {
    session.start();
    step();
    ASSERT_EQ(sent(), std::vector<std::uint8_t>{k_connect});
    reply({0x20, 0x02, 0x00, 0x00});  // CONNACK, accepted
    step();
    ASSERT_EQ(recorder.connects, 1);
  }
};

}  // namespace

TEST(Keepalive, pings_after_a_keepalive_of_silence_and_gives_up_at_one_and_a_half) {
  KeepaliveRig rig;
  rig.connect();
  rig.step(4s - 1ms);
  EXPECT_TRUE(rig.sent().empty()) << "a PINGREQ before the keepalive ran out";
  rig.step(1ms);
  EXPECT_EQ(rig.sent(), std::vector<std::uint8_t>{k_pingreq});
  rig.step(2s - 1ms);  // 6 s - 1 ms since the broker was last heard
  EXPECT_TRUE(rig.recorder.disconnects.empty()) << "gave up before 1.5 keepalives of silence";
  rig.step(1ms);
  ASSERT_EQ(rig.recorder.disconnects.size(), 1u);
  EXPECT_EQ(rig.recorder.disconnects[0], mqtt::Reason::keepalive_timeout);
  EXPECT_EQ(rig.session.counters().pings_sent, 1u);
}

TEST(Keepalive, an_answered_ping_keeps_the_session_and_the_next_comes_a_keepalive_later) {
  KeepaliveRig rig;
  rig.connect();
  rig.step(4s);
  ASSERT_EQ(rig.sent(), std::vector<std::uint8_t>{k_pingreq});
  rig.step(1s);
  rig.reply({0xd0, 0x00});  // PINGRESP
  rig.step();
  rig.step(3s - 1ms);  // 7 s - 1 ms: a keepalive after the first PINGREQ, less 1 ms
  EXPECT_TRUE(rig.sent().empty());
  rig.step(1ms);
  EXPECT_EQ(rig.sent(), std::vector<std::uint8_t>{k_pingreq});
  // Unanswered now. The broker was last heard at 5 s, so the deadline is 5 + 6 = 11 s,
  // later than the PINGREQ's own 8 + 2 = 10 s.
  rig.step(3s - 1ms);
  EXPECT_TRUE(rig.recorder.disconnects.empty()) << "gave up before 1.5 keepalives since the broker was heard";
  rig.step(1ms);
  ASSERT_EQ(rig.recorder.disconnects.size(), 1u);
  EXPECT_EQ(rig.recorder.disconnects[0], mqtt::Reason::keepalive_timeout);
  EXPECT_EQ(rig.session.counters().pongs_received, 1u);
  rig.step(1s);  // the reconnect backoff (reconnect_min 200 ms, jittered)
  EXPECT_GE(rig.transport.opens(), 2) << "no reconnect after the keepalive timeout";
}
