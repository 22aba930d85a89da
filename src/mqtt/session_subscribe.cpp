// Session: subscriptions. Each filter's state is kept (granted QoS, or the broker's
// refusal); what a CONNACK says the broker cannot do is not asked for; refusals that may
// pass (not authorized: an ACL the operator is fixing; quota) are asked for again, with
// backoff, for as long as the connection lasts.
#include <algorithm>

#include "mqtt/session.hpp"
#include "util/log.hpp"

namespace edgegw::mqtt {
namespace {

// SUBACK reasons that asking again cannot change while the filter stays as it is.
bool refused_for_good(std::uint8_t reason) {
  switch (static_cast<Reason>(reason)) {
    case Reason::topic_filter_invalid:
    case Reason::shared_subscriptions_not_supported:
    case Reason::subscription_ids_not_supported:
    case Reason::wildcard_subscriptions_not_supported: return true;
    default: return false;
  }
}

bool has_wildcard(std::string_view filter) { return filter.find_first_of("+#") != std::string_view::npos; }

}  // namespace

void Session::subscriptions_connected(const Properties& connack) {
  m_sub_attempt = 0;
  m_subscribe_pending = false;
  for (std::size_t i = 0; i < m_subscriptions.size(); ++i) {
    const std::string_view filter = m_subscriptions[i].filter;
    Reason unavailable = Reason::success;
    if (filter.starts_with("$share/") && !connack.shared_sub_available) {
      unavailable = Reason::shared_subscriptions_not_supported;
    } else if (has_wildcard(filter) && !connack.wildcard_sub_available) {
      unavailable = Reason::wildcard_subscriptions_not_supported;
    }
    if (unavailable != Reason::success) {
      m_sub_state[i] = static_cast<std::uint8_t>(unavailable);
      EGW_LOG(error, "mqtt %s: not subscribing to '%.*s': the broker says in its CONNACK: %s (change %s.topics)",
              m_options.client_id.c_str(), static_cast<int>(filter.size()), filter.data(), reason_name(unavailable),
              m_options.config_key.c_str());
    } else {
      m_sub_state[i] = k_unanswered;
      m_subscribe_pending = true;
    }
  }
}

// One SUBSCRIBE for every filter not answered yet. False if it must wait for room.
bool Session::compose_subscribe() {
  m_sub_batch.clear();
  m_sub_batch_index.clear();
  for (std::size_t i = 0; i < m_subscriptions.size(); ++i) {
    if (m_sub_state[i] != k_unanswered) continue;
    m_sub_batch.push_back(m_subscriptions[i]);
    m_sub_batch_index.push_back(i);
  }
  if (m_sub_batch.empty()) {
    m_subscribe_pending = false;
    return true;
  }
  Subscribe s;
  s.packet_id = take_packet_id();
  s.subscriptions = m_sub_batch;
  std::size_t n = encode(tx_space(), s, m_options.version);
  if (n == 0) {
    if (m_tx_end > m_tx_begin) return false;  // wait for the buffer to drain
    fail(Reason::implementation_specific_error, Origin::local, "SUBSCRIBE for %zu filters does not fit the send buffer",
         m_sub_batch.size());
    return false;
  }
  m_tx_end += n;
  m_sub_packet_id = s.packet_id;
  m_subscribe_pending = false;
  return true;
}

void Session::handle_suback(Bytes body) {
  SubAck s;
  if (decode(m_header, body, m_options.version, s) != Reason::success) {
    fail(Reason::malformed_packet, Origin::local, "malformed SUBACK from the server");
    return;
  }
  if (s.packet_id != m_sub_packet_id || s.reasons.size() != m_sub_batch.size()) {
    fail(Reason::protocol_error, Origin::local,
         "SUBACK for packet %u with %zu reasons does not answer our SUBSCRIBE (%u, %zu filters)", s.packet_id,
         s.reasons.size(), m_sub_packet_id, m_sub_batch.size());
    return;
  }
  bool retry = false;
  for (std::size_t k = 0; k < s.reasons.size(); ++k) {
    const std::size_t i = m_sub_batch_index[k];
    const std::uint8_t reason = s.reasons[k];
    m_sub_state[i] = reason;
    if (reason < 0x80) continue;
    ++m_counters.subscribe_refusals;
    const bool again = !refused_for_good(reason);
    retry = retry || again;
    const std::string_view filter = m_subscriptions[i].filter;
    EGW_LOG_LIMITED(error, "mqtt %s: subscription to '%.*s' refused: %s%s", m_options.client_id.c_str(),
                    static_cast<int>(filter.size()), filter.data(), reason_name(static_cast<Reason>(reason)),
                    again ? "; asking again" : "; not asked again on this connection");
  }
  m_sub_batch.clear();
  m_sub_batch_index.clear();
  if (retry) {
    event::Duration delay = m_options.resubscribe_min;
    for (unsigned a = 0; a < m_sub_attempt && delay < m_options.reconnect_max; ++a) delay *= 2;
    m_sub_timer.arm_in(std::min(delay, m_options.reconnect_max));
    ++m_sub_attempt;
  }
  m_handler.on_subscribed(subscription_states());
}

void Session::resubscribe() {
  if (m_state != SessionState::connected || m_failing) return;
  for (std::size_t i = 0; i < m_sub_state.size(); ++i) {
    if (m_sub_state[i] >= 0x80 && m_sub_state[i] != k_unanswered && !refused_for_good(m_sub_state[i])) {
      m_sub_state[i] = k_unanswered;
      m_subscribe_pending = true;
    }
  }
  flush_later();
}

}  // namespace edgegw::mqtt
