// Drives an mqtt::Session in a test: records every callback and runs the loop until a
// condition holds (or a timeout, which fails the test).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/url.hpp"
#include "mqtt/session.hpp"
#include "mqtt/tcp_transport.hpp"

namespace edgegw::test {

struct Received {
  std::string topic;
  std::string payload;
  std::uint8_t qos;
  bool dup;
};

class SessionHarness final : public mqtt::SessionHandler {
 public:
  SessionHarness(const std::string& url, mqtt::SessionOptions options, std::uint32_t slots = 64,
                 std::uint32_t slot_bytes = 1024)
      : SessionHarness(std::make_unique<mqtt::TcpTransport>(make_transport(url)), std::move(options), slots,
                       slot_bytes) {}
  SessionHarness(std::unique_ptr<mqtt::Transport> t, mqtt::SessionOptions options, std::uint32_t slots = 64,
                 std::uint32_t slot_bytes = 1024)
      : pool(slots, slot_bytes), transport(std::move(t)) {
    session = std::make_unique<mqtt::Session>(loop, *transport, &pool, std::move(options), *this);
  }

  static mqtt::TcpTransport make_transport(const std::string& text) {
    std::string why;
    auto url = config::parse_url(text, why);
    EXPECT_TRUE(url) << why;
    return url->scheme == config::Scheme::unix_socket ? mqtt::TcpTransport::unix_socket(url->path)
                                                      : mqtt::TcpTransport::tcp(url->host, url->port);
  }

  // Runs the loop until pred() or the timeout; returns pred().
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred() && std::chrono::steady_clock::now() < deadline) loop.run_once(std::chrono::milliseconds(20));
    return pred();
  }
  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }
  bool start_and_subscribe() {
    session->start();
    return run_until([&] { return subscribed > 0; });
  }
  void ack_held() {
    for (auto t : held) session->ack(t);
    held.clear();
  }
  void release_held_slots() {
    for (auto* s : held_slots) pool.release(s);
    held_slots.clear();
  }

  void on_connected(bool present) override {
    ++connects;
    session_present = present;
  }
  void on_disconnected(const mqtt::DisconnectInfo& info) override {
    disconnects.push_back(info.reason);
    last_detail = info.detail;
  }
  void on_subscribed(mqtt::Bytes states) override {
    ++subscribed;
    granted.assign(states.begin(), states.end());
  }
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override {
    received.push_back({std::string(m.topic), std::string(m.payload.begin(), m.payload.end()), m.qos, m.dup});
    if (hold_slots) held_slots.push_back(m.slot);
    else pool.release(m.slot);
    if (m.qos == 0) return;
    if (auto_ack) session->ack(token);
    else held.push_back(token);
  }
  void on_published(std::uint64_t cookie, mqtt::Reason reason) override {
    published.push_back(cookie);
    if (mqtt::is_error(reason)) ++publish_refused;
    if (after_published) after_published(cookie);
  }

  event::Loop loop;
  mem::Pool pool;
  std::unique_ptr<mqtt::Transport> transport;
  std::unique_ptr<mqtt::Session> session;

  bool auto_ack = true;
  bool hold_slots = false;
  int connects = 0;
  bool session_present = false;
  int subscribed = 0;
  int publish_refused = 0;
  std::vector<std::uint8_t> granted;
  std::vector<mqtt::Reason> disconnects;
  std::string last_detail;
  std::vector<Received> received;
  std::vector<mqtt::AckToken> held;
  std::vector<mem::Slot*> held_slots;
  std::vector<std::uint64_t> published;
  std::function<void(std::uint64_t cookie)> after_published;  // runs inside on_published
};

inline mqtt::SessionOptions options(mqtt::Version v, const std::string& client_id, std::vector<std::string> topics,
                                    std::uint8_t qos = 2) {
  mqtt::SessionOptions o;
  o.version = v;
  o.client_id = client_id;
  o.subscriptions = std::move(topics);
  o.subscribe_qos = qos;
  o.clean_start = true;
  o.reconnect_min = std::chrono::milliseconds(50);
  o.reconnect_max = std::chrono::milliseconds(500);
  o.random_seed = 1;
  return o;
}

}  // namespace edgegw::test
