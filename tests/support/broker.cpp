#include "support/broker.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "util/fd.hpp"

namespace edgegw::test {
namespace {

bool can_connect(const std::string& host, std::uint16_t port, const std::string& socket_path) {
  sockaddr_storage addr{};
  socklen_t len;
  int family;
  if (!socket_path.empty()) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&addr);
    sun->sun_family = AF_UNIX;
    std::strncpy(sun->sun_path, socket_path.c_str(), sizeof sun->sun_path - 1);
    len = sizeof(sockaddr_un);
    family = AF_UNIX;
  } else if (host.find(':') != std::string::npos) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    ::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr);
    len = sizeof(sockaddr_in6);
    family = AF_INET6;
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&addr);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &in4->sin_addr);
    len = sizeof(sockaddr_in);
    family = AF_INET;
  }
  util::Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0;
}

// Mosquitto started as root drops to the "mosquitto" user unless told to stay, and then
// cannot use the test's private directory.
std::string current_user() {
  const passwd* pw = ::getpwuid(::getuid());
  return pw ? pw->pw_name : "root";
}

}  // namespace

std::uint16_t free_port(bool ipv6) {
  util::Fd fd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage addr{};
  socklen_t len;
  if (ipv6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&addr);
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "cannot find a free port";
    return 0;
  }
  return ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

Broker::Broker(BrokerOptions options) : m_options(std::move(options)) {
  if (m_options.unix_socket) {
    m_socket = m_dir.file("mqtt.sock");
  } else {
    m_host = m_options.ipv6 ? "::1" : "127.0.0.1";
    m_port = free_port(m_options.ipv6);
  }
  write_config();
  start();
}

void Broker::write_config() {
  std::string listener =
      m_options.unix_socket ? "listener 0 " + m_socket : "listener " + std::to_string(m_port) + " " + m_host;
  m_dir.write(
      "mosquitto.conf",
      m_options.head_config + listener + "\nuser " + current_user() + "\nallow_anonymous true\n" +
          (m_options.persistent ? "persistence true\npersistence_location " + m_dir.path() + "/\nautosave_interval 0\n"
                                : "persistence false\n") +
          "max_queued_messages 0\nlog_dest file " + m_dir.file("mosquitto.log") +
          "\nlog_type error\nlog_type warning\nlog_type notice\n" + m_options.extra_config + "\n");
}

void Broker::set_extra_config(const std::string& extra) {
  m_options.extra_config = extra;
  write_config();
}

void Broker::start() {
  m_process = Process({"mosquitto", "-c", m_dir.file("mosquitto.conf")});
  for (int i = 0; i < 500; ++i) {
    if (can_connect(m_host, m_port, m_socket)) return;
    if (!m_process.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "mosquitto did not start listening; log:\n" << log();
}

void Broker::stop() {
  if (m_process.pid() <= 0) return;
  m_process.signal(SIGCONT);  // a paused broker must run to exit
  m_process.signal(SIGTERM);
  if (m_process.wait(std::chrono::seconds(10)) == -1) m_process.kill();
  m_process = Process();
}

std::string Broker::url() const {
  if (!m_socket.empty()) return "unix://" + m_socket;
  if (m_host.find(':') != std::string::npos) return "mqtt://[" + m_host + "]:" + std::to_string(m_port);
  return "mqtt://" + m_host + ":" + std::to_string(m_port);
}

std::vector<std::string> Broker::client_args() const {
  if (!m_socket.empty()) return {"--unix", m_socket};
  return {"-h", m_host, "-p", std::to_string(m_port)};
}

}  // namespace edgegw::test
