// The gateway's rules, fast: a Gateway on a ManualTime loop whose two sessions run over
// in-memory transports, the test playing both brokers (MQTT 3.1.1 packets), and a real
// spool with its sync thread in a temporary directory. What tests against real brokers
// show with sleeps and whole seconds of traffic, these show exactly in milliseconds.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "event/loop.hpp"
#include "gateway/age.hpp"
#include "gateway/clock.hpp"
#include "gateway/gateway.hpp"
#include "spool/disk.hpp"
#include "spool/spool.hpp"
#include "support/memory_transport.hpp"
#include "support/scripted_broker.hpp"
#include "support/temp_dir.hpp"

using namespace edgegw;
using namespace std::chrono_literals;

namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint8_t k_connect = 1, k_publish = 3, k_puback = 4, k_subscribe = 8, k_disconnect = 14;

// A disk whose fdatasync waits while the gate is closed: "not durable yet", for as long as
// the test wants.
class GatedDisk final : public spool::Disk {
 public:
  int fdatasync(int fd) override {
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, [&] { return m_open; });
    return spool::Disk::fdatasync(fd);
  }
  bool is_open() {
    std::lock_guard lock(m_mutex);
    return m_open;
  }
  void set_open(bool open) {
    std::lock_guard lock(m_mutex);
    m_open = open;
    m_changed.notify_all();
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_changed;
  bool m_open = true;
};

// One broker end: reads what the gateway's session wrote, answers.
struct Peer {
  test::MemoryTransport transport;
  struct Packet {
    std::uint8_t type;
    std::uint8_t flags;
    Bytes body;
  };
  // Every whole packet the session has written (they are in the socket already).
  std::vector<Packet> read_all() {
    std::uint8_t buf[4096];
    ssize_t n;
    while (transport.peer() >= 0 && (n = ::recv(transport.peer(), buf, sizeof buf, MSG_DONTWAIT)) > 0) {
      m_pending.insert(m_pending.end(), buf, buf + n);
    }
    std::vector<Packet> out;
    std::size_t at = 0;
    while (m_pending.size() - at >= 2) {
      std::size_t length = 0, i = at + 1;
      for (int shift = 0; i < m_pending.size(); shift += 7) {
        length |= static_cast<std::size_t>(m_pending[i] & 0x7f) << shift;
        if (!(m_pending[i++] & 0x80)) break;
      }
      if (m_pending.size() - i < length) break;
      const auto body = m_pending.begin() + static_cast<long>(i);
      out.push_back({static_cast<std::uint8_t>(m_pending[at] >> 4), static_cast<std::uint8_t>(m_pending[at] & 15),
                     Bytes(body, body + static_cast<long>(length))});
      at = i + length;
    }
    m_pending.erase(m_pending.begin(), m_pending.begin() + static_cast<long>(at));
    return out;
  }
  void reconnected() { m_pending.clear(); }
  void send(std::uint8_t first, const Bytes& body) {
    test::ScriptedConnection(transport.peer()).send_packet(first, body);
  }

 private:
  Bytes m_pending;  // bytes of a packet not yet whole
};

// The gateway's clocks, by hand: the boot clock follows the loop's ManualTime (plus what a
// reboot resets), the wall clock too, plus the steps a test makes (NTP, a wrong clock at
// boot).
class ManualClock final : public gateway::Clock {
 public:
  explicit ManualClock(const event::ManualTime& time) : m_time(time) {}
  std::uint64_t realtime_ns() override {
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(k_wall_start + loop_ns()) + m_wall_step);
  }
  std::uint64_t boottime_ns() override { return loop_ns() - m_boot_start; }
  bool wall_synced() override { return synced; }
  std::uint32_t boot() override { return boot_id; }

  // The wall clock moves by `by` (either way), the boot clock does not.
  void step_wall(std::chrono::nanoseconds by) { m_wall_step += by.count(); }
  // A new boot: the boot clock starts again from (about) 0, under another boot id.
  void reboot() {
    m_boot_start = loop_ns() - 1'000'000'000;
    ++boot_id;
  }
  bool synced = true;
  std::uint32_t boot_id = 7;

 private:
  static constexpr std::uint64_t k_wall_start = 1'800'000'000ull * 1'000'000'000ull;  // 2027
  std::uint64_t loop_ns() const { return gateway::steady_ns(m_time.now()); }
  const event::ManualTime& m_time;
  std::int64_t m_wall_step = 0;
  std::uint64_t m_boot_start = 0;
};

std::uint16_t id_at(const Bytes& b, std::size_t at) { return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]); }
Bytes id_bytes(std::uint16_t id) { return {static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id)}; }

// A QoS 1 PUBLISH body (3.1.1): topic, packet id, payload. (Byte by byte: GCC 12 at -O2
// warns, wrongly, about vector::insert from a string here.)
Bytes publish_body(const std::string& topic, std::uint16_t id, const std::string& payload) {
  Bytes b;
  auto put = [&](const std::string& text) {
    for (char ch : text) b.push_back(static_cast<std::uint8_t>(ch));
  };
  b.push_back(static_cast<std::uint8_t>(topic.size() >> 8));
  b.push_back(static_cast<std::uint8_t>(topic.size()));
  put(topic);
  b.push_back(static_cast<std::uint8_t>(id >> 8));
  b.push_back(static_cast<std::uint8_t>(id));
  put(payload);
  return b;
}
std::string payload_of(const Bytes& body) {
  const std::size_t topic = id_at(body, 0);
  return std::string(body.begin() + static_cast<long>(2 + topic + 2), body.end());
}

struct Rig {
  test::TempDir dir;
  config::Config config;
  event::ManualTime time;
  event::Loop loop{&time};
  ManualClock clock{time};
  GatedDisk disk;
  Peer local, upstream;
  std::unique_ptr<gateway::Gateway> gw;
  std::uint16_t next_id = 1;
  bool v5 = false;  // both sessions speak MQTT 5 (after use_v5())

  // `uplink_down`: the upstream broker refuses connections from the start.
  // `adjust`: changes to the parsed config before the gateway starts.
  explicit Rig(bool uplink_down = false, const std::string& extra_uplink = "", std::uint32_t slots = 16,
               const std::string& commit_interval = "0ms", const std::function<void(Rig&)>& adjust = {}) {
    upstream.transport.refuse = uplink_down;
    const std::string text =
        "[gateway]\nid = \"gw\"\nstate_dir = \"" + dir.path() +
        "\"\n[ingest]\nurl = \"mqtt://127.0.0.1:1\"\ntopics = [\"s/#\"]\nmqtt_version = \"3.1.1\"\n"
        "receive_maximum = 8\n[uplink]\nurl = \"mqtt://127.0.0.1:2\"\nmqtt_version = \"3.1.1\"\n"
        "max_inflight = 4\ntopic_prefix = \"up/\"\n" +
        extra_uplink + "[pool]\nslots = " + std::to_string(slots) +
        "\nslot_bytes = \"1KiB\"\n[spool]\nmax_bytes = \"1MiB\"\ncommit_interval = \"" + commit_interval + "\"\n";
    std::vector<std::string> errors;
    auto parsed = config::parse(text, "test.toml", errors);
    EXPECT_TRUE(parsed) << (errors.empty() ? "" : errors[0]);
    config = *parsed;
    if (adjust) adjust(*this);
    start();
  }
  // A new Gateway on the same state directory, as after a restart of the daemon.
  void start() {
    gw.reset();
    gw = std::make_unique<gateway::Gateway>(loop, config, &disk,
                                            gateway::Transports{&local.transport, &upstream.transport}, &clock);
    std::string error;
    EXPECT_TRUE(gw->start(error)) << error;
  }

  // Runs the loop until it has nothing left to do now, after moving the clock by `by`: a
  // sync the gate lets through is waited for (however slow the machine, an emulator
  // included), and what it releases is sent.
  void step(event::Duration by = 0s) {
    time.advance(by);
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    do {
      for (int i = 0; i < 8; ++i) loop.run_once(2ms);
    } while (gw->syncing() && disk.is_open() && std::chrono::steady_clock::now() < give_up);
  }
  // Both brokers accept the connection; the local one grants the subscription.
  void connect_local() {
    step(1s);  // past a reconnect backoff
    local.reconnected();
    auto in = local.read_all();
    ASSERT_FALSE(in.empty());
    ASSERT_EQ(in[0].type, k_connect);
    local.send(0x20, v5 ? Bytes{0x00, 0x00, 0x00} : Bytes{0x00, 0x00});
    step();
    in = local.read_all();
    ASSERT_EQ(in.size(), 1u);
    ASSERT_EQ(in[0].type, k_subscribe);
    local.send(0x90, v5 ? Bytes{in[0].body[0], in[0].body[1], 0x00, 0x01} : Bytes{in[0].body[0], in[0].body[1], 0x01});
    step();
  }
  void connect_upstream() {
    step(1s);
    upstream.reconnected();
    auto up = upstream.read_all();
    ASSERT_FALSE(up.empty());
    ASSERT_EQ(up[0].type, k_connect);
    upstream.send(0x20, v5 ? Bytes{0x00, 0x00, 0x00} : Bytes{0x00, 0x00});
    step();
  }
  // The local broker delivers `n` QoS 1 messages "m<first>".. ; returns their packet ids.
  std::vector<std::uint16_t> deliver(int n, int first = 0) {
    std::vector<std::uint16_t> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(next_id);
      local.send(0x32, publish_body("s/t", next_id++, "m" + std::to_string(first + i)));
    }
    return ids;
  }
  // Packet ids of the PUBACKs the gateway sent to the local broker.
  std::vector<std::uint16_t> local_acks() {
    std::vector<std::uint16_t> ids;
    for (const auto& p : local.read_all()) {
      if (p.type == k_puback) ids.push_back(id_at(p.body, 0));
    }
    return ids;
  }
  // Upstream: acknowledges every PUBLISH; returns their payloads in the order sent.
  std::vector<std::string> ack_upstream() {
    std::vector<std::string> got;
    for (const auto& p : upstream.read_all()) {
      if (p.type != k_publish) continue;
      got.push_back(payload_of(p.body));
      const std::size_t topic = id_at(p.body, 0);
      upstream.send(0x40, id_bytes(id_at(p.body, 2 + topic)));
    }
    return got;
  }
};

}  // namespace

TEST(Pipeline, a_local_puback_waits_for_durability_and_upstream_gets_only_durable_records) {
  Rig rig;
  rig.connect_upstream();
  rig.connect_local();
  rig.disk.set_open(false);  // the next fdatasync does not return
  const auto ids = rig.deliver(3);
  rig.step();
  EXPECT_TRUE(rig.local_acks().empty()) << "acknowledged before the record was durable";
  EXPECT_TRUE(rig.ack_upstream().empty()) << "sent upstream before it was durable";
  rig.disk.set_open(true);
  rig.step();
  EXPECT_EQ(rig.local_acks(), ids) << "acknowledged locally in arrival order once durable";
  EXPECT_EQ(rig.ack_upstream(), (std::vector<std::string>{"m0", "m1", "m2"}));
  rig.step();
  EXPECT_EQ(rig.gw->counters().forwarded, 3u);
  EXPECT_EQ(rig.gw->pool().in_use(), 0u) << "a forwarded message kept its slot";
}

// One sync makes a batch durable: its local PUBACKs, and the records it lets go upstream,
// are composed in the loop iteration that learns of it and leave in one write per
// connection (not one send per packet).
TEST(Pipeline, what_one_sync_releases_leaves_in_one_write_per_connection) {
  Rig rig;
  rig.connect_upstream();
  rig.connect_local();
  rig.disk.set_open(false);
  const auto ids = rig.deliver(8);  // the ingest window
  rig.step();
  ASSERT_TRUE(rig.local_acks().empty());
  const int local_before = rig.local.transport.writes(), upstream_before = rig.upstream.transport.writes();
  rig.disk.set_open(true);
  rig.step();
  EXPECT_EQ(rig.local_acks(), ids);
  EXPECT_EQ(rig.ack_upstream().size(), 4u) << "the uplink's window (max_inflight 4)";
  EXPECT_EQ(rig.local.transport.writes() - local_before, 1) << "8 PUBACKs to the local broker";
  EXPECT_EQ(rig.upstream.transport.writes() - upstream_before, 1) << "4 PUBLISHes upstream";
}

// spool.commit_interval is the least time between the starts of two syncs: what arrives
// during a sync waits for it to pass (on the loop's clock), then goes at once; with "0ms"
// it goes as soon as the disk is free.
TEST(Pipeline, commit_interval_spaces_the_starts_of_syncs) {
  for (const char* interval : {"10ms", "0ms"}) {
    SCOPED_TRACE(interval);
    Rig rig(true, "", 16, interval);
    rig.connect_local();
    rig.disk.set_open(false);
    const auto first = rig.deliver(1);
    rig.step();  // the first sync starts now (t0): the disk was idle for long
    ASSERT_TRUE(rig.gw->syncing());
    const auto second = rig.deliver(1, 1);
    rig.step();
    const std::uint64_t commits = rig.gw->spool().stats().commits;
    rig.disk.set_open(true);
    rig.step();  // the first sync ends; the clock still says t0
    const auto acks = rig.local_acks();
    if (std::string(interval) == "0ms") {
      EXPECT_EQ(rig.gw->spool().stats().commits, commits + 2) << "the second batch waited for nothing";
      EXPECT_EQ(acks, (std::vector<std::uint16_t>{first[0], second[0]}));
      continue;
    }
    EXPECT_EQ(acks, first);
    EXPECT_EQ(rig.gw->spool().stats().commits, commits + 1);
    rig.step(10ms - 1ns);
    EXPECT_EQ(rig.gw->spool().stats().commits, commits + 1) << "a second sync started before t0 + 10 ms";
    EXPECT_TRUE(rig.local_acks().empty());
    rig.step(1ns);
    EXPECT_EQ(rig.gw->spool().stats().commits, commits + 2) << "no second sync at t0 + 10 ms";
    EXPECT_EQ(rig.local_acks(), second);
  }
}

// An outage under load: a backlog far larger than the pool goes through the spool with
// the pool flat, and comes out whole and in order when the uplink is back.
TEST(Pipeline, an_uplink_outage_loses_nothing_and_holds_no_slot_for_the_backlog) {
  Rig rig(true);
  rig.connect_local();
  constexpr int k_count = 200;  // 12 x the pool's 16 slots
  std::vector<std::uint16_t> acked;
  std::uint32_t most_in_use = 0;
  for (int sent = 0; sent < k_count; sent += 8) {
    rig.deliver(8, sent);
    rig.step(100ms);
    for (auto id : rig.local_acks()) acked.push_back(id);
    most_in_use = std::max(most_in_use, rig.gw->pool().in_use());
  }
  ASSERT_EQ(acked.size(), std::size_t{k_count}) << "every message durable and acknowledged during the outage";
  EXPECT_LE(most_in_use, 8u) << "slots held for the backlog instead of given back";
  EXPECT_EQ(rig.gw->pool().in_use(), 0u);

  rig.upstream.transport.refuse = false;
  rig.step(60s);  // past any reconnect backoff
  rig.connect_upstream();
  std::vector<std::string> got;
  for (int i = 0; i < 1000 && got.size() < std::size_t{k_count}; ++i) {
    for (auto& p : rig.ack_upstream()) got.push_back(p);
    rig.step(10ms);
  }
  ASSERT_EQ(got.size(), std::size_t{k_count});
  for (int i = 0; i < k_count; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], "m" + std::to_string(i));
  EXPECT_EQ(rig.gw->counters().replayed, std::uint64_t{k_count}) << "the backlog should come from the spool";
}

// The backlog drains at uplink.drain_rate on the loop's clock: the bucket's capacity (the
// in-flight window) at once, then drain_rate per second of (manual) time.
TEST(Pipeline, the_backlog_drains_at_the_configured_rate) {
  Rig rig(true, "drain_rate = 50\n");
  rig.connect_local();
  for (int sent = 0; sent < 200; sent += 8) {
    rig.deliver(8, sent);
    rig.step(10ms);
    rig.local_acks();
  }
  rig.upstream.transport.refuse = false;
  rig.step(60s);
  rig.connect_upstream();
  std::size_t got = rig.ack_upstream().size();
  for (int i = 0; i < 100; ++i) {  // 2 s of manual time, in 20 ms steps
    rig.step(20ms);
    got += rig.ack_upstream().size();
  }
  std::printf("[ measured ] %zu of 200 sent in 2 s at drain_rate 50 (window 4)\n", got);
  EXPECT_GE(got, 4u + 2 * 50 - 2);
  EXPECT_LE(got, 4u + 2 * 50 + 2);
}

// shutdown(): what was received is made durable and acknowledged locally, both sessions
// disconnect, and the restart sends what had not gone upstream yet, once.
TEST(Pipeline, shutdown_makes_what_was_received_durable_acknowledges_it_and_a_restart_sends_it) {
  Rig rig;
  rig.connect_upstream();
  rig.connect_local();
  rig.disk.set_open(false);  // received, not durable yet, when the stop comes
  const auto ids = rig.deliver(5);
  rig.step();
  rig.gw->shutdown(10s);
  rig.disk.set_open(true);
  for (int i = 0; i < 50 && !rig.gw->stopped(); ++i) rig.step(10ms);
  ASSERT_TRUE(rig.gw->stopped());
  EXPECT_EQ(rig.gw->exit_code(), 0);
  std::vector<std::uint16_t> acked;
  bool local_disconnect = false;
  for (const auto& p : rig.local.read_all()) {
    if (p.type == k_puback) acked.push_back(id_at(p.body, 0));
    local_disconnect |= p.type == k_disconnect;
  }
  EXPECT_EQ(acked, ids) << "every message made durable and acknowledged before the stop";
  EXPECT_TRUE(local_disconnect);

  rig.start();
  rig.connect_upstream();
  std::vector<std::string> up;
  for (int i = 0; i < 20; ++i) {
    for (auto& p : rig.ack_upstream()) up.push_back(p);
    rig.step(10ms);
  }
  EXPECT_EQ(up, (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4"}));
}

// ---- message age (gateway/age.hpp, docs/SPOOL.md "Message age") ----------------------

namespace {

// A Rig with the uplink down and spool.max_age (0: none); `v5`: both sessions MQTT 5.
struct AgeRig : Rig {
  explicit AgeRig(std::chrono::nanoseconds max_age, bool mqtt5 = false)
      : Rig(true, "", 16, "0ms", [&](Rig& rig) {
          rig.config.spool.max_age = max_age;
          if (!mqtt5) return;
          rig.v5 = true;
          rig.config.ingest.mqtt_version = rig.config.uplink.mqtt_version = config::MqttVersion::v5;
        }) {}
  // A stop, then a new Gateway on the same directory (and clock), both brokers back.
  void restart() {
    gw->shutdown(1s);
    for (int i = 0; i < 200 && !gw->stopped(); ++i) step(10ms);
    ASSERT_TRUE(gw->stopped());
    start();
    connect_local();
  }
};

// An outage of the uplink: what is delivered now is durable and given back to the spool
// (replayed, with its stamp read back from disk, once the uplink returns).
void deliver_during_outage(Rig& rig, int n, int first) {
  rig.deliver(n, first);
  rig.step(10ms);
  ASSERT_EQ(rig.local_acks().size(), static_cast<std::size_t>(n));
}

// The uplink comes back; every PUBLISH is acknowledged; returns their payloads.
std::vector<std::string> uplink_back(Rig& rig) {
  rig.upstream.transport.refuse = false;
  rig.step(60s);  // past any reconnect backoff
  rig.connect_upstream();
  std::vector<std::string> got;
  for (int i = 0; i < 20; ++i) {
    for (auto& p : rig.ack_upstream()) got.push_back(p);
    rig.step(10ms);
  }
  return got;
}

// An MQTT 5 QoS 1 PUBLISH body with a Message Expiry Interval (none if expiry_s < 0).
Bytes publish_v5(const std::string& topic, std::uint16_t id, const std::string& payload, long expiry_s) {
  Bytes b{static_cast<std::uint8_t>(topic.size() >> 8), static_cast<std::uint8_t>(topic.size())};
  for (char ch : topic) b.push_back(static_cast<std::uint8_t>(ch));
  b.push_back(static_cast<std::uint8_t>(id >> 8));
  b.push_back(static_cast<std::uint8_t>(id));
  if (expiry_s < 0) {
    b.push_back(0);
  } else {
    const auto e = static_cast<std::uint32_t>(expiry_s);
    for (std::uint8_t x : {std::uint8_t{5}, std::uint8_t{0x02}, std::uint8_t(e >> 24), std::uint8_t(e >> 16),
                           std::uint8_t(e >> 8), std::uint8_t(e)}) {
      b.push_back(x);
    }
  }
  for (char ch : payload) b.push_back(static_cast<std::uint8_t>(ch));
  return b;
}

// What an MQTT 5 PUBLISH upstream carried: its payload and Message Expiry Interval (-1: none).
struct UpV5 {
  std::string payload;
  long expiry_s;
  bool operator==(const UpV5&) const = default;
};
std::ostream& operator<<(std::ostream& o, const UpV5& u) { return o << u.payload << "/" << u.expiry_s; }

// Upstream (MQTT 5): acknowledges every PUBLISH; returns what they carried.
std::vector<UpV5> ack_upstream_v5(Rig& rig) {
  std::vector<UpV5> got;
  for (const auto& p : rig.upstream.read_all()) {
    if (p.type != k_publish) continue;
    std::size_t at = 2 + id_at(p.body, 0);
    const std::uint16_t id = id_at(p.body, at);
    at += 2;
    std::size_t props = 0;
    for (int shift = 0;; shift += 7) {
      props |= static_cast<std::size_t>(p.body[at] & 0x7f) << shift;
      if (!(p.body[at++] & 0x80)) break;
    }
    long expiry = -1;
    for (std::size_t i = at; i < at + props;) {  // the gateway's properties: expiry, then user properties
      if (p.body[i] == 0x02) {
        expiry = static_cast<long>(std::uint32_t(p.body[i + 1]) << 24 | std::uint32_t(p.body[i + 2]) << 16 |
                                   std::uint32_t(p.body[i + 3]) << 8 | p.body[i + 4]);
        i += 5;
      } else if (p.body[i] == 0x26) {  // user property: two strings
        i += 1;
        for (int k = 0; k < 2; ++k) i += 2 + id_at(p.body, i);
      } else {
        ADD_FAILURE() << "unexpected property " << int(p.body[i]);
        break;
      }
    }
    got.push_back({std::string(p.body.begin() + static_cast<long>(at + props), p.body.end()), expiry});
    rig.upstream.send(0x40, id_bytes(id));
  }
  return got;
}

}  // namespace

// spool.max_age: a record older than it when it would be sent is dropped in its place,
// counted and never sent; a younger one behind it goes. Records come back from the spool
// (the outage gave their slots back), so their stamps made the trip to disk and back.
TEST(PipelineAge, max_age_drops_what_is_too_old_when_it_would_be_sent_and_counts_it) {
  AgeRig rig(1h);
  rig.connect_local();
  deliver_during_outage(rig, 2, 0);  // m0, m1
  rig.step(30min);
  deliver_during_outage(rig, 1, 2);  // m2: 30 min younger
  rig.step(29min);                   // m0, m1: 59 min + the 1 min uplink_back() waits
  rig.step(1s);
  EXPECT_EQ(uplink_back(rig), std::vector<std::string>{"m2"});
  EXPECT_EQ(rig.gw->counters().dropped_expired, 2u);
  EXPECT_EQ(rig.gw->counters().dropped_expiry_interval, 0u);
  EXPECT_EQ(rig.gw->counters().forwarded, 3u) << "done with: one sent, two dropped";
  EXPECT_EQ(rig.gw->spool().backlog(), 0u) << "a dropped record is released from the spool like a sent one";
  observe::Snapshot snap;
  rig.gw->snapshot(snap);
  EXPECT_EQ(snap.dropped_expired, 2u) << "in status and metrics";
}

// Younger than max_age, or no max_age at all (the default): nothing is dropped.
TEST(PipelineAge, nothing_is_dropped_younger_than_max_age_or_without_one) {
  for (auto max_age : {std::chrono::nanoseconds(2h), std::chrono::nanoseconds(0)}) {
    AgeRig rig(max_age);
    rig.connect_local();
    deliver_during_outage(rig, 2, 0);
    rig.step(max_age.count() ? 1h : 24h * 30);
    EXPECT_EQ(uplink_back(rig), (std::vector<std::string>{"m0", "m1"}));
    EXPECT_EQ(rig.gw->counters().dropped_expired, 0u);
  }
}

// (a) The wall clock jumps forward by days after records were written, in the same boot
// (NTP correcting a Pi that booted with a clock days behind): the records are as fresh as
// the boot clock says, and go.
TEST(PipelineAge, a_wall_clock_jump_forward_by_days_drops_no_fresh_record) {
  AgeRig rig(1h);
  rig.connect_local();
  deliver_during_outage(rig, 3, 0);
  rig.clock.step_wall(72h);
  rig.step(10min);
  EXPECT_EQ(uplink_back(rig), (std::vector<std::string>{"m0", "m1", "m2"}));
  EXPECT_EQ(rig.gw->counters().dropped_expired, 0u);
}

// (b) The wall clock jumps backward by days (a clock that ran days ahead, corrected):
// records still age on the boot clock and are dropped once older than max_age; one
// received after the jump is fresh and goes.
TEST(PipelineAge, a_wall_clock_jump_backward_by_days_still_drops_stale_records) {
  AgeRig rig(1h);
  rig.connect_local();
  deliver_during_outage(rig, 2, 0);
  rig.clock.step_wall(-72h);
  rig.step(2h);
  deliver_during_outage(rig, 1, 2);
  EXPECT_EQ(uplink_back(rig), std::vector<std::string>{"m2"});
  EXPECT_EQ(rig.gw->counters().dropped_expired, 2u);
}

// Records of an earlier boot: the boot clock started again, so their age is the longer of
// the time this process has held them and, if the wall clock was synchronized both when
// they were received and now, the wall-clock difference.
TEST(PipelineAge, a_record_of_an_earlier_boot_is_aged_by_the_time_held_and_a_synchronized_wall_clock) {
  {  // received with an unsynchronized wall clock (a Pi offline since boot), rebooted, then
     // NTP steps the clock 30 days forward: its wall stamp is not trusted, it goes
    AgeRig rig(1h);
    rig.clock.synced = false;
    rig.connect_local();
    deliver_during_outage(rig, 1, 0);
    rig.clock.reboot();
    rig.clock.synced = true;
    rig.clock.step_wall(30 * 24h);
    rig.restart();
    EXPECT_EQ(uplink_back(rig), std::vector<std::string>{"m0"});
    EXPECT_EQ(rig.gw->counters().dropped_expired, 0u);
  }
  {  // the same, but the wall clock went back (now before its stamp): never kept for ever,
     // it is dropped once this process has held it for max_age
    AgeRig rig(1h);
    rig.connect_local();
    deliver_during_outage(rig, 1, 0);
    rig.clock.reboot();
    rig.clock.step_wall(-30 * 24h);
    rig.restart();
    rig.step(1h);
    EXPECT_EQ(uplink_back(rig), std::vector<std::string>{});
    EXPECT_EQ(rig.gw->counters().dropped_expired, 1u);
  }
  {  // synchronized both times, 2 h between them on the wall clock: dropped at once
    AgeRig rig(1h);
    rig.connect_local();
    deliver_during_outage(rig, 1, 0);
    rig.clock.reboot();
    rig.clock.step_wall(2h);
    rig.restart();
    EXPECT_EQ(uplink_back(rig), std::vector<std::string>{});
    EXPECT_EQ(rig.gw->counters().dropped_expired, 1u);
  }
}

// MQTT 5 Message Expiry Interval: sent upstream less the whole seconds spent in edgegw;
// one whose interval has passed when it would be sent is dropped and counted.
TEST(PipelineAge, a_message_expiry_interval_is_sent_reduced_by_the_time_held_or_the_message_dropped) {
  AgeRig rig(0s, true);
  rig.connect_local();
  auto deliver = [&](const std::string& payload, long expiry_s) {
    rig.local.send(0x32, publish_v5("s/t", rig.next_id++, payload, expiry_s));
  };
  deliver("short", 70);
  deliver("long", 1000);
  deliver("none", -1);
  rig.step(10ms);
  ASSERT_EQ(rig.local_acks().size(), 3u);
  const auto received = rig.time.now();
  rig.step(10s + 500ms);
  rig.upstream.transport.refuse = false;
  rig.step(60s);
  rig.connect_upstream();
  const auto held_s = std::chrono::duration_cast<std::chrono::seconds>(rig.time.now() - received).count();
  ASSERT_EQ(held_s, 71) << "10.5 s + 60 s + connect_upstream()'s 1 s, and the steps' milliseconds";
  std::vector<UpV5> got;
  for (int i = 0; i < 5; ++i) {
    for (auto& u : ack_upstream_v5(rig)) got.push_back(u);
    rig.step(10ms);
  }
  EXPECT_EQ(got, (std::vector<UpV5>{{"long", 1000 - 71}, {"none", -1}}));
  EXPECT_EQ(rig.gw->counters().dropped_expired, 1u);
  EXPECT_EQ(rig.gw->counters().dropped_expiry_interval, 1u);

  // Straight through (the uplink up): the interval goes as received.
  deliver("live", 30);
  rig.step(10ms);
  rig.step(10ms);
  EXPECT_EQ(ack_upstream_v5(rig), (std::vector<UpV5>{{"live", 30}}));
}

// A record an edgegw before spool version 3 wrote (no extension: no boot clock, no boot) is
// aged like one of an earlier boot, its wall-clock stamp taken as synchronized: dropped if
// the wall clock says it is older than max_age; one whose stamp is in the future (the
// clock went back since) is not kept for ever, only held from the start for max_age.
TEST(PipelineAge, a_record_written_before_version_3_is_aged_by_the_wall_clock_and_the_time_held) {
  AgeRig rig(1h);
  rig.connect_local();
  rig.gw->shutdown(1s);
  for (int i = 0; i < 200 && !rig.gw->stopped(); ++i) rig.step(10ms);
  ASSERT_TRUE(rig.gw->stopped());
  rig.gw.reset();  // the spool's lock goes with it
  {
    spool::Options o;
    o.dir = rig.config.gateway.state_dir + "/spool";
    o.max_bytes = rig.config.spool.max_bytes;
    o.sync = false;
    spool::Spool s(o);
    std::string error;
    ASSERT_TRUE(s.open(error)) << error;
    const std::uint64_t now = rig.clock.realtime_ns();
    const std::uint64_t hour = 3600ull * 1'000'000'000ull;
    std::uint64_t seq = 0;
    auto put = [&](const char* payload, std::uint64_t received_ns) {
      const std::string p(payload);
      ASSERT_EQ(s.append("s/t", std::span(reinterpret_cast<const std::uint8_t*>(p.data()), p.size()), 1, false,
                         received_ns, seq),
                spool::Append::ok);
    };
    put("stale", now - 2 * hour);
    put("fresh", now - hour / 6);
    put("future", now + 30 * 24 * hour);
    ASSERT_TRUE(s.commit());
  }
  rig.start();
  rig.connect_local();
  EXPECT_EQ(uplink_back(rig), (std::vector<std::string>{"fresh", "future"}));
  EXPECT_EQ(rig.gw->counters().dropped_expired, 1u);
}
