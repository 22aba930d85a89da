#include "event/signals.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <cstdlib>

#include "util/log.hpp"

namespace edgegw::event {

SignalWatcher::SignalWatcher(Loop& loop, Handler& handler) : m_loop(loop), m_handler(handler) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  m_fd.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!m_fd || !m_loop.add(m_fd.get(), EPOLLIN, this)) {
    EGW_LOG(error, "cannot watch signals (signalfd/epoll failed)");
    std::abort();
  }
}

SignalWatcher::~SignalWatcher() { m_loop.remove(m_fd.get()); }

void SignalWatcher::on_io(std::uint32_t) {
  signalfd_siginfo info;
  while (::read(m_fd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    m_handler.on_signal(static_cast<int>(info.ssi_signo));
  }
}

}  // namespace edgegw::event
