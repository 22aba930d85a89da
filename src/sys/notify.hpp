// The systemd notify protocol (sd_notify(3)) without libsystemd: one datagram per message
// to the unix socket named by $NOTIFY_SOCKET ("/path", or "@name" for the abstract
// namespace). READY=1 once the daemon can work, STATUS= lines, STOPPING=1, and WATCHDOG=1
// keep-alives at half of $WATCHDOG_USEC. Inert when the variables are unset (run by hand).
// Used from the event loop thread only; nothing here allocates after construction.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>

#include "util/fd.hpp"

namespace edgegw::sys {

class Notifier {
 public:
  // Reads the environment; a $NOTIFY_SOCKET that cannot be used is logged once.
  Notifier();

  bool enabled() const { return m_fd.valid(); }
  // How often to send WATCHDOG=1 (half the service's WatchdogSec); zero when no watchdog
  // is asked for, or $WATCHDOG_PID names another process.
  std::chrono::microseconds watchdog_interval() const { return m_watchdog_interval; }

  void ready(const char* status);  // READY=1 and a STATUS= line
  void status(const char* status);
  void stopping(const char* status);
  void reloading();  // RELOADING=1 and MONOTONIC_USEC (ready() ends it)
  void watchdog();
  // Sends raw "KEY=VALUE\n..." text; false if it could not be sent.
  bool send(const char* text, std::size_t len);

 private:
  util::Fd m_fd;
  sockaddr_un m_addr{};
  socklen_t m_addr_len = 0;
  std::chrono::microseconds m_watchdog_interval{0};
};

}  // namespace edgegw::sys
