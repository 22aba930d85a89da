// aedes, an MQTT 3.1.1 broker in Node.js (npm), on a free loopback port: a broker that is
// not mosquitto, and that speaks 3.1.1 only. scripts/setup installs it with npm into
// EDGEGW_NPM_DIR (default ~/.cache/edgegw-npm).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <signal.h>

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
  // `record`: a file where aedes itself writes every message published on up/# as
  // "|payload" lines (tally_of's format), from its first moment up: a verifier with no
  // subscription to lose when aedes, which keeps everything in memory, restarts.
  explicit Aedes(std::string record = "") : m_port(free_port()), m_record(std::move(record)) { start(); }
  ~Aedes() { m_process.kill(); }

  void start() {  // again on the same port after stop()
    const std::string modules = npm_dir() + "/node_modules";
    if (::access((modules + "/aedes").c_str(), F_OK) != 0) {
      ADD_FAILURE() << "aedes is not installed in " << modules << ": run scripts/setup (npm install aedes@0.51.3)";
      return;
    }
    const std::size_t before = count_listening();
    m_process =
        Process({"env", "NODE_PATH=" + modules, "node",
                 std::string(EDGEGW_SOURCE_DIR) + "/tests/support/aedes_broker.js", std::to_string(m_port), m_record},
                Redirects{.stdout_file = m_dir.file("aedes-" + std::to_string(++m_starts) + ".log"),
                          .stderr_file = m_dir.file("aedes.err")});
    for (int i = 0; i < 500 && count_listening() == before; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_GT(count_listening(), before) << log() << read_file(m_dir.file("aedes.err"));
  }
  void stop() {  // SIGTERM: it closes its connections and exits (everything it held is gone)
    m_process.signal(SIGTERM);
    if (m_process.wait(std::chrono::seconds(10)) < 0) m_process.kill();
  }

  std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(m_port); }
  std::uint16_t port() const { return m_port; }
  std::string log() const {
    std::string all;
    for (int i = 1; i <= m_starts; ++i) all += read_file(m_dir.file("aedes-" + std::to_string(i) + ".log"));
    return all;
  }

 private:
  std::size_t count_listening() const {
    const std::string l = log();
    std::size_t n = 0;
    for (std::size_t at = l.find("listening"); at != std::string::npos; at = l.find("listening", at + 1)) ++n;
    return n;
  }

  std::uint16_t m_port;
  std::string m_record;
  TempDir m_dir;
  Process m_process;
  int m_starts = 0;
};

}  // namespace edgegw::test
