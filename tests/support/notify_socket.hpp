// A unix datagram socket standing in for systemd's notify socket (NOTIFY_SOCKET), for
// tests of the daemon's READY, STATUS, WATCHDOG and STOPPING messages.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "util/fd.hpp"

namespace edgegw::test {

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : m_path(path), m_fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(m_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  }
  const std::string& path() const { return m_path; }
  // Every datagram that arrives within `window`.
  std::vector<std::string> receive_for(std::chrono::milliseconds window) {
    std::vector<std::string> got;
    auto deadline = std::chrono::steady_clock::now() + window;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return got;
      pollfd p{m_fd.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[1024];
      ssize_t n = ::recv(m_fd.get(), buf, sizeof buf, 0);
      if (n > 0) got.emplace_back(buf, static_cast<std::size_t>(n));
    }
  }
  // Waits (at most `timeout`) for a datagram containing `what`; returns it, or "".
  std::string wait_for(const std::string& what, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const std::string& m : receive_for(std::chrono::milliseconds(50))) {
        if (m.find(what) != std::string::npos) return m;
      }
    }
    return "";
  }

 private:
  std::string m_path;
  util::Fd m_fd;
};

inline long count_containing(const std::vector<std::string>& messages, const std::string& what) {
  long n = 0;
  for (const std::string& m : messages) n += m.find(what) != std::string::npos;
  return n;
}

}  // namespace edgegw::test
