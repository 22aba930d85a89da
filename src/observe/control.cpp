#include "observe/control.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/log.hpp"

namespace edgegw::observe {
namespace {

bool make_address(const std::string& path, sockaddr_un& addr, std::string& error) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    error = path + ": longer than a unix socket path may be (" + std::to_string(sizeof addr.sun_path - 1) + " bytes)";
    return false;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace

ControlServer::ControlServer(event::Loop& loop, StatusSource& source) : m_loop(loop), m_source(source) {
  for (Client& c : m_clients) c.server = this;
}

ControlServer::~ControlServer() {
  for (Client& c : m_clients) drop(c);
  if (m_fd) {
    m_loop.remove(m_fd.get());
    ::unlink(m_path.c_str());
  }
}

bool ControlServer::listen(const std::string& path, std::string& error) {
  sockaddr_un addr;
  if (!make_address(path, addr, error)) return false;
  m_fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!m_fd) {
    error = path + ": socket: " + std::strerror(errno);
    return false;
  }
  ::unlink(path.c_str());            // a stale socket of an earlier run (the spool lock keeps runs apart)
  const mode_t old = ::umask(0177);  // created 0600
  const int rc = ::bind(m_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(m_fd.get(), k_clients) != 0 || !m_loop.add(m_fd.get(), EPOLLIN, this)) {
    error = path + ": cannot listen: " + std::strerror(errno);
    m_fd.reset();
    return false;
  }
  m_path = path;
  return true;
}

void ControlServer::on_io(std::uint32_t) {
  for (;;) {
    util::Fd fd(::accept4(m_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    Client* free = nullptr;
    for (Client& c : m_clients) {
      if (!c.fd) free = &c;
    }
    if (!free) continue;  // all busy: this one is closed unanswered
    free->fd = std::move(fd);
    free->got = 0;
    if (!m_loop.add(free->fd.get(), EPOLLIN, free)) free->fd.reset();
  }
}

void ControlServer::Client::on_io(std::uint32_t) {
  const ssize_t n = ::read(fd.get(), request + got, sizeof request - 1 - got);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    server->drop(*this);
    return;
  }
  got += static_cast<std::size_t>(n);
  if (std::memchr(request, '\n', got) || got == sizeof request - 1) server->answer(*this);
}

void ControlServer::answer(Client& c) {
  c.request[c.got] = '\0';
  const bool json = std::strncmp(c.request, "json", 4) == 0;
  const std::size_t len = m_source.render_status(json, m_reply, sizeof m_reply);
  // The reply fits a unix socket's buffer; a client too slow to take it gets what fit.
  (void)::send(c.fd.get(), m_reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  drop(c);
}

void ControlServer::drop(Client& c) {
  if (!c.fd) return;
  m_loop.remove(c.fd.get());
  c.fd.reset();
}

bool query_status(const std::string& path, bool json, std::string& reply, std::string& error) {
  sockaddr_un addr;
  if (!make_address(path, addr, error)) return false;
  util::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "no edgegw daemon answers at " + path + ": " + std::strerror(errno);
    return false;
  }
  const char* request = json ? "json\n" : "text\n";
  if (::send(fd.get(), request, 5, MSG_NOSIGNAL) != 5) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  char buf[4096];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) {
      error = path + ": the daemon did not answer within 5 s";
      return false;
    }
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      error = path + ": " + std::strerror(errno);
      return false;
    }
    if (n == 0) return true;
    reply.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace edgegw::observe
