// A real mosquitto broker for a test: its own config and log in a temp dir, on a free
// loopback port (IPv4 or IPv6) or a unix socket; stopped (SIGKILL) on destruction.
#pragma once

#include <signal.h>

#include <cstdint>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::test {

struct BrokerOptions {
  bool ipv6 = false;
  bool unix_socket = false;
  bool persistent = false;   // keeps sessions and queued messages across stop()/start()
  std::string extra_config;  // appended to mosquitto.conf
  std::string head_config;   // before its first listener (per_listener_settings must be)
};

class Broker {
 public:
  explicit Broker(BrokerOptions options = {});
  ~Broker() { stop(); }

  void start();  // again on the same port after stop()
  void stop();   // SIGTERM and wait (mosquitto saves its database), SIGKILL if it hangs
  // Replaces the listener's extra configuration; takes effect at the next start().
  void set_extra_config(const std::string& extra);
  void pause() { m_process.signal(SIGSTOP); }
  // SIGHUP: mosquitto reads its configuration again (its acl_file among it).
  void reload() { m_process.signal(SIGHUP); }
  void resume() { m_process.signal(SIGCONT); }

  const std::string& host() const { return m_host; }
  std::uint16_t port() const { return m_port; }
  const std::string& socket_path() const { return m_socket; }
  std::string url() const;
  std::string log() const { return read_file(m_dir.file("mosquitto.log")); }
  // "-h HOST -p PORT" for mosquitto_pub / mosquitto_sub.
  std::vector<std::string> client_args() const;

 private:
  void write_config();

  BrokerOptions m_options;
  TempDir m_dir;
  std::string m_host;
  std::string m_socket;
  std::uint16_t m_port = 0;
  Process m_process;
};

// A port nothing listens on right now (bound to port 0 and released).
std::uint16_t free_port(bool ipv6 = false);

}  // namespace edgegw::test
