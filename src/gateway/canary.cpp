#include "gateway/canary.hpp"

#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "gateway/selftest.hpp"

namespace edgegw::gateway {
namespace {

std::uint64_t clock_ns(clockid_t clock) {
  timespec ts;
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

mqtt::Version version(config::MqttVersion v) { return v == config::MqttVersion::v5 ? mqtt::Version::v5 : mqtt::Version::v311; }

}  // namespace

Canary::Canary(event::Loop& loop, const config::Config& config) : m_loop(loop), m_config(config), m_timer(loop, *this) {}

Canary::~Canary() { stop(); }

bool Canary::start(std::string& error) {
  const config::Config& c = m_config;
  m_topic = probe_topic(c);
  if (m_topic.empty()) {
    error = "selftest.canary_interval: no probe topic (ingest.topics has no wildcard filter); set selftest.probe_topic";
    return false;
  }
  if (!Gateway::make_link(c.ingest.url, c.ingest.tls, "ingest.tls", m_pub_link, error) ||
      !Gateway::make_link(c.uplink.url, c.uplink.tls, "uplink.tls", m_sub_link, error)) {
    return false;
  }
  m_pool = std::make_unique<mem::Pool>(8, c.pool.slot_bytes);
  mqtt::SessionOptions pub;
  pub.version = version(c.ingest.mqtt_version);
  pub.client_id = "edgegw-" + c.gateway.id + "-canary-pub";
  pub.clean_start = true;
  pub.max_inflight = 4;
  m_pub = std::make_unique<mqtt::Session>(m_loop, *m_pub_link.transport, nullptr, pub, m_publisher);
  mqtt::SessionOptions sub;
  sub.version = version(c.uplink.mqtt_version);
  sub.client_id = "edgegw-" + c.gateway.id + "-canary-sub";
  sub.clean_start = true;
  sub.subscriptions = {c.uplink.topic_prefix + m_topic};
  sub.subscribe_qos = 1;
  sub.receive_maximum = 8;
  m_sub = std::make_unique<mqtt::Session>(m_loop, *m_sub_link.transport, m_pool.get(), sub,
                                          static_cast<mqtt::SessionHandler&>(*this));
  m_run = static_cast<std::uint32_t>(clock_ns(CLOCK_MONOTONIC));
  m_pub->start();
  m_sub->start();
  m_timer.arm_in(std::chrono::duration_cast<event::Duration>(c.selftest.canary_interval));
  return true;
}

void Canary::stop() {
  m_timer.cancel();
  if (m_pub) m_pub->stop();
  if (m_sub) m_sub->stop();
}

void Canary::on_timer(event::Timer&) {
  m_timer.arm_in(std::chrono::duration_cast<event::Duration>(m_config.selftest.canary_interval));
  if (m_pub->state() != mqtt::SessionState::connected) return;
  const int n = std::snprintf(m_payload, sizeof m_payload, "edgegw-canary %u %" PRIu64 " %" PRIu64, m_run, m_sent,
                              clock_ns(CLOCK_REALTIME));
  mqtt::OutMessage m;
  m.topic = m_topic;
  m.payload = mqtt::Bytes(reinterpret_cast<const std::uint8_t*>(m_payload), static_cast<std::size_t>(n));
  m.qos = 0;  // the payload lives in m_payload, reused by the next probe
  if (m_pub->publish(m, m_sent) == mqtt::PublishStatus::queued) ++m_sent;
}

void Canary::on_message(const mqtt::Message& m, mqtt::AckToken token) {
  const std::uint64_t now = clock_ns(CLOCK_REALTIME);
  char text[96] = {};
  std::memcpy(text, m.payload.data(), std::min(m.payload.size(), sizeof text - 1));
  unsigned run = 0;
  unsigned long long seq = 0, sent = 0;
  if (std::sscanf(text, "edgegw-canary %u %llu %llu", &run, &seq, &sent) == 3 && run == m_run) {
    m_latency.record(now > sent ? now - sent : 0);
    ++m_received;
  }
  m_pool->release(m.slot);
  if (m.qos) m_sub->ack(token);
}

}  // namespace edgegw::gateway
