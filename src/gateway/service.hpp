// The gateway as a service, around the pipeline:
//  - systemd: READY=1 once started (config valid, pool allocated, spool recovered), a
//    STATUS= summary every few seconds, WATCHDOG=1 from the event loop while the pipeline
//    is healthy (a stuck loop or a wedged pipeline stops the keep-alives and systemd
//    restarts the daemon), RELOADING=1 and READY=1 around a reload, STOPPING=1 on shutdown. Inert without
//    $NOTIFY_SOCKET.
//  - the control socket (gateway.control_socket) that `edgegw status` asks;
//  - the Prometheus textfile (metrics.textfile), replaced atomically every interval.
// Event loop thread only; nothing allocates after start().
#pragma once

#include <string>

#include "config/config.hpp"
#include "event/loop.hpp"
#include "gateway/canary.hpp"
#include "gateway/gateway.hpp"
#include "observe/control.hpp"
#include "sys/notify.hpp"

namespace edgegw::gateway {

class Service final : private event::Timer::Handler, private observe::StatusSource {
 public:
  Service(event::Loop& loop, const config::Config& config, const Gateway& gateway);
  // After Gateway::start() succeeded: the control socket, the canary (if configured),
  // READY=1 and the timer. False with `error` if the control socket cannot be created or
  // the canary cannot start.
  bool start(std::string& error);
  void stopping();  // when shutdown begins
  // SIGHUP: RELOADING=1, gateway.reload() (reload.hpp), READY=1 with the summary.
  void reload(Gateway& gateway);

 private:
  void on_timer(event::Timer& timer) override;
  std::size_t render_status(bool json, char* buf, std::size_t cap) override;
  void write_metrics();
  void snapshot(observe::Snapshot& s) const;

  event::Loop& m_loop;
  const config::Config& m_config;
  const Gateway& m_gateway;
  sys::Notifier m_notifier;
  observe::ControlServer m_control;
  std::unique_ptr<Canary> m_canary;  // when selftest.canary_interval is set
  event::Timer m_timer;
  event::TimePoint m_next_status{}, m_next_metrics{};
  bool m_unhealthy_logged = false;
  bool m_metrics_failed_logged = false;
  std::string m_metrics_tmp;  // <textfile>.tmp
  char m_buf[16384];
};

}  // namespace edgegw::gateway
