#include "support/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>
#include <utility>

#include "support/temp_dir.hpp"

namespace edgegw::test {
namespace {

void redirect(const std::string& path, int target, int flags) {
  if (path.empty()) return;
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) ::_exit(126);
  ::dup2(fd, target);
  ::close(fd);
}

}  // namespace

Process::Process(const std::vector<std::string>& argv, const Redirects& r) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  m_pid = ::fork();
  if (m_pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    redirect(r.stdin_file.empty() ? "/dev/null" : r.stdin_file, 0, O_RDONLY);
    redirect(r.stdout_file, 1, O_WRONLY | O_CREAT | O_TRUNC);
    if (r.stderr_file == r.stdout_file && !r.stdout_file.empty()) ::dup2(1, 2);
    else redirect(r.stderr_file, 2, O_WRONLY | O_CREAT | O_TRUNC);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  if (m_pid < 0) ADD_FAILURE() << "fork failed for " << argv[0];
}

Process::~Process() { kill(); }

Process::Process(Process&& other) noexcept : m_pid(std::exchange(other.m_pid, -1)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    kill();
    m_pid = std::exchange(other.m_pid, -1);
  }
  return *this;
}

bool Process::running() {
  if (m_pid <= 0) return false;
  if (::waitpid(m_pid, nullptr, WNOHANG) == 0) return true;
  m_pid = -1;  // exited (and reaped) or not ours
  return false;
}

void Process::signal(int signo) {
  if (m_pid > 0) ::kill(m_pid, signo);
}

int Process::wait(std::chrono::milliseconds timeout) {
  if (m_pid <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(m_pid, &status, WNOHANG);
    if (r == m_pid) {
      m_pid = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (r < 0 || std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Process::kill() {
  if (m_pid <= 0) return;
  ::kill(m_pid, SIGCONT);
  ::kill(m_pid, SIGKILL);
  ::waitpid(m_pid, nullptr, 0);
  m_pid = -1;
}

int run(const std::vector<std::string>& argv, std::string* output, std::chrono::seconds timeout,
        const std::string& stdin_file) {
  TempDir dir;
  Redirects r;
  r.stdin_file = stdin_file;
  if (output) r.stdout_file = r.stderr_file = dir.file("output");
  Process p(argv, r);
  int code = p.wait(timeout);
  if (code == -1) {
    p.kill();
    ADD_FAILURE() << argv[0] << " did not finish within " << timeout.count() << " s";
  }
  if (output) *output = read_file(dir.file("output"));
  return code;
}

std::vector<std::string> own_binary(const std::string& path) {
  std::vector<std::string> argv;
  std::string emulator = EDGEGW_EMULATOR;
  for (std::size_t start = 0; !emulator.empty() && start <= emulator.size();) {
    std::size_t end = emulator.find('|', start);
    if (end == std::string::npos) end = emulator.size();
    argv.push_back(emulator.substr(start, end - start));
    start = end + 1;
  }
  argv.push_back(path);
  return argv;
}

}  // namespace edgegw::test
