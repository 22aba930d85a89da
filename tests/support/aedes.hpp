// aedes, an MQTT 3.1.1 broker in Node.js (npm), on a free loopback port: a broker that is
// not mosquitto, and that speaks 3.1.1 only. scripts/setup installs it with npm into
// EDGEGW_NPM_DIR (default ~/.cache/edgegw-npm).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "support/broker.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::test {

inline std::string npm_dir() {
  if (const char* d = std::getenv("EDGEGW_NPM_DIR")) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.cache/edgegw-npm";
}

class Aedes {
 public:
  Aedes() : m_port(free_port()) {
    const std::string modules = npm_dir() + "/node_modules";
    if (::access((modules + "/aedes").c_str(), F_OK) != 0) {
      ADD_FAILURE() << "aedes is not installed in " << modules << ": run scripts/setup (npm install aedes@0.51.3)";
      return;
    }
    m_process = Process({"env", "NODE_PATH=" + modules, "node",
                         std::string(EDGEGW_SOURCE_DIR) + "/tests/support/aedes_broker.js", std::to_string(m_port)},
                        Redirects{.stdout_file = m_dir.file("aedes.log"), .stderr_file = m_dir.file("aedes.err")});
    for (int i = 0; i < 500 && log().find("listening") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(log().find("listening"), std::string::npos) << log() << read_file(m_dir.file("aedes.err"));
  }
  ~Aedes() { m_process.kill(); }

  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(m_port); }
  std::uint16_t port() const { return m_port; }
  std::string log() const { return read_file(m_dir.file("aedes.log")); }

 private:
  std::uint16_t m_port;
  TempDir m_dir;
  Process m_process;
};

}  // namespace edgegw::test
