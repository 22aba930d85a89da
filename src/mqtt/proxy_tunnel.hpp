// A tunnel through an HTTP proxy (HTTP CONNECT, RFC 9110 9.3.6): once TCP reaches the
// proxy, TcpTransport sends "CONNECT host:port" and reads the proxy's answer before TLS or
// MQTT start. Non-blocking like the rest of the connect; only the answer's head is read
// (MSG_PEEK, then exactly its length), so any bytes after it stay in the socket for TLS.
// Made at startup (the request is built once); loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "mqtt/transport.hpp"

namespace edgegw::mqtt {

// The proxy's answer to CONNECT, fed as it arrives: its status line, then header lines up
// to the blank line that ends the head (CRLF or bare LF). A head longer than 4 KiB, or one
// that does not start as HTTP, is malformed.
class ConnectReply {
 public:
  enum class State { reading, accepted, refused, malformed };
  static constexpr std::size_t k_max_head = 4096;

  void reset() { *this = ConnectReply{}; }
  // Takes bytes of the answer; returns how many of them belong to the head (all of them
  // while it is still reading; the rest, after the head, belong to the tunnel).
  std::size_t feed(std::span<const std::uint8_t> bytes);
  State state() const { return m_state; }
  int status() const { return m_status; }  // the status code, 0 until known
  // The status line ("HTTP/1.1 403 Forbidden"), non-printable bytes as '?', cut at 127.
  const char* status_line() const { return m_line; }
  bool too_long() const { return m_head > k_max_head; }

 private:
  void end_status_line();
  State m_state = State::reading;
  std::size_t m_head = 0;      // bytes of the head so far
  std::size_t m_line_len = 0;  // of the current line, CRs not counted
  bool m_in_status = true;     // still in the status line
  int m_status = 0;
  char m_line[128] = "";
  std::size_t m_kept = 0;  // bytes of the status line in m_line
};

class ProxyTunnel {
 public:
  // Through the proxy at proxy_host:proxy_port to host:port; with a user name, the proxy
  // gets "Proxy-Authorization: Basic" with it and the password (never logged).
  ProxyTunnel(std::string proxy_host, std::uint16_t proxy_port, const std::string& host, std::uint16_t port,
              const std::string& username, const std::string& password);

  const std::string& proxy_host() const { return m_proxy_host; }
  std::uint16_t proxy_port() const { return m_proxy_port; }

  // On the socket `fd`, connected to the proxy: sends CONNECT, then reads the answer.
  // Call start() once per connection, then progress() whenever the fd is ready; failed
  // puts the reason in `error`.
  void start();
  Progress progress(int fd, std::span<char> error);
  // The last failure was the proxy's refusal that retrying cannot mend: it wants (other)
  // credentials (407), or forbids this destination (403).
  bool refused_until_fixed() const { return m_reply.status() == 407 || m_reply.status() == 403; }
  bool sending() const { return m_sent < m_request.size(); }

 private:
  Progress fail(std::span<char> error, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
  std::string m_proxy_host;
  std::uint16_t m_proxy_port;
  std::string m_target;   // "host:port", IPv6 in brackets
  std::string m_request;  // the whole CONNECT request
  std::size_t m_sent = 0;
  ConnectReply m_reply;
};

}  // namespace edgegw::mqtt
