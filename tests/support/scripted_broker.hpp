// A scripted MQTT server, for packet sequences no real broker sends (a 3.1.1 CONNACK to an
// MQTT 5 CONNECT, Session Present after a clean start, a smaller Maximum Packet Size on
// the second connection...). It listens on a free loopback port and runs the test's
// script on each connection it accepts, one at a time, on a thread of its own.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "util/fd.hpp"

namespace edgegw::test {

// One accepted connection, as the script sees it.
class ScriptedConnection {
 public:
  explicit ScriptedConnection(int fd) : m_fd(fd) {}

  // The next packet: its first byte (type and flags) and its body. False on EOF, an error
  // or when nothing complete came within `timeout`.
  bool read(std::uint8_t& first, std::vector<std::uint8_t>& body,
            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::uint8_t b;
    if (!read_bytes(&b, 1, deadline)) return false;
    first = b;
    std::uint32_t length = 0;
    for (int shift = 0; shift < 28; shift += 7) {
      if (!read_bytes(&b, 1, deadline)) return false;
      length |= static_cast<std::uint32_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    body.resize(length);
    return length == 0 || read_bytes(body.data(), length, deadline);
  }
  // Reads packets until one whose type (first byte >> 4) is `type`; false if none came.
  bool read_until(std::uint8_t type, std::vector<std::uint8_t>& body,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::uint8_t first = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (!read(first, body, left)) return false;
      if (first >> 4 == type) return true;
    }
    return false;
  }
  void write(const std::vector<std::uint8_t>& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(m_fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }
  // A packet of `type` with `body` (the remaining length encoded for it).
  void send_packet(std::uint8_t first, const std::vector<std::uint8_t>& body) {
    std::vector<std::uint8_t> out{first};
    std::size_t n = body.size();
    do {
      std::uint8_t b = static_cast<std::uint8_t>(n & 0x7f);
      n >>= 7;
      out.push_back(n ? static_cast<std::uint8_t>(b | 0x80) : b);
    } while (n);
    out.insert(out.end(), body.begin(), body.end());
    write(out);
  }

 private:
  bool read_bytes(std::uint8_t* p, std::size_t n, std::chrono::steady_clock::time_point deadline) {
    while (n > 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{m_fd, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      const ssize_t got = ::recv(m_fd, p, n, 0);
      if (got <= 0) return false;
      p += got, n -= static_cast<std::size_t>(got);
    }
    return true;
  }
  int m_fd;
};

class ScriptedBroker {
 public:
  // script(connection, index): index counts the connections accepted, from 0. The
  // connection is closed when the script returns.
  using Script = std::function<void(ScriptedConnection&, int)>;

  explicit ScriptedBroker(Script script) : m_script(std::move(script)) {
    m_listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(m_listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(m_listener.get(), 8);
    ::getsockname(m_listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~ScriptedBroker() {
    m_stop = true;
    m_thread.join();
  }
  ScriptedBroker(const ScriptedBroker&) = delete;
  ScriptedBroker& operator=(const ScriptedBroker&) = delete;

  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(m_port); }
  int connections() const { return m_connections; }
  // When each connection was accepted.
  std::vector<std::chrono::steady_clock::time_point> accepted_at() {
    std::lock_guard lock(m_mutex);
    return m_accepted_at;
  }

 private:
  void serve() {
    while (!m_stop) {
      pollfd p{m_listener.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      util::Fd fd(::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!fd) continue;
      {
        std::lock_guard lock(m_mutex);
        m_accepted_at.push_back(std::chrono::steady_clock::now());
      }
      ScriptedConnection c(fd.get());
      m_script(c, m_connections++);
    }
  }

  Script m_script;
  util::Fd m_listener;
  std::uint16_t m_port = 0;
  std::thread m_thread;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_connections{0};
  std::mutex m_mutex;
  std::vector<std::chrono::steady_clock::time_point> m_accepted_at;
};

}  // namespace edgegw::test
