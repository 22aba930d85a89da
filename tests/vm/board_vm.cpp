#include "vm/board_vm.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "support/broker.hpp"

namespace edgegw::test {
namespace {

using Clock = std::chrono::steady_clock;

int listen_unix(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1) != 0) {
    ADD_FAILURE() << "cannot listen on " << path << ": " << std::strerror(errno);
  }
  return fd;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

BoardVm::BoardVm(const std::string& image_dir, const std::vector<std::pair<std::string, std::string>>& files,
                 BoardPorts ports)
    : m_image(image_dir), m_disk(m_dir.file("disk.ext4")) {
  std::string out;
  EXPECT_EQ(run({"cp", "--sparse=always", m_image + "/base.ext4", m_disk}, &out), 0) << out;
  std::string commands = "cd /vm\n";
  for (const auto& [host, name] : files) commands += "write " + host + " " + name + "\n";
  EXPECT_EQ(run({"debugfs", "-w", "-f", m_dir.write("debugfs.cmd", commands), m_disk}, &out), 0) << out;
  EXPECT_EQ(run({"debugfs", "-R", "ls -l /vm", m_disk}, &out), 0) << out;
  for (const auto& [host, name] : files)
    EXPECT_NE(out.find(" " + name), std::string::npos) << name << " not in /vm:\n" << out;

  // The host ends of the TCP bridges; each accepts one QEMU after another.
  const std::string vport = std::string(EDGEGW_BIN_DIR) + "/edgegw-vport";
  auto bridge = [&](const std::string& name, const std::string& mode, std::uint16_t port) {
    std::vector<std::string> argv = own_binary(vport);
    argv.insert(argv.end(), {"--accept-link", m_dir.file(name + ".sock"), mode, "127.0.0.1:" + std::to_string(port)});
    m_vports.emplace_back(argv, Redirects{.stderr_file = m_dir.file("vport-" + name + ".log")});
  };
  // Ports without a host side still get a bridge to a closed port: the guest sees refusals.
  bridge("upstream", "--connect", ports.upstream ? ports.upstream : 9);
  bridge("local", "--connect", ports.local ? ports.local : 9);
  // Every port exists in every boot: edgegw's unit starts after the guest's bridges, and a
  // bridge waits 90 s for a port that is not there.
  bridge("sensor", "--listen", ports.sensor ? ports.sensor : free_port());
  for (const char* name : {"upstream", "local", "sensor"}) {
    for (int i = 0; i < 500 && !exists(m_dir.file(std::string(name) + ".sock")); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  m_ctl_listener = listen_unix(m_dir.file("ctl.sock"));
}

BoardVm::~BoardVm() {
  m_qemu.kill();
  if (m_ctl >= 0) ::close(m_ctl);
  if (m_ctl_listener >= 0) ::close(m_ctl_listener);
}

bool BoardVm::boot(std::chrono::seconds timeout, std::string* why) {
  start();
  const auto deadline = m_started + timeout;
  pollfd p{m_ctl_listener, POLLIN, 0};
  if (::poll(&p, 1, remaining_ms(deadline)) != 1 ||
      (m_ctl = ::accept4(m_ctl_listener, nullptr, nullptr, SOCK_CLOEXEC)) < 0) {
    *why = "QEMU never connected its control port: " + read_file(qemu_log());
    return false;
  }
  return wait_ready(std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now()), why);
}

void BoardVm::start() {
  power_cut();
  if (m_ctl_listener >= 0) {  // a connection QEMU made but nobody accepted (a cut during boot)
    pollfd p{m_ctl_listener, POLLIN, 0};
    if (::poll(&p, 1, 0) == 1) ::close(::accept4(m_ctl_listener, nullptr, nullptr, SOCK_CLOEXEC));
  }
  ++m_boots;
  std::vector<std::string> argv = {"qemu-system-aarch64",
                                   "-M",
                                   "virt",
                                   "-cpu",
                                   "cortex-a72",
                                   "-smp",
                                   "2",
                                   "-m",
                                   "1024",
                                   "-display",
                                   "none",
                                   "-monitor",
                                   "none",
                                   "-serial",
                                   "file:" + m_dir.file("console-" + std::to_string(m_boots) + ".log"),
                                   "-kernel",
                                   m_image + "/vmlinuz",
                                   "-initrd",
                                   m_image + "/initrd.gz",
                                   "-append",
                                   "console=ttyAMA0 root=/dev/vda rw quiet",
                                   "-drive",
                                   "if=none,id=hd,file=" + m_disk + ",format=raw,cache=writeback",
                                   "-device",
                                   "virtio-blk-pci,drive=hd",
                                   "-nic",
                                   "none",
                                   "-device",
                                   "virtio-serial-pci"};
  for (const std::string p : {"ctl", "upstream", "local", "sensor"}) {
    argv.insert(argv.end(), {"-chardev", "socket,id=" + p + ",path=" + m_dir.file(p + ".sock"), "-device",
                             "virtserialport,chardev=" + p + ",name=" + p});
  }
  m_started = Clock::now();
  m_qemu = Process(argv, Redirects{.stdout_file = qemu_log(), .stderr_file = qemu_log()});
}

bool BoardVm::wait_ready(std::chrono::seconds timeout, std::string* why) {
  std::string ignored;
  if (read_until("@@ready\n", Clock::now() + timeout, &ignored)) return true;
  *why = "the board's control channel did not come up within " + std::to_string(timeout.count()) + " s; QEMU said:\n" +
         read_file(qemu_log()) + "\nconsole:\n" + console_tail();
  return false;
}

void BoardVm::power_cut() {
  m_qemu.kill();
  if (m_ctl >= 0) ::close(m_ctl);
  m_ctl = -1;
  m_in.clear();
}

bool BoardVm::read_until(const std::string& marker, Clock::time_point deadline, std::string* out) {
  for (;;) {
    if (std::size_t at = m_in.find(marker); at != std::string::npos) {
      *out = m_in.substr(0, at + marker.size());
      m_in.erase(0, at + marker.size());
      return true;
    }
    pollfd p{m_ctl, POLLIN, 0};
    if (m_ctl < 0 || ::poll(&p, 1, remaining_ms(deadline)) != 1) return false;
    char buf[4096];
    ssize_t n = ::read(m_ctl, buf, sizeof buf);
    if (n <= 0) return false;
    m_in.append(buf, static_cast<std::size_t>(n));
  }
}

void BoardVm::send(const std::string& command) { write_line("0 " + command); }

// A board that is down gets nothing; sh() then answers rc -1 and the caller says what failed.
void BoardVm::write_line(const std::string& text) {
  const std::string line = text + "\n";
  if (m_ctl >= 0) ::send(m_ctl, line.data(), line.size(), MSG_NOSIGNAL);
}

std::string BoardVm::sh(const std::string& command, int* rc, std::chrono::seconds timeout) {
  // Tagged, so that the late answer to a command that timed out is not taken for this one's.
  const std::string tag = std::to_string(++m_commands);
  write_line(tag + " " + command);
  const std::string marker = "\n@@" + tag + " rc ";
  std::string out, number;
  int code = -1;
  if (read_until(marker, Clock::now() + timeout, &out) &&
      read_until("\n", Clock::now() + std::chrono::seconds(5), &number)) {
    code = std::atoi(number.c_str());
    out.erase(out.size() - marker.size());
    if (std::size_t at = out.rfind("@@"); at != std::string::npos && out.find('\n', at) != std::string::npos) {
      out.erase(0, out.find('\n', at) + 1);  // what came before: earlier answers, "@@ready" of a restarted agent
    }
  }
  if (rc) *rc = code;
  return out;
}

bool BoardVm::wait_until(const std::string& command, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  do {
    int rc = -1;
    sh(command, &rc, std::chrono::seconds(30));
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  } while (Clock::now() < deadline);
  return false;
}

double BoardVm::since_start() const { return std::chrono::duration<double>(Clock::now() - m_started).count(); }

std::string BoardVm::qemu_log() const { return m_dir.file("qemu-" + std::to_string(m_boots) + ".log"); }

std::string BoardVm::console_tail(std::size_t bytes) const {
  std::string all = read_file(m_dir.file("console-" + std::to_string(m_boots) + ".log"));
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

}  // namespace edgegw::test
