// The gateway as a systemd service: READY=1 once started (config valid, pool allocated,
// spool recovered), a STATUS= summary every few seconds, WATCHDOG=1 from the event loop
// while the pipeline is healthy (a stuck loop or a wedged pipeline stops the keep-alives
// and systemd restarts the daemon), STOPPING=1 on shutdown. Without $NOTIFY_SOCKET it
// does nothing. Event loop thread only.
#pragma once

#include "event/loop.hpp"
#include "gateway/gateway.hpp"
#include "sys/notify.hpp"

namespace edgegw::gateway {

class Service final : private event::Timer::Handler {
 public:
  Service(event::Loop& loop, const Gateway& gateway);
  void started();   // after Gateway::start() succeeded
  void stopping();  // when shutdown begins

 private:
  void on_timer(event::Timer& timer) override;

  event::Loop& m_loop;
  const Gateway& m_gateway;
  sys::Notifier m_notifier;
  event::Timer m_timer;
  event::TimePoint m_next_status{};
  bool m_unhealthy_logged = false;
};

}  // namespace edgegw::gateway
