#include "gateway/presence.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "edgegw/build_info.hpp"

namespace edgegw::gateway {
namespace {

constexpr std::string_view k_offline = R"({"state":"offline"})";

}  // namespace

void Presence::configure(mqtt::SessionOptions& options) const {
  if (!enabled()) return;
  options.will_topic = m_topic;
  options.will_payload = k_offline;
  options.will_retain = true;
  options.max_inflight += 2;  // queue room for online and offline beside a full window of records
}

void Presence::online(mqtt::Session& uplink, std::uint64_t spool_records, double oldest_age_s) {
  if (!enabled() || m_pending) return;
  const int n = std::snprintf(m_online, sizeof m_online,
                              R"({"state":"online","version":"%s","spool_records":%)" PRIu64 R"(,"oldest_age_s":%.1f})",
                              build::k_version, spool_records, oldest_age_s);
  publish(uplink, std::string_view(m_online, std::min(static_cast<std::size_t>(n), sizeof m_online - 1)));
}

void Presence::offline(mqtt::Session& uplink) {
  if (enabled() && uplink.state() == mqtt::SessionState::connected) publish(uplink, k_offline);
}

void Presence::publish(mqtt::Session& uplink, std::string_view payload) {
  mqtt::OutMessage m;
  m.topic = m_topic;
  m.payload = mqtt::text_bytes(payload);
  m.qos = std::min<std::uint8_t>(1, uplink.maximum_qos());  // a QoS 1 publish to a QoS 0 broker ends the session
  m.retain = true;
  const bool queued = uplink.publish(m, k_cookie) == mqtt::PublishStatus::queued;
  m_pending = queued && m.qos > 0;  // a QoS 0 one gets no PUBACK
}

}  // namespace edgegw::gateway
