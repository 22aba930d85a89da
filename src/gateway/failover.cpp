#include "gateway/failover.hpp"

#include <cstdio>
#include <cstring>

#include "util/log.hpp"

namespace edgegw::gateway {

// A session's transport: the link of the broker it is pointed at, changed only while the
// session has no connection (in backoff, or stopped).
class Failover::Target final : public mqtt::Transport {
 public:
  mqtt::Transport* to = nullptr;

  mqtt::Progress open() override { return to->open(); }
  mqtt::Progress progress() override { return to->progress(); }
  mqtt::IoResult read(std::span<std::uint8_t> into) override { return to->read(into); }
  mqtt::IoResult write(std::span<const std::uint8_t> from) override { return to->write(from); }
  bool has_buffered_input() const override { return to->has_buffered_input(); }
  void close() override { to->close(); }
  void close_gracefully(std::chrono::milliseconds wait) override { to->close_gracefully(wait); }
  void set_user_timeout(std::chrono::milliseconds timeout) override { to->set_user_timeout(timeout); }
  const char* pending() const override { return to->pending(); }
  bool failed_until_fixed() const override { return to->failed_until_fixed(); }
  int fd() const override { return to->fd(); }
  const char* error() const override { return to->error(); }
};

Failover::Failover(event::Loop& loop, const config::Uplink& config) : m_config(config), m_timer(loop, *this) {
  set_current(0);
}

Failover::~Failover() = default;

bool Failover::make_links(std::string& error) {
  m_links.resize(urls().size());
  for (std::size_t i = 0; i < m_links.size(); ++i) {
    if (!make_link(urls()[i], m_config.tls, "uplink.tls", m_links[i], error, &m_config.proxy)) return false;
  }
  for (auto& t : m_targets) {
    t = std::make_unique<Target>();
    t->to = m_links[0].transport.get();
  }
  return true;
}

mqtt::Transport& Failover::transport(unsigned session) {
  if (m_fixed) return *m_fixed;
  return *m_targets[session];
}

const Link& Failover::active_link() const {
  static const Link none;
  return m_fixed ? none : m_links[m_current];
}

void Failover::point(unsigned session, unsigned broker) { m_targets[session]->to = m_links[broker].transport.get(); }

void Failover::set_current(unsigned broker) {
  m_current = broker;
  if (urls().size() <= 1) {
    std::snprintf(m_describe, sizeof m_describe, "%s", urls()[0].text.c_str());
    return;
  }
  std::snprintf(m_describe, sizeof m_describe, "broker %u of %zu (%s)", broker + 1, urls().size(),
                urls()[broker].text.c_str());
}

const char* Failover::probe_state() const {
  if (!enabled() || m_current == 0) return "off";
  if (!m_probing) return "waiting";
  return m_probe_state;
}

Failover::Role Failover::connected(unsigned session) {
  if (session == m_active) {
    if (enabled() && m_current != 0) m_timer.arm_in(m_config.probe_interval);
    return Role::active;
  }
  if (!m_probing) return Role::other;
  // The preferred broker let the probe in: it is the uplink from now on.
  m_probing = false;
  m_timer.cancel();
  char from[sizeof m_describe];
  std::memcpy(from, m_describe, sizeof from);
  m_active = session;
  set_current(m_probe_broker);
  m_probe_next = 0;
  ++m_switches;
  EGW_LOG(notice, "uplink: %s answered the probe: switching back to %s from %s", m_describe,
          m_current == 0 ? "the preferred broker" : "a preferred broker", from);
  if (m_current != 0) m_timer.arm_in(m_config.probe_interval);
  return Role::probe;
}

Failover::Role Failover::disconnected(unsigned session, const mqtt::DisconnectInfo& info) {
  if (!enabled() || m_stopped) return Role::active;
  if (session != m_active) {
    if (!m_probing) return Role::other;  // the one retired at a switch, or the probe we stopped
    m_probing = false;
    ++m_probes_failed;
    m_sessions[session]->stop();  // one attempt per probe
    m_probe_next = (m_probe_next + 1) % m_current;
    EGW_LOG_LIMITED(info, "uplink: the probe of broker %u (%s) failed: %s; staying on %s, next probe in %.0f s",
                    m_probe_broker + 1, urls()[m_probe_broker].text.c_str(), info.detail, m_describe,
                    std::chrono::duration<double>(m_config.probe_interval).count());
    m_timer.arm_in(m_config.probe_interval);
    return Role::probe;
  }
  if (m_reconnecting) {  // a reload's reconnect: the same broker again
    m_reconnecting = false;
    return Role::active;
  }
  // The current broker failed: the next attempt goes to the next one. A probe in progress
  // stops first (its broker may be the next).
  m_timer.cancel();
  if (m_probing) {
    m_probing = false;
    m_sessions[1 - m_active]->stop();
  }
  char from[sizeof m_describe];
  std::memcpy(from, m_describe, sizeof from);
  set_current((m_current + 1) % static_cast<unsigned>(m_links.size()));
  point(m_active, m_current);
  if (!info.repeated) EGW_LOG_LIMITED(notice, "uplink: %s failed; the next attempt goes to %s", from, m_describe);
  return Role::active;
}

void Failover::retire(mqtt::Session& old) {
  old.drop_publishes();  // first: stop() would send what is queued before its DISCONNECT
  old.stop();
}

void Failover::on_timer(event::Timer&) {
  if (m_probing || m_current == 0 || active().state() != mqtt::SessionState::connected) return;
  m_probe_broker = m_probe_next % m_current;
  const unsigned probe = 1 - m_active;
  point(probe, m_probe_broker);
  std::snprintf(m_probe_state, sizeof m_probe_state, "connecting to %s", urls()[m_probe_broker].text.c_str());
  EGW_LOG_LIMITED(info, "uplink: on %s; probing broker %u (%s)", m_describe, m_probe_broker + 1,
                  urls()[m_probe_broker].text.c_str());
  m_probing = true;
  m_sessions[probe]->start();
}

void Failover::reconnecting() {
  if (!enabled()) return;
  m_timer.cancel();
  if (m_probing) {
    m_probing = false;
    m_sessions[1 - m_active]->stop();
  }
  // A session in backoff stops without a disconnect to report.
  const mqtt::SessionState state = active().state();
  m_reconnecting = state != mqtt::SessionState::backoff && state != mqtt::SessionState::stopped;
}

void Failover::stop() {
  m_stopped = true;
  m_timer.cancel();
  if (!m_probing) return;
  m_probing = false;
  m_sessions[1 - m_active]->stop();
}

}  // namespace edgegw::gateway
