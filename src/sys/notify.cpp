#include "sys/notify.hpp"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "util/log.hpp"

namespace edgegw::sys {

Notifier::Notifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  const std::size_t len = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof m_addr.sun_path) {
    EGW_LOG(warning, "NOTIFY_SOCKET=%s: not a unix socket path; systemd will not hear from edgegw", path);
    return;
  }
  m_addr.sun_family = AF_UNIX;
  std::memcpy(m_addr.sun_path, path, len);
  if (path[0] == '@') m_addr.sun_path[0] = '\0';  // abstract namespace
  m_addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  m_fd.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!m_fd) {
    EGW_LOG(warning, "NOTIFY_SOCKET: socket: %s", std::strerror(errno));
    return;
  }
  // The watchdog is ours if WATCHDOG_PID is unset or names this process (sd_watchdog_enabled).
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  if (usec && (!pid || std::strtol(pid, nullptr, 10) == ::getpid())) {
    const long long us = std::strtoll(usec, nullptr, 10);
    if (us > 0) m_watchdog_interval = std::chrono::microseconds(us / 2);
  }
}

bool Notifier::send(const char* text, std::size_t len) {
  if (!m_fd) return false;
  // Never waits: the event loop must not block on a manager that stopped reading (a full
  // socket loses this one message; the next keep-alive comes half a watchdog later).
  const ssize_t n = ::sendto(m_fd.get(), text, len, MSG_NOSIGNAL | MSG_DONTWAIT,
                             reinterpret_cast<const sockaddr*>(&m_addr), m_addr_len);
  return n == static_cast<ssize_t>(len);
}

namespace {
// "PREFIX" + "STATUS=status\n" into a stack buffer.
template <typename N>
void send_with_status(N& n, const char* prefix, const char* status) {
  char buf[512];
  const int len = std::snprintf(buf, sizeof buf, "%sSTATUS=%s\n", prefix, status);
  if (len > 0) n.send(buf, std::min<std::size_t>(static_cast<std::size_t>(len), sizeof buf - 1));
}
}  // namespace

void Notifier::ready(const char* status) { send_with_status(*this, "READY=1\n", status); }
void Notifier::status(const char* status) { send_with_status(*this, "", status); }
void Notifier::stopping(const char* status) { send_with_status(*this, "STOPPING=1\n", status); }
void Notifier::reloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  char buf[64];
  const int len = std::snprintf(
      buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu\n",
      static_cast<unsigned long long>(ts.tv_sec) * 1000000ull + static_cast<unsigned long long>(ts.tv_nsec) / 1000u);
  if (len > 0) send(buf, static_cast<std::size_t>(len));
}
void Notifier::watchdog() { send("WATCHDOG=1\n", 11); }

}  // namespace edgegw::sys
