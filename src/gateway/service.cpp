#include "gateway/service.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gateway/status.hpp"
#include "util/log.hpp"

namespace edgegw::gateway {
namespace {
constexpr auto k_status_every = std::chrono::seconds(5);
}

Service::Service(event::Loop& loop, const config::Config& config, const Gateway& gateway)
    : m_loop(loop), m_config(config), m_gateway(gateway), m_control(loop, *this), m_timer(loop, *this) {}

bool Service::start(std::string& error) {
  std::string why;
  if (!m_control.listen(m_config.gateway.control_socket, why)) {
    error = "gateway.control_socket: " + why;
    return false;
  }
  if (!m_config.metrics.textfile.empty()) m_metrics_tmp = m_config.metrics.textfile + ".tmp";
  if (m_config.selftest.canary_interval.count() > 0) {
    m_canary = std::make_unique<Canary>(m_loop, m_config);
    if (!m_canary->start(error)) return false;
  }
  if (m_notifier.enabled()) {
    m_gateway.summary(m_buf, sizeof m_buf);
    m_notifier.ready(m_buf);
    if (m_notifier.watchdog_interval().count() > 0) {
      EGW_LOG(info, "systemd watchdog: keep-alive every %lld ms",
              static_cast<long long>(m_notifier.watchdog_interval().count() / 1000));
    }
  }
  m_next_status = m_next_metrics = m_loop.now();
  on_timer(m_timer);
  return true;
}

void Service::stopping() {
  if (m_canary) m_canary->stop();
  m_gateway.summary(m_buf, sizeof m_buf);
  m_notifier.stopping(m_buf);
  if (!m_metrics_tmp.empty()) write_metrics();  // the final counters
}

void Service::reload(Gateway& gateway) {
  m_notifier.reloading();
  gateway.reload();
  m_gateway.summary(m_buf, sizeof m_buf);
  m_notifier.ready(m_buf);
}

void Service::snapshot(observe::Snapshot& s) const {
  m_gateway.snapshot(s);
  if (!m_canary) return;
  s.canary = &m_canary->latency();
  s.canary_sent = m_canary->sent();
  s.canary_received = m_canary->received();
}

std::size_t Service::render_status(bool json, char* buf, std::size_t cap) {
  observe::Snapshot s;
  snapshot(s);
  return gateway::render_status(s, json, buf, cap);
}

// Written to <file>.tmp and renamed over <file>, so the collector never reads half a file.
void Service::write_metrics() {
  observe::Snapshot s;
  snapshot(s);
  observe::Text out(m_buf, sizeof m_buf);
  observe::render_prometheus(s, out);
  const int fd = ::open(m_metrics_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, m_buf, out.size()) == static_cast<ssize_t>(out.size());
  if (fd >= 0) ok = ::close(fd) == 0 && ok;
  ok = ok && ::rename(m_metrics_tmp.c_str(), m_config.metrics.textfile.c_str()) == 0;
  if (!ok && !m_metrics_failed_logged) {
    EGW_LOG(warning, "metrics.textfile: %s: cannot write: %s (retrying quietly)", m_config.metrics.textfile.c_str(),
            std::strerror(errno));
  }
  m_metrics_failed_logged = !ok;
}

void Service::on_timer(event::Timer&) {
  const event::TimePoint now = m_loop.now();
  const auto interval = m_notifier.watchdog_interval();
  if (interval.count() > 0) {
    if (m_gateway.healthy(now)) {
      m_notifier.watchdog();
      m_unhealthy_logged = false;
    } else if (!m_unhealthy_logged) {
      EGW_LOG(error,
              "gateway: the pipeline is wedged (received messages are not being made durable); "
              "withholding the systemd watchdog keep-alive");
      m_unhealthy_logged = true;
    }
  }
  if (m_notifier.enabled() && now >= m_next_status) {
    m_gateway.summary(m_buf, sizeof m_buf);
    m_notifier.status(m_buf);
    m_next_status = now + k_status_every;
  }
  if (!m_metrics_tmp.empty() && now >= m_next_metrics) {
    write_metrics();
    m_next_metrics = now + std::chrono::duration_cast<event::Duration>(m_config.metrics.interval);
  }
  const event::Duration tick = interval.count() > 0 ? std::min<event::Duration>(interval, std::chrono::seconds(1))
                                                    : event::Duration(std::chrono::seconds(1));
  m_timer.arm_in(tick);
}

}  // namespace edgegw::gateway
