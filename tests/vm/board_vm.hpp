// The emulated board for the VM tests: qemu-system-aarch64 (virt, Cortex-A72, 2 cores,
// 1 GiB) booting the image tests/vm/build-image.sh made, from its own copy of the disk.
// No IP network: the guest reaches the host through virtio-serial ports, each carried by an
// edgegw-vport pair (tests/vm/vport.cpp) to 127.0.0.1 on both sides:
//   upstream  guest 127.0.0.1:11883 -> host upstream broker
//   local     guest 127.0.0.1:11884 -> host local broker (the power-cut tests)
//   sensor    host 127.0.0.1:sensor_port -> guest 127.0.0.1:1883 (the board's own mosquitto)
//   ctl       the harness runs shell commands in the guest (tests/vm/guest/usr/local/sbin/vm-ctl)
// SIGKILL to QEMU is a power cut: what the guest had not written to its disk is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::test {

struct BoardPorts {
  std::uint16_t upstream = 0;  // host ports; 0: a closed port (the guest's connections are refused)
  std::uint16_t local = 0;
  std::uint16_t sensor = 0;  // the host listens here for the guest's broker; 0: a free port
};

class BoardVm {
 public:
  // Copies the image's disk and puts `files` (host path, name) into the guest's /vm.
  BoardVm(const std::string& image_dir, const std::vector<std::pair<std::string, std::string>>& files,
          BoardPorts ports);
  ~BoardVm();
  BoardVm(const BoardVm&) = delete;
  BoardVm& operator=(const BoardVm&) = delete;

  // Starts QEMU and waits until the guest's control channel is up (multi-user reached far
  // enough). Returns false, with QEMU's words and the console's tail in *why, if it does not.
  bool boot(std::chrono::seconds timeout, std::string* why);
  // Starts QEMU only (for a power cut during boot).
  void start();
  // Waits for the control channel after a reboot the guest started itself.
  bool wait_ready(std::chrono::seconds timeout, std::string* why);
  // The power cut: SIGKILL to QEMU.
  void power_cut();

  // Runs a one-line bash command in the guest; returns its output, rc in *rc (-1: no
  // answer within the timeout).
  std::string sh(const std::string& command, int* rc = nullptr,
                 std::chrono::seconds timeout = std::chrono::seconds(120));
  // Sends a command without waiting for an answer (e.g. "systemctl reboot").
  void send(const std::string& command);
  // Runs `command` every 250 ms until it succeeds; false after the timeout.
  bool wait_until(const std::string& command, std::chrono::seconds timeout);
  // Seconds since QEMU was started (the last boot()).
  double since_start() const;

 private:
  std::string qemu_log() const;  // this boot's
  std::string console_tail(std::size_t bytes = 6000) const;
  void write_line(const std::string& text);
  bool read_until(const std::string& marker, std::chrono::steady_clock::time_point deadline, std::string* out);

  TempDir m_dir;
  std::string m_image;
  std::string m_disk;
  std::vector<Process> m_vports;
  Process m_qemu;
  int m_ctl_listener = -1;
  int m_ctl = -1;
  std::string m_in;  // bytes read from ctl, not yet consumed
  int m_boots = 0;
  unsigned m_commands = 0;
  std::chrono::steady_clock::time_point m_started;
};

}  // namespace edgegw::test
