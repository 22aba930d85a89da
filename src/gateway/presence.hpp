// The uplink's online status, for a fleet dashboard (uplink.status_topic; docs/CONFIG.md):
// the Last Will `{"state":"offline"}` set at CONNECT, `{"state":"online",...}` with the
// version and the spool's backlog after each CONNACK, and `offline` again on a stop,
// before the DISCONNECT. All retained, QoS 1 (an MQTT 5 broker with Retain Available 0
// gets them without the flag: the session strips it, and drops it from the will after the
// broker refuses a retained one; one with Maximum QoS 0 gets them at QoS 0, the will after
// the broker refuses it with QoS Not Supported).
#pragma once

#include <cstdint>
#include <string>

#include "mqtt/session.hpp"

namespace edgegw::gateway {

class Presence {
 public:
  // The cookie of its publishes: no spool record has seq 0.
  static constexpr std::uint64_t k_cookie = 0;

  explicit Presence(const std::string& topic) : m_topic(topic) {}
  bool enabled() const { return !m_topic.empty(); }

  // Sets the Last Will (and room in the publish window for these messages).
  void configure(mqtt::SessionOptions& options) const;
  // After a CONNACK; a status still unacknowledged from before is resent instead.
  void online(mqtt::Session& uplink, std::uint64_t spool_records, double oldest_age_s);
  void offline(mqtt::Session& uplink);
  void on_published() { m_pending = false; }

 private:
  void publish(mqtt::Session& uplink, std::string_view payload);

  const std::string& m_topic;
  char m_online[160] = "";  // the views of a queued publish point here until on_published()
  bool m_pending = false;
};

}  // namespace edgegw::gateway
