#include "gateway/refusals.hpp"

#include <algorithm>

namespace edgegw::gateway {
namespace {

// The failure reasons a PUBACK may carry (MQTT 5, 3.4.2.1), then packet too large (over
// the broker's Maximum Packet Size: our own check, or its DISCONNECT), in the order of
// m_counts.
constexpr mqtt::Reason k_reasons[] = {
    mqtt::Reason::unspecified_error,      mqtt::Reason::implementation_specific_error,
    mqtt::Reason::not_authorized,         mqtt::Reason::topic_name_invalid,
    mqtt::Reason::packet_id_in_use,       mqtt::Reason::quota_exceeded,
    mqtt::Reason::payload_format_invalid, mqtt::Reason::packet_too_large,
};

}  // namespace

Refusals::Refusals() {
  for (std::size_t i = 0; i < std::size(k_reasons); ++i) m_counts[i] = {mqtt::reason_name(k_reasons[i]), 0};
  m_counts[std::size(k_reasons)] = {"other", 0};
}

// Malformed packet and protocol error come in no PUBACK: the session reports them for a
// message the server disconnected us over, again and again (Session::blame_oldest_publish).
bool Refusals::for_good(mqtt::Reason reason) {
  return reason == mqtt::Reason::topic_name_invalid || reason == mqtt::Reason::payload_format_invalid ||
         reason == mqtt::Reason::packet_too_large || reason == mqtt::Reason::malformed_packet ||
         reason == mqtt::Reason::protocol_error;
}

void Refusals::count(mqtt::Reason reason) {
  const auto* at = std::find(std::begin(k_reasons), std::end(k_reasons), reason);
  ++m_counts[static_cast<std::size_t>(at - std::begin(k_reasons))].count;
}

event::Duration Refusals::next_delay() {
  event::Duration delay = std::chrono::seconds(1);
  for (unsigned i = 0; i < m_attempt && delay < std::chrono::seconds(60); ++i) delay *= 2;
  ++m_attempt;
  return std::min<event::Duration>(delay, std::chrono::seconds(60));
}

}  // namespace edgegw::gateway
