// A real HTTP proxy for a test: tinyproxy (Debian's, 1.11) in the foreground with its own
// config in a temp dir, on a loopback port; killed on destruction. tinyproxy allows
// CONNECT only to the ports its config lists (ConnectPort; by default just 443 and 563),
// answers any other with "403 Access violation", and with BasicAuth answers a CONNECT
// without the right credentials with "407 Proxy Authentication Required".
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "support/broker.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::test {

struct TinyproxyOptions {
  std::uint16_t port = 0;          // 0: a free one
  std::uint16_t connect_port = 0;  // the one port CONNECT may reach
  std::string basic_auth;          // "user password": CONNECT needs them
};

class Tinyproxy {
 public:
  explicit Tinyproxy(TinyproxyOptions options) : m_options(options) {
    if (!m_options.port) m_options.port = free_port();
    set_connect_port(m_options.connect_port);
  }
  ~Tinyproxy() { m_process.kill(); }

  std::uint16_t port() const { return m_options.port; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(m_options.port); }
  // Takes effect at the next start().
  void set_connect_port(std::uint16_t port) {
    m_options.connect_port = port;
    m_dir.write("tinyproxy.conf", "Port " + std::to_string(m_options.port) +
                                      "\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 600\nMaxClients 50\n"
                                      "LogLevel Connect\nConnectPort " +
                                      std::to_string(port) + "\n" +
                                      (m_options.basic_auth.empty() ? "" : "BasicAuth " + m_options.basic_auth + "\n"));
  }

  // Starts it (again, on the same port) and waits until it accepts connections.
  void start() {
    m_process = Process({"tinyproxy", "-d", "-c", m_dir.file("tinyproxy.conf")},
                        Redirects{.stdout_file = m_dir.file("out-" + std::to_string(++m_starts) + ".log"),
                                  .stderr_file = m_dir.file("err-" + std::to_string(m_starts) + ".log")});
    for (int i = 0; i < 500 && !accepting(); ++i) {
      ASSERT_TRUE(m_process.running()) << log();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(accepting()) << log();
  }
  void kill() { m_process.kill(); }

  // What every run of it logged (LogLevel Connect: each request line).
  std::string log() const {
    std::string all;
    for (int i = 1; i <= m_starts; ++i) {
      all += read_file(m_dir.file("out-" + std::to_string(i) + ".log"));
      all += read_file(m_dir.file("err-" + std::to_string(i) + ".log"));
    }
    return all;
  }

 private:
  bool accepting() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(m_options.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }

  TinyproxyOptions m_options;
  TempDir m_dir;
  Process m_process;
  int m_starts = 0;
};

}  // namespace edgegw::test
