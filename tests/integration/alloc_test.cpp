// Proves the data path allocates nothing in steady state while every operator new in the
// process is counted (this binary replaces the global operator new): the receive path
// (100,000 messages from a real broker into pool slots), and the whole gateway pipeline.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "config/config.hpp"
#include "gateway/gateway.hpp"
#include "support/broker.hpp"
#include "support/clients.hpp"
#include "support/session_harness.hpp"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}

// The replacement pair below is malloc/free underneath, which GCC cannot see through.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  std::abort();  // out of memory in a test (the board builds have no exceptions to throw)
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace edgegw;
using namespace edgegw::test;

namespace {

// Receives messages without recording them (recording would allocate).
class CountingHandler : public mqtt::SessionHandler {
 public:
  explicit CountingHandler(mem::Pool& pool) : m_pool(pool) {}
  mqtt::Session* session = nullptr;
  std::uint64_t received = 0;
  bool subscribed = false;
  void on_connected(bool) override {}
  void on_disconnected(const mqtt::DisconnectInfo&) override {}
  void on_subscribed(mqtt::Bytes) override { subscribed = true; }
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override {
    ++received;
    m_pool.release(m.slot);
    if (m.qos) session->ack(token);
  }

 private:
  mem::Pool& m_pool;
};

void receive_100k(mqtt::Version version, int qos) {
  constexpr int k_messages = 100'000;
  constexpr int k_warmup = 1'000;
  Broker broker;
  TempDir dir;
  event::Loop loop;
  mem::Pool pool(256, 1024);
  auto transport = SessionHarness::make_transport(broker.url());
  CountingHandler handler(pool);
  mqtt::Session session(loop, transport, &pool, options(version, "alloc", {"load/#"}, static_cast<std::uint8_t>(qos)),
                        handler);
  handler.session = &session;
  session.start();
  auto run_until = [&](auto pred, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred() && std::chrono::steady_clock::now() < deadline) loop.run_once(std::chrono::milliseconds(20));
    return pred();
  };
  ASSERT_TRUE(run_until([&] { return handler.subscribed; }, std::chrono::seconds(10)));
  Process publisher = publish_lines(broker, dir, "load/x", k_messages, qos);
  ASSERT_TRUE(run_until([&] { return handler.received >= k_warmup; }, std::chrono::seconds(60)));
  const std::uint64_t before = g_allocations.load();
  const std::uint64_t received_before = handler.received;
  ASSERT_TRUE(run_until([&] { return handler.received >= k_messages; }, std::chrono::seconds(60)))
      << "received " << handler.received;
  const std::uint64_t allocations = g_allocations.load() - before;
  const std::uint64_t measured = handler.received - received_before;
  ::testing::Test::RecordProperty("messages_measured", std::to_string(measured));
  ::testing::Test::RecordProperty("allocations", std::to_string(allocations));
  std::printf("[ alloc ] %llu messages received (QoS %d), %llu heap allocations in steady state\n",
              static_cast<unsigned long long>(measured), qos, static_cast<unsigned long long>(allocations));
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(handler.received, static_cast<std::uint64_t>(k_messages));
  EXPECT_EQ(publisher.wait(std::chrono::seconds(30)), 0);
}

}  // namespace

TEST(Allocations, receiving_100k_qos1_messages_in_steady_state_makes_zero_heap_allocations) {
  receive_100k(mqtt::Version::v5, 1);
}

TEST(Allocations, receiving_100k_qos0_messages_over_mqtt311_makes_zero_heap_allocations) {
  receive_100k(mqtt::Version::v311, 0);
}

namespace {

template <typename Pred>
bool run_loop_until(event::Loop& loop, Pred pred, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred() && std::chrono::steady_clock::now() < deadline) loop.run_once(std::chrono::milliseconds(20));
  return pred();
}

// The config of an in-process gateway between `local` and `upstream`, with `more` TOML
// at its end; an empty gateway.id if it does not parse.
config::Config pipeline_config(const Broker& local, const Broker& upstream, const TempDir& dir,
                               const std::string& more = "") {
  const std::string toml = "[gateway]\nid = \"alloc\"\nstate_dir = \"" + dir.file("state") +
                           "\"\nlog_level = \"warning\"\n"
                           "[ingest]\nurl = \"" +
                           local.url() +
                           "\"\ntopics = [\"sensors/#\"]\n"
                           "[uplink]\nurl = \"" +
                           upstream.url() +
                           "\"\ntopic_prefix = \"up/\"\n"
                           "[pool]\nslots = 256\nslot_bytes = 1024\n"
                           "[spool]\nmax_bytes = \"64MiB\"\nsync = \"batch\"\ncommit_interval = \"0ms\"\n" +
                           more;
  std::vector<std::string> errors;
  auto cfg = config::parse(toml, "alloc.toml", errors);
  EXPECT_TRUE(cfg) << (errors.empty() ? "" : errors[0]);
  return cfg ? *cfg : config::Config{};
}

// Starts the gateway and runs the loop until ingest is subscribed and the uplink connected.
void start_connected(event::Loop& loop, gateway::Gateway& gw) {
  std::string error;
  ASSERT_TRUE(gw.start(error)) << error;
  ASSERT_TRUE(run_loop_until(
      loop, [&] { return gw.subscribed() && gw.uplink().state() == mqtt::SessionState::connected; },
      std::chrono::seconds(20)));
}

}  // namespace

// The whole pipeline in this process: local mosquitto -> ingest -> pool -> spool (group
// commit, fsync on) -> uplink (its topic made by an uplink rule's template) -> upstream
// mosquitto, at 1,000 messages/s. After a warm-up, forwarding allocates nothing, and the
// spool's fsync counter shows group commit at work.
TEST(Allocations, forwarding_at_1000_per_second_makes_zero_heap_allocations_and_batches_fsyncs) {
  constexpr long k_warmup = 1'000;
  constexpr long k_messages = 5'000;
  Broker local, upstream;
  TempDir dir;
  // every message through an uplink rule's template (routing.hpp)
  const config::Config cfg =
      pipeline_config(local, upstream, dir, "[[uplink.rule]]\nfilter = \"sensors/+\"\ntopic = \"r/{2}/{1}\"\n");
  ASSERT_FALSE(cfg.gateway.id.empty());
  event::Loop loop;
  gateway::Gateway gw(loop, cfg);
  ASSERT_NO_FATAL_FAILURE(start_connected(loop, gw));

  Process sensors = publish_stream(local, "sensors/rate", k_warmup + k_messages, 1000, 1);
  ASSERT_TRUE(run_loop_until(
      loop, [&] { return gw.counters().forwarded >= k_warmup; }, std::chrono::seconds(60)));
  const std::uint64_t allocations_before = g_allocations.load();
  const std::uint64_t forwarded_before = gw.counters().forwarded;
  const spool::Stats spool_before = gw.spool().stats();
  ASSERT_TRUE(run_loop_until(
      loop, [&] { return gw.counters().forwarded >= static_cast<std::uint64_t>(k_warmup + k_messages); },
      std::chrono::seconds(120)))
      << "forwarded " << gw.counters().forwarded;
  const std::uint64_t allocations = g_allocations.load() - allocations_before;
  const std::uint64_t forwarded = gw.counters().forwarded - forwarded_before;
  const spool::Stats& s = gw.spool().stats();
  const double fsyncs_per_message =
      static_cast<double>(s.fsyncs - spool_before.fsyncs) / static_cast<double>(forwarded);
  std::printf(
      "[ alloc ] %llu messages forwarded at 1000/s: %llu heap allocations; %llu fsyncs (%llu batches, "
      "%llu cursor writes) = %.3f fsyncs per message, %.1f messages per batch\n",
      static_cast<unsigned long long>(forwarded), static_cast<unsigned long long>(allocations),
      static_cast<unsigned long long>(s.fsyncs - spool_before.fsyncs),
      static_cast<unsigned long long>(s.commits - spool_before.commits),
      static_cast<unsigned long long>(s.cursor_writes - spool_before.cursor_writes), fsyncs_per_message,
      static_cast<double>(forwarded) / static_cast<double>(s.commits - spool_before.commits));
  ::testing::Test::RecordProperty("fsyncs_per_message", std::to_string(fsyncs_per_message));
  EXPECT_EQ(allocations, 0u);
  // One fsync per message would mean no group commit; every record is still durable
  // before its PUBACK (the spool unit tests and the crash tests hold that).
  EXPECT_LT(fsyncs_per_message, 0.5);
  EXPECT_EQ(gw.counters().received, static_cast<std::uint64_t>(k_warmup + k_messages));
  EXPECT_EQ(sensors.wait(std::chrono::seconds(30)), 0);
  gw.shutdown(std::chrono::seconds(2));
  run_loop_until(
      loop, [&] { return gw.stopped(); }, std::chrono::seconds(10));
  EXPECT_EQ(gw.exit_code(), 0);
}

// The downlink in this process: upstream mosquitto -> uplink session -> downlink pool ->
// ingest session -> local mosquitto (QoS 1, the upstream PUBACK after the local one), at
// 1,000 commands/s. After a warm-up it allocates nothing; its latency (upstream receipt
// -> local PUBACK) is printed.
TEST(Allocations, the_downlink_at_1000_per_second_makes_zero_heap_allocations) {
  constexpr long k_warmup = 1'000;
  constexpr long k_messages = 3'000;
  Broker local, upstream;
  TempDir dir;
  const config::Config cfg =
      pipeline_config(local, upstream, dir,
                      "[[downlink.rule]]\nfilter = \"cmd/alloc/#\"\nstrip = \"cmd/alloc/\"\nprefix = \"commands/\"\n");
  ASSERT_FALSE(cfg.gateway.id.empty());
  event::Loop loop;
  gateway::Gateway gw(loop, cfg);
  ASSERT_NO_FATAL_FAILURE(start_connected(loop, gw));
  // The SUBACK upstream: commands published before it would not be for our session.
  ASSERT_TRUE(run_loop_until(
      loop, [&] { return gw.uplink().subscription_states()[0] <= 2; }, std::chrono::seconds(20)));
  const observe::DownlinkStats& d = *gw.downlink().stats();

  Process commands = publish_stream(upstream, "cmd/alloc/valve", k_warmup + k_messages, 1000, 1);
  ASSERT_TRUE(run_loop_until(
      loop, [&] { return d.delivered >= k_warmup; }, std::chrono::seconds(60)));
  const std::uint64_t allocations_before = g_allocations.load();
  const std::uint64_t delivered_before = d.delivered;
  ASSERT_TRUE(run_loop_until(
      loop, [&] { return d.delivered >= static_cast<std::uint64_t>(k_warmup + k_messages); }, std::chrono::seconds(60)))
      << "delivered " << d.delivered;
  const std::uint64_t allocations = g_allocations.load() - allocations_before;
  std::printf(
      "[ alloc ] %llu commands down at 1000/s: %llu heap allocations; latency upstream receipt -> local PUBACK "
      "p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
      static_cast<unsigned long long>(d.delivered - delivered_before), static_cast<unsigned long long>(allocations),
      static_cast<double>(d.latency.percentile(0.5)) / 1e6, static_cast<double>(d.latency.percentile(0.99)) / 1e6,
      static_cast<double>(d.latency.max()) / 1e6);
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(d.received, static_cast<std::uint64_t>(k_warmup + k_messages));
  EXPECT_EQ(d.refused, 0u);
  EXPECT_EQ(commands.wait(std::chrono::seconds(30)), 0);
  gw.shutdown(std::chrono::seconds(2));
  run_loop_until(
      loop, [&] { return gw.stopped(); }, std::chrono::seconds(10));
  EXPECT_EQ(gw.exit_code(), 0);
}
