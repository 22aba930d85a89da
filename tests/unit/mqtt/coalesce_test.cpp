// One write per connection per loop iteration: the acknowledgements and publishes a
// session is given during one iteration of the loop (from I/O handlers, deferred calls,
// timers) are composed into its send buffer and leave in one write at the end of it.
// A ManualTime loop over an in-memory transport that counts write calls.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "event/loop.hpp"
#include "mem/pool.hpp"
#include "mqtt/session.hpp"
#include "support/memory_transport.hpp"
#include "support/scripted_broker.hpp"

using namespace edgegw;
using namespace std::chrono_literals;

namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint8_t k_connect = 1, k_publish = 3, k_puback = 4;

// Holds the tokens of the messages it receives: the test acknowledges them.
struct Holder final : mqtt::SessionHandler {
  explicit Holder(mem::Pool& slots) : pool(slots) {}
  void on_connected(bool) override { ++connects; }
  void on_disconnected(const mqtt::DisconnectInfo&) override {}
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override {
    pool.release(m.slot);
    tokens.push_back(token);
  }
  mem::Pool& pool;
  int connects = 0;
  std::vector<mqtt::AckToken> tokens;
};

// A QoS 1 PUBLISH body (3.1.1): topic, packet id, payload.
Bytes publish_body(const std::string& topic, std::uint16_t id, const std::string& payload) {
  Bytes b{static_cast<std::uint8_t>(topic.size() >> 8), static_cast<std::uint8_t>(topic.size())};
  for (char c : topic) b.push_back(static_cast<std::uint8_t>(c));
  b.push_back(static_cast<std::uint8_t>(id >> 8));
  b.push_back(static_cast<std::uint8_t>(id));
  for (char c : payload) b.push_back(static_cast<std::uint8_t>(c));
  return b;
}

// Acknowledges every held message, as the gateway does from its durability handler.
struct AckAll final : event::Deferred {
  AckAll(mqtt::Session& to, Holder& from) : session(to), holder(from) {}
  void run_deferred() override {
    for (auto t : holder.tokens) session.ack(t);
  }
  mqtt::Session& session;
  Holder& holder;
};

// Publishes `count` QoS 1 messages from a timer, as the uplink's drain does.
struct PublishSome final : event::Timer::Handler {
  PublishSome(mqtt::Session& to, int n) : session(to), count(n) {}
  void on_timer(event::Timer&) override {
    for (int i = 0; i < count; ++i) {
      mqtt::OutMessage m;
      m.topic = "out";
      m.payload = mqtt::Bytes(reinterpret_cast<const std::uint8_t*>(k_payload), sizeof k_payload - 1);
      ASSERT_EQ(session.publish(m, static_cast<std::uint64_t>(i)), mqtt::PublishStatus::queued);
    }
  }
  static constexpr char k_payload[] = "reading";
  mqtt::Session& session;
  int count;
};

}  // namespace

TEST(Coalesce, acks_and_publishes_made_in_one_loop_iteration_leave_in_one_write) {
  constexpr int k_acks = 10, k_publishes = 5;
  event::ManualTime time;
  event::Loop loop(&time);
  test::MemoryTransport transport;
  mem::Pool pool(16, 1024);
  Holder holder(pool);
  mqtt::SessionOptions o;
  o.version = mqtt::Version::v311;
  o.client_id = "co";
  o.random_seed = 1;
  mqtt::Session session(loop, transport, &pool, o, holder);
  auto step = [&] {
    for (int i = 0; i < 3; ++i) loop.run_once(0s);
  };

  session.start();
  step();
  test::ScriptedConnection peer(transport.peer());
  std::uint8_t first = 0;
  Bytes body;
  ASSERT_TRUE(peer.read(first, body));
  ASSERT_EQ(first >> 4, k_connect);
  peer.write({0x20, 0x02, 0x00, 0x00});  // CONNACK, accepted
  step();
  ASSERT_EQ(holder.connects, 1);
  for (std::uint16_t id = 1; id <= k_acks; ++id) peer.send_packet(0x32, publish_body("in", id, "m"));
  for (int i = 0; i < 20 && holder.tokens.size() < std::size_t{k_acks}; ++i) loop.run_once(1ms);
  ASSERT_EQ(holder.tokens.size(), std::size_t{k_acks});
  EXPECT_FALSE(peer.read(first, body, 20ms)) << "a PUBACK before ack()";

  // One iteration: the acks from a deferred call, the publishes from a timer.
  AckAll ack_all(session, holder);
  PublishSome publish_some(session, k_publishes);
  event::Timer timer(loop, publish_some);
  const int writes_before = transport.writes();
  loop.defer(ack_all);
  timer.arm_in(0s);
  loop.run_once(0s);
  EXPECT_EQ(transport.writes() - writes_before, 1) << k_acks << " PUBACKs and " << k_publishes << " PUBLISHes";

  std::vector<std::uint8_t> types;
  std::vector<std::uint16_t> acked;
  while (peer.read(first, body, 20ms)) {
    types.push_back(static_cast<std::uint8_t>(first >> 4));
    if (first >> 4 == k_puback) acked.push_back(static_cast<std::uint16_t>(body[0] << 8 | body[1]));
  }
  std::vector<std::uint8_t> expected(k_acks, k_puback);
  expected.insert(expected.end(), k_publishes, k_publish);
  EXPECT_EQ(types, expected) << "the acks first, then the publishes";
  EXPECT_EQ(acked, (std::vector<std::uint16_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})) << "in arrival order";
  step();
  EXPECT_EQ(transport.writes() - writes_before, 1) << "an extra write after the iteration";
}
