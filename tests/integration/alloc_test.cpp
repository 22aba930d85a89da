// Proves the receive path allocates nothing in steady state: 100,000 messages from a real
// broker are read into pool slots, acknowledged and released while every operator new in
// the process is counted. (This binary replaces the global operator new.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

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
  throw std::bad_alloc();
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
