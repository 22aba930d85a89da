#include "gateway/downlink.hpp"

#include <algorithm>
#include <chrono>

#include "gateway/clock.hpp"
#include "util/log.hpp"
#include "util/topic.hpp"

namespace edgegw::gateway {
namespace {

bool has_user_property(const mqtt::Properties& props, std::string_view key, std::string_view value) {
  bool found = false;
  mqtt::for_each_user_property(props, [&](const mqtt::UserProperty& p) {
    found = found || (p.key == key && (value.empty() || p.value == value));
  });
  return found;
}

// Done with a message that goes nowhere: acknowledged upstream, so it does not come again.
void drop(mem::Pool& pool, mqtt::Session& from, const mqtt::Message& m, mqtt::AckToken token) {
  pool.release(m.slot);
  if (m.qos > 0) from.ack(token);
}

constexpr auto k_retry = std::chrono::milliseconds(100);

}  // namespace

Downlink::Downlink(event::Loop& loop, const config::Config& config) : m_config(config), m_retry(loop, *this) {
  if (!enabled()) return;
  const std::uint32_t slots = m_config.downlink.slots;
  m_entries.allocate(std::size_t{2} * slots);
  m_props[0] = {k_mark, m_config.gateway.id};
  m_stats.slots = slots;
}

mem::Pool* Downlink::pool(unsigned session) {
  if (!enabled()) return nullptr;
  if (!m_pools[session])
    m_pools[session] = std::make_unique<mem::Pool>(m_config.downlink.slots, m_config.pool.slot_bytes);
  return m_pools[session].get();
}

void Downlink::configure_uplink(mqtt::SessionOptions& up) const {
  if (!enabled()) return;
  const config::Downlink& d = m_config.downlink;
  // A persistent session: what arrives while edgegw is away (or before the upstream PUBACK
  // of what it had) is kept for it. The resends of the uplink's own publishes still come
  // from its window (with DUP, as for a session that resumed).
  up.clean_start = false;
  up.session_expiry_s = static_cast<std::uint32_t>(
      std::min<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(d.session_expiry).count(), 0xfffffffe));
  for (const config::DownlinkRule& r : d.rules) up.subscriptions.push_back(r.filter);
  up.subscribe_qos = 1;
  // No Local: what the uplink publishes never comes back to it; Retain Handling 1: a
  // retained command is sent only when the subscription is new, not at every reconnect.
  up.subscribe_options_v5 = 0x04 | 0x10;
  up.receive_maximum = static_cast<std::uint16_t>(d.slots);
}

void Downlink::configure_ingest(mqtt::SessionOptions& in) const {
  if (!enabled()) return;
  std::uint8_t qos = 0;
  std::size_t prefix = 0;
  for (const config::DownlinkRule& r : m_config.downlink.rules) {
    qos = std::max(qos, r.qos);
    prefix = std::max(prefix, r.prefix.size());
  }
  in.publish_qos = qos;
  in.max_inflight = static_cast<std::uint16_t>(m_config.downlink.slots);
  in.subscribe_options_v5 |= 0x04;  // No Local: edgegw's own local publishes do not come back to it
  // A whole PUBLISH of the largest message with the longest prefix (and the mark), as the
  // uplink's (gateway.cpp), plus 1 KiB for acks and pings.
  constexpr std::size_t k_publish_overhead = 128;
  in.tx_buffer_bytes = m_config.pool.slot_bytes + prefix + k_publish_overhead + 1024;
}

void Downlink::stop() {
  m_stopped = true;
  m_retry.cancel();
}

bool Downlink::came_down(const mqtt::Message& m) { return has_user_property(m.props, k_mark, {}); }

const config::DownlinkRule* Downlink::match(std::string_view topic) const {
  for (const config::DownlinkRule& r : m_config.downlink.rules) {
    if (util::topic_matches(r.filter, topic) && topic.starts_with(r.strip)) return &r;
  }
  return nullptr;
}

void Downlink::on_message(mqtt::Session& from, unsigned session, const mqtt::Message& m, mqtt::AckToken token) {
  mem::Pool* pool = m_pools[session].get();
  if (!pool) return;            // no rules: the session has no pool, and receives nothing
  if (m_stopped || !m_local) {  // not acknowledged: the broker sends it again after the restart
    pool->release(m.slot);
    return;
  }
  ++m_stats.received;
  if (m.dup) ++m_stats.redelivered;
  // Our own uplink message back (a broker that ignores No Local): it carries our gw and a seq.
  if (has_user_property(m.props, "gw", m_config.gateway.id) && has_user_property(m.props, "seq", {})) {
    ++m_stats.loops_refused;
    EGW_LOG_LIMITED(warning, "downlink: refused \"%.*s\": edgegw sent it up itself (a loop; see check-config)",
                    static_cast<int>(m.topic.size()), m.topic.data());
    return drop(*pool, from, m, token);
  }
  const config::DownlinkRule* rule = match(m.topic);
  const std::string_view rest = rule ? m.topic.substr(rule->strip.size()) : std::string_view();
  if (!rule || (rule->prefix.empty() && rest.empty())) {
    ++m_stats.refused;
    EGW_LOG_LIMITED(warning, "downlink: no rule maps \"%.*s\" to a local topic; dropped",
                    static_cast<int>(m.topic.size()), m.topic.data());
    return drop(*pool, from, m, token);
  }
  Entry e{pool, m.slot, &from, token, m.qos, rule->qos, State::waiting, realtime_ns(), {}};
  e.out.topic_prefix = rule->prefix;
  e.out.topic = rest;
  e.out.payload = m.payload;
  e.out.qos = rule->qos;
  e.out.retain = false;
  e.out.user_properties = m_props;
  m_entries.push(e);
  m_stats.in_flight = in_flight();
  // Behind one waiting for the local session, this one waits too (order is kept).
  const std::uint64_t position = m_entries.tail() - 1;
  if (m_entries.size() == 1 || m_entries[position - 1].state != State::waiting) send(position);
}

void Downlink::on_subscribed(mqtt::Bytes states) const {
  const std::vector<config::DownlinkRule>& rules = m_config.downlink.rules;
  std::size_t granted = 0;
  for (std::size_t i = 0; i < states.size() && i < rules.size(); ++i) {
    if (states[i] < 0x80) {
      ++granted;
      continue;
    }
    EGW_LOG_LIMITED(warning, "downlink: the upstream broker refused the filter \"%s\" (%s)", rules[i].filter.c_str(),
                    states[i] == mqtt::Session::k_unanswered ? "no answer yet"
                                                             : mqtt::reason_name(static_cast<mqtt::Reason>(states[i])));
  }
  if (granted == states.size()) EGW_LOG(info, "downlink: subscribed upstream to all %zu filters", granted);
}

// Hands one entry to the local session; false when it cannot take it now (retried).
bool Downlink::send(std::uint64_t position) {
  Entry& e = m_entries[position];
  switch (m_local->publish(e.out, position)) {
    case mqtt::PublishStatus::queued:
      e.state = State::sent;
      if (e.local_qos == 0) done(position, true);
      return true;
    case mqtt::PublishStatus::too_large:
      EGW_LOG_LIMITED(error, "downlink: \"%.*s%.*s\" is larger than the local broker accepts; dropped",
                      static_cast<int>(e.out.topic_prefix.size()), e.out.topic_prefix.data(),
                      static_cast<int>(e.out.topic.size()), e.out.topic.data());
      e.state = State::sent;
      done(position, false);
      return true;
    default:  // the window is full, or QoS 0 while not connected: later, in order
      if (!m_retry.armed()) m_retry.arm_in(k_retry);
      return false;
  }
}

void Downlink::on_published(std::uint64_t position, mqtt::Reason reason) {
  if (!m_entries.holds(position) || m_entries[position].state != State::sent) return;
  if (mqtt::is_error(reason)) {
    const Entry& e = m_entries[position];
    EGW_LOG_LIMITED(error, "downlink: the local broker refused \"%.*s%.*s\" (%s); dropped",
                    static_cast<int>(e.out.topic_prefix.size()), e.out.topic_prefix.data(),
                    static_cast<int>(e.out.topic.size()), e.out.topic.data(), mqtt::reason_name(reason));
  }
  done(position, !mqtt::is_error(reason));
  send_waiting();  // the local window has room again
}

// The local broker has it (or refused it for good): the upstream PUBACK may go.
void Downlink::done(std::uint64_t position, bool delivered) {
  Entry& e = m_entries[position];
  e.state = State::done;
  if (delivered) {
    ++m_stats.delivered;
    m_stats.latency.record(elapsed_ns(e.received_ns, realtime_ns()));
  } else {
    ++m_stats.refused;
  }
  // A token of an earlier connection is ignored: the broker sends that message again.
  if (e.upstream_qos > 0) e.from->ack(e.token);
  release_done();
}

// Slots go back in arrival order, so the ring never holds more entries than the pool slots.
void Downlink::release_done() {
  while (!m_entries.empty() && m_entries.front().state == State::done) {
    m_entries.front().pool->release(m_entries.front().slot);
    m_entries.pop_front();
  }
  m_stats.in_flight = in_flight();
}

void Downlink::on_timer(event::Timer&) { send_waiting(); }

void Downlink::send_waiting() {
  if (m_stopped) return;
  // A QoS 0 send completes at once, and may release entries at the head: by position.
  for (std::uint64_t p = m_entries.head(); p < m_entries.tail(); ++p) {
    if (m_entries.holds(p) && m_entries[p].state == State::waiting && !send(p)) return;
  }
}

}  // namespace edgegw::gateway
