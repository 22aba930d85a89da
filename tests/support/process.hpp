// Child processes for tests (brokers, mosquitto_pub/_sub, the edgegw binary). fork + exec,
// which also works when the test itself runs under QEMU user mode.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace edgegw::test {

struct Redirects {
  std::string stdin_file;   // empty: /dev/null
  std::string stdout_file;  // empty: inherit
  std::string stderr_file;  // empty: inherit
};

class Process {
 public:
  Process() = default;
  Process(const std::vector<std::string>& argv, const Redirects& redirects = {});
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;

  pid_t pid() const { return m_pid; }
  bool running();
  void signal(int signo);
  // Waits for exit; returns the exit code, 128+N for a signal, or -1 on timeout (the
  // process is then left running).
  int wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap.
  void kill();

 private:
  pid_t m_pid = -1;
};

// Runs argv to completion (killed after `timeout`) and returns its exit code; stdout and
// stderr together go to *output when given.
int run(const std::vector<std::string>& argv, std::string* output = nullptr,
        std::chrono::seconds timeout = std::chrono::seconds(60), const std::string& stdin_file = "");

// This build's own binary behind the emulator prefix, when cross-built (EDGEGW_EMULATOR
// holds CMAKE_CROSSCOMPILING_EMULATOR joined with '|').
std::vector<std::string> own_binary(const std::string& path);

}  // namespace edgegw::test
