// An in-memory Transport for fast, single-threaded tests of what runs on the event loop
// (a session, the gateway): each open() makes a fresh socketpair, so the loop waits on a
// real fd, and the test plays the far end through peer() (a ScriptedConnection reads and
// writes MQTT packets on it). With a ManualTime loop, a test drives keepalives, backoffs
// and rates by advancing the clock: no ports, no broker process, no sleeps.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "mqtt/transport.hpp"
#include "util/fd.hpp"

namespace edgegw::test {

class MemoryTransport final : public mqtt::Transport {
 public:
  // The far end of the current connection (-1 before the first open()). It stays open
  // after close() until the next open(), so the test can read what was sent last.
  int peer() const { return m_peer.get(); }
  // How many times open() was called.
  int opens() const { return m_opens; }
  // How many times write() was called (each is one send() on the socket).
  int writes() const { return m_writes; }
  // While true, open() fails as a refused connect does (an outage).
  bool refuse = false;

  mqtt::Progress open() override {
    ++m_opens;
    close();
    m_peer.reset();
    if (refuse) {
      std::snprintf(m_error, sizeof m_error, "connect memory: Connection refused");
      return mqtt::Progress::failed;
    }
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      std::snprintf(m_error, sizeof m_error, "socketpair: %s", std::strerror(errno));
      return mqtt::Progress::failed;
    }
    m_fd.reset(fds[0]);
    m_peer.reset(fds[1]);
    return mqtt::Progress::done;
  }
  mqtt::Progress progress() override { return mqtt::Progress::done; }
  mqtt::IoResult read(std::span<std::uint8_t> into) override {
    const ssize_t n = ::recv(m_fd.get(), into.data(), into.size(), 0);
    if (n > 0) return {mqtt::IoStatus::ok, static_cast<std::size_t>(n)};
    if (n == 0) return {mqtt::IoStatus::closed};
    return io_error("read");
  }
  mqtt::IoResult write(std::span<const std::uint8_t> from) override {
    ++m_writes;
    const ssize_t n = ::send(m_fd.get(), from.data(), from.size(), MSG_NOSIGNAL);
    if (n >= 0) return {mqtt::IoStatus::ok, static_cast<std::size_t>(n)};
    return io_error("write");
  }
  void close() override { m_fd.reset(); }
  const char* pending() const override { return "the in-memory connect"; }
  int fd() const override { return m_fd ? m_fd.get() : -1; }
  const char* error() const override { return m_error; }

 private:
  mqtt::IoResult io_error(const char* what) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {mqtt::IoStatus::would_block};
    std::snprintf(m_error, sizeof m_error, "%s memory: %s", what, std::strerror(errno));
    return {mqtt::IoStatus::error};
  }

  util::Fd m_fd, m_peer;
  int m_opens = 0;
  int m_writes = 0;
  char m_error[128] = "";
};

}  // namespace edgegw::test
