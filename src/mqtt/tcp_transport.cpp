#include "mqtt/tcp_transport.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace edgegw::mqtt {

TcpTransport TcpTransport::tcp(std::string host, std::uint16_t port) {
  TcpTransport t;
  t.m_host = std::move(host);
  t.m_port = port;
  return t;
}

TcpTransport TcpTransport::unix_socket(std::string path) {
  TcpTransport t;
  t.m_host = std::move(path);
  t.m_unix = true;
  return t;
}

TcpTransport TcpTransport::via_proxy(std::unique_ptr<ProxyTunnel> tunnel) {
  TcpTransport t = tcp(tunnel->proxy_host(), tunnel->proxy_port());
  t.m_tunnel = std::move(tunnel);
  return t;
}

// Records the failure only: the fd stays open until close(), so the session can take it
// out of epoll before its number can be reused by another connection.
Progress TcpTransport::fail(const char* what, int err) {
  if (m_unix) std::snprintf(m_error, sizeof m_error, "%s unix:%s: %s", what, m_host.c_str(), std::strerror(err));
  else
    std::snprintf(m_error, sizeof m_error, "%s %s%s:%u: %s", what, m_tunnel ? "proxy " : "", m_host.c_str(), m_port,
                  std::strerror(err));
  return Progress::failed;
}

Progress TcpTransport::open() {
  m_fd.reset();
  m_tunneling = false;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = AF_UNIX;
  if (m_unix) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&addr);
    if (m_host.size() >= sizeof sun->sun_path) return fail("connect", ENAMETOOLONG);
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, m_host.c_str(), m_host.size() + 1);
    addr_len = sizeof(sockaddr_un);
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char port[8];
    std::snprintf(port, sizeof port, "%u", m_port);
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(m_host.c_str(), port, &hints, &found);
    if (rc != 0) {
      std::snprintf(m_error, sizeof m_error, "resolve %s%s: %s", m_tunnel ? "proxy " : "", m_host.c_str(),
                    ::gai_strerror(rc));
      return Progress::failed;
    }
    std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
    addr_len = found->ai_addrlen;
    family = found->ai_family;
    ::freeaddrinfo(found);
  }
  m_fd.reset(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!m_fd) return fail("socket", errno);
  if (!m_unix) {
    int one = 1;
    ::setsockopt(m_fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(m_fd.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) == 0) return connected();
  if (errno == EINPROGRESS || errno == EAGAIN) return Progress::want_write;
  return fail("connect", errno);
}

Progress TcpTransport::progress() {
  if (m_tunneling) return tunnel();
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(m_fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return fail("connect", err);
  return connected();
}

Progress TcpTransport::connected() {
  if (!m_tunnel) return Progress::done;
  m_tunneling = true;
  m_tunnel->start();
  return tunnel();
}

Progress TcpTransport::tunnel() {
  const Progress p = m_tunnel->progress(m_fd.get(), m_error);
  if (p == Progress::done) m_tunneling = false;
  return p;
}

const char* TcpTransport::pending() const {
  if (!m_tunnel) return Transport::pending();
  if (!m_tunneling) return "the TCP connect to the proxy";
  return m_tunnel->sending() ? "the proxy to take CONNECT" : "the proxy's answer to CONNECT";
}

void TcpTransport::close_gracefully(std::chrono::milliseconds wait) {
  if (!m_fd) return;
  ::shutdown(m_fd.get(), SHUT_WR);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::uint8_t discard[4096];
  for (;;) {
    const ssize_t n = ::recv(m_fd.get(), discard, sizeof discard, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;  // closed, or gone
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{m_fd.get(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
  m_fd.reset();
}

void TcpTransport::set_user_timeout(std::chrono::milliseconds timeout) {
  if (m_unix || !m_fd) return;
  const unsigned ms = static_cast<unsigned>(timeout.count());
  ::setsockopt(m_fd.get(), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);  // best effort
}

IoResult TcpTransport::read(std::span<std::uint8_t> into) {
  ssize_t n = ::recv(m_fd.get(), into.data(), into.size(), 0);
  if (n > 0) return {IoStatus::ok, static_cast<std::size_t>(n)};
  if (n == 0) return {IoStatus::closed};
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return {IoStatus::would_block};
  fail("read", errno);
  return {IoStatus::error};
}

IoResult TcpTransport::write(std::span<const std::uint8_t> from) {
  ssize_t n = ::send(m_fd.get(), from.data(), from.size(), MSG_NOSIGNAL);
  if (n >= 0) return {IoStatus::ok, static_cast<std::size_t>(n)};
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return {IoStatus::would_block};
  if (errno == EPIPE || errno == ECONNRESET) {
    fail("write", errno);
    return {IoStatus::closed};
  }
  fail("write", errno);
  return {IoStatus::error};
}

}  // namespace edgegw::mqtt
