#include "gateway/service.hpp"

#include "util/log.hpp"

namespace edgegw::gateway {
namespace {
constexpr auto k_status_every = std::chrono::seconds(5);
}

Service::Service(event::Loop& loop, const Gateway& gateway) : m_loop(loop), m_gateway(gateway), m_timer(loop, *this) {}

void Service::started() {
  if (!m_notifier.enabled()) return;
  char line[256];
  m_gateway.summary(line, sizeof line);
  m_notifier.ready(line);
  if (m_notifier.watchdog_interval().count() > 0) {
    EGW_LOG(info, "systemd watchdog: keep-alive every %lld ms",
            static_cast<long long>(m_notifier.watchdog_interval().count() / 1000));
  }
  m_next_status = m_loop.now() + k_status_every;
  m_timer.arm_in(std::chrono::seconds(1));
  on_timer(m_timer);
}

void Service::stopping() {
  char line[256];
  m_gateway.summary(line, sizeof line);
  m_notifier.stopping(line);
}

void Service::on_timer(event::Timer&) {
  const event::TimePoint now = m_loop.now();
  const auto interval = m_notifier.watchdog_interval();
  if (interval.count() > 0) {
    if (m_gateway.healthy(now)) {
      m_notifier.watchdog();
      m_unhealthy_logged = false;
    } else if (!m_unhealthy_logged) {
      EGW_LOG(error, "gateway: the pipeline is wedged (received messages are not being made durable); "
                     "withholding the systemd watchdog keep-alive");
      m_unhealthy_logged = true;
    }
  }
  if (now >= m_next_status) {
    char line[256];
    m_gateway.summary(line, sizeof line);
    m_notifier.status(line);
    m_next_status = now + k_status_every;
  }
  const event::Duration tick = interval.count() > 0 ? std::min<event::Duration>(interval, std::chrono::seconds(1))
                                                    : event::Duration(std::chrono::seconds(1));
  m_timer.arm_in(tick);
}

}  // namespace edgegw::gateway
