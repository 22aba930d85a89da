#include "gateway/canary.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "gateway/clock.hpp"
#include "gateway/selftest.hpp"

namespace edgegw::gateway {

Canary::Canary(event::Loop& loop, const config::Config& config)
    : m_loop(loop), m_config(config), m_timer(loop, *this) {}

Canary::~Canary() { stop(); }

bool Canary::start(std::string& error) {
  const config::Config& c = m_config;
  m_topic = probe_topic(c);
  if (m_topic.empty()) {
    error = "selftest.canary_interval: no probe topic (ingest.topics has no wildcard filter); set selftest.probe_topic";
    return false;
  }
  m_run = static_cast<std::uint32_t>(clock_ns(CLOCK_MONOTONIC));
  if (!m_sessions.start(m_loop, c, m_topic, "canary", 8, m_publisher, *this, error)) return false;
  m_timer.arm_in(std::chrono::duration_cast<event::Duration>(c.selftest.canary_interval));
  return true;
}

void Canary::stop() {
  m_timer.cancel();
  m_sessions.stop();
}

void Canary::on_timer(event::Timer&) {
  m_timer.arm_in(std::chrono::duration_cast<event::Duration>(m_config.selftest.canary_interval));
  if (m_sessions.pub->state() != mqtt::SessionState::connected) return;
  const int n =
      std::snprintf(m_payload, sizeof m_payload, "edgegw-canary %u %" PRIu64 " %" PRIu64, m_run, m_sent, realtime_ns());
  mqtt::OutMessage m;
  m.topic = m_topic;
  m.payload = mqtt::Bytes(reinterpret_cast<const std::uint8_t*>(m_payload), static_cast<std::size_t>(n));
  m.qos = 0;  // the payload lives in m_payload, reused by the next probe
  if (m_sessions.pub->publish(m, m_sent) == mqtt::PublishStatus::queued) ++m_sent;
}

void Canary::on_message(const mqtt::Message& m, mqtt::AckToken token) {
  const std::uint64_t now = realtime_ns();
  char text[96] = {};
  std::memcpy(text, m.payload.data(), std::min(m.payload.size(), sizeof text - 1));
  unsigned run = 0;
  unsigned long long seq = 0, sent = 0;
  if (std::sscanf(text, "edgegw-canary %u %llu %llu", &run, &seq, &sent) == 3 && run == m_run) {
    m_latency.record(elapsed_ns(sent, now));
    ++m_received;
  }
  m_sessions.pool->release(m.slot);
  if (m.qos) m_sessions.sub->ack(token);
}

}  // namespace edgegw::gateway
