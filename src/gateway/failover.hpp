// The uplink's brokers, in order of preference (uplink.url as an array; docs/CONFIG.md):
// which one is current, moving on when it fails, and the way back to a preferred one.
//
//  - The uplink session reconnects through a transport that points at one broker's link;
//    each time the current broker fails (a connection lost, an attempt failed) the next
//    attempt goes to the next broker, round-robin, at the session's normal backoff.
//  - While connected to a fallback, every uplink.probe_interval a second session (same
//    options, same client id: another broker's session is no takeover) connects to a
//    preferred broker, one attempt at a time, cycling through those before the current.
//    The working link stays up meanwhile. Only once the probe has that broker's CONNACK
//    does it become the uplink: the gateway resends the unacknowledged window on it with
//    the original seq, then ends the old connection with a DISCONNECT (no will).
//  - A session and a link are used by one session at a time: the probe only ever goes to
//    brokers other than the current one, and is stopped before the current one changes.
// Fixed memory: links and both sessions are made at start. Event loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "event/loop.hpp"
#include "gateway/link.hpp"
#include "mqtt/session.hpp"

namespace edgegw::gateway {

class Failover final : private event::Timer::Handler {
 public:
  Failover(event::Loop& loop, const config::Uplink& config);
  ~Failover();
  Failover(const Failover&) = delete;
  Failover& operator=(const Failover&) = delete;

  // One link per broker (TLS material loaded now); false with `error` (naming uplink.tls).
  bool make_links(std::string& error);
  // Uses `t` for a single session instead (tests' in-memory transports): no failover.
  void use_transport(mqtt::Transport& t) { m_fixed = &t; }
  // More than one broker: the gateway makes a second session for the probe.
  bool enabled() const { return !m_fixed && m_links.size() > 1; }
  // What session 0 or 1 runs over.
  mqtt::Transport& transport(unsigned session);
  void attach(mqtt::Session* s0, mqtt::Session* s1) { m_sessions = {s0, s1}; }

  // What a session's event means for the gateway.
  enum class Role { active, probe, other };
  // The active session connected: arms the probe if on a fallback. The probe connected:
  // it is the active one from now on (the gateway then calls retire() on the old one).
  Role connected(unsigned session);
  // The active one failed: the probe stops, the next attempt goes to the next broker. A
  // failed probe stops until the next probe_interval.
  Role disconnected(unsigned session, const mqtt::DisconnectInfo& info);
  // Ends the session that was active before a switch: DISCONNECT, and its queued
  // publishes forgotten (the gateway resent them on the new one).
  void retire(mqtt::Session& old);
  void stop();  // the probe and its timer (a clean stop of the daemon)
  // The active session is about to stop and connect again to the same broker (a reload):
  // that is no failure of the broker; a probe in progress stops first, and probing goes on
  // once the active session is back.
  void reconnecting();

  mqtt::Session& active() { return *m_sessions[m_active]; }
  const mqtt::Session& active() const { return *m_sessions[m_active]; }
  const Link& active_link() const;
  // Every broker's link, preferred first (none with a test's transport): a reload changes them.
  std::span<Link> links() { return m_links; }
  // "broker 2 of 3 (mqtts://b:8883)" for logs and status; one broker: its url.
  const char* describe() const { return m_describe; }
  // "off" (one broker, or on the preferred), "waiting", "connecting to mqtts://a:8883"
  const char* probe_state() const;
  std::uint64_t switches() const { return m_switches; }
  std::uint64_t probes_failed() const { return m_probes_failed; }

 private:
  class Target;
  void on_timer(event::Timer& timer) override;
  void point(unsigned session, unsigned broker);
  // config.urls (a Config made in code may give only url)
  std::span<const config::Url> urls() const {
    return m_config.urls.empty() ? std::span<const config::Url>(&m_config.url, 1) : m_config.urls;
  }
  void set_current(unsigned broker);

  const config::Uplink& m_config;
  std::vector<Link> m_links;  // one per broker
  std::array<std::unique_ptr<Target>, 2> m_targets;
  mqtt::Transport* m_fixed = nullptr;
  std::array<mqtt::Session*, 2> m_sessions{};
  event::Timer m_timer;    // the next probe
  unsigned m_active = 0;   // which session is the uplink
  unsigned m_current = 0;  // the broker it connects to
  unsigned m_probe_broker = 0;
  unsigned m_probe_next = 0;  // the next preferred broker to probe, cycling below m_current
  bool m_probing = false;
  bool m_stopped = false;
  bool m_reconnecting = false;  // the active session's next disconnect is ours (reconnecting())
  std::uint64_t m_switches = 0, m_probes_failed = 0;
  char m_describe[160] = "";
  char m_probe_state[160] = "";
};

}  // namespace edgegw::gateway
