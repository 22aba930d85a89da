#include "mqtt/proxy_tunnel.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace edgegw::mqtt {
namespace {

std::string base64(const std::string& in) {
  static constexpr char k_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 3; ++j) v = v << 8 | (j < n ? static_cast<std::uint8_t>(in[i + j]) : 0u);
    for (std::size_t j = 0; j < 4; ++j) out += j <= n ? k_digits[(v >> (18 - 6 * j)) & 63] : '=';
  }
  return out;
}

}  // namespace

std::size_t ConnectReply::feed(std::span<const std::uint8_t> bytes) {
  static constexpr char k_http[] = "HTTP/";
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (m_state != State::reading) return i;
    if (++m_head > k_max_head) {
      m_state = State::malformed;
      return i + 1;
    }
    const char c = static_cast<char>(bytes[i]);
    if (c == '\r') continue;
    if (c != '\n') {
      ++m_line_len;
      if (!m_in_status) continue;
      if (m_kept + 1 < sizeof m_line) {
        m_line[m_kept++] = c >= 0x20 && c < 0x7f ? c : '?';
        m_line[m_kept] = '\0';
      }
      if (m_line_len <= 5 && c != k_http[m_line_len - 1]) m_state = State::malformed;
      continue;
    }
    if (m_in_status) end_status_line();
    else if (m_line_len == 0) m_state = m_status / 100 == 2 ? State::accepted : State::refused;
    m_line_len = 0;
  }
  return bytes.size();
}

// "HTTP/1.1 200 Connection established": the code is the three digits after the first space.
void ConnectReply::end_status_line() {
  m_in_status = false;
  const char* space = std::strchr(m_line, ' ');
  int code = 0;
  for (int i = 1; space && i <= 3; ++i) {
    if (space[i] < '0' || space[i] > '9') space = nullptr;
    else code = code * 10 + (space[i] - '0');
  }
  if (!space || m_line_len < 5 || code < 100 || (space[4] != ' ' && space[4] != '\0')) m_state = State::malformed;
  else m_status = code;
}

ProxyTunnel::ProxyTunnel(std::string proxy_host, std::uint16_t proxy_port, const std::string& host, std::uint16_t port,
                         const std::string& username, const std::string& password)
    : m_proxy_host(std::move(proxy_host)), m_proxy_port(proxy_port) {
  m_target = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  m_request = "CONNECT " + m_target + " HTTP/1.1\r\nHost: " + m_target + "\r\n";
  if (!username.empty()) m_request += "Proxy-Authorization: Basic " + base64(username + ":" + password) + "\r\n";
  m_request += "\r\n";
}

void ProxyTunnel::start() {
  m_sent = 0;
  m_reply.reset();
}

Progress ProxyTunnel::fail(std::span<char> error, const char* fmt, ...) {
  int n = std::snprintf(error.data(), error.size(), "proxy %s:%u ", m_proxy_host.c_str(), m_proxy_port);
  if (n < 0 || static_cast<std::size_t>(n) >= error.size()) return Progress::failed;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(error.data() + n, error.size() - static_cast<std::size_t>(n), fmt, ap);
  va_end(ap);
  return Progress::failed;
}

Progress ProxyTunnel::progress(int fd, std::span<char> error) {
  while (sending()) {
    const ssize_t n = ::send(fd, m_request.data() + m_sent, m_request.size() - m_sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Progress::want_write;
    if (n < 0 && errno != EINTR) return fail(error, "send: %s", std::strerror(errno));
    if (n > 0) m_sent += static_cast<std::size_t>(n);
  }
  for (;;) {
    // Peeked, then only the head taken: what follows it is the tunnel's (TLS) already.
    std::uint8_t buf[512];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Progress::want_read;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(error, "read: %s", std::strerror(errno));
    if (n == 0) return fail(error, "closed the connection before answering CONNECT %s", m_target.c_str());
    const std::size_t head = m_reply.feed(std::span(buf, static_cast<std::size_t>(n)));
    n = ::recv(fd, buf, head, 0);
    if (n != static_cast<ssize_t>(head)) return fail(error, "read: %s", n < 0 ? std::strerror(errno) : "short read");
    switch (m_reply.state()) {
      case ConnectReply::State::reading: continue;
      case ConnectReply::State::accepted: return Progress::done;
      case ConnectReply::State::refused:
        return fail(error, "refused CONNECT %s: %s", m_target.c_str(), m_reply.status_line());
      case ConnectReply::State::malformed:
        return fail(error, "gave no HTTP answer to CONNECT %s (\"%s\"%s)", m_target.c_str(), m_reply.status_line(),
                    m_reply.too_long() ? ", a head over 4096 bytes" : "");
    }
  }
}

}  // namespace edgegw::mqtt
