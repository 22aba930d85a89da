// Transport over TCP (IPv4 or IPv6) or a unix stream socket, or over TCP through an HTTP
// proxy (proxy_tunnel.hpp). Name resolution (getaddrinfo) runs when a connection is
// opened, never on the data path.
#pragma once

#include <memory>
#include <string>

#include "mqtt/proxy_tunnel.hpp"
#include "mqtt/transport.hpp"
#include "util/fd.hpp"

namespace edgegw::mqtt {

class TcpTransport : public Transport {
 public:
  // host may be a name, an IPv4 address or an IPv6 address (without brackets).
  static TcpTransport tcp(std::string host, std::uint16_t port);
  static TcpTransport unix_socket(std::string path);
  // TCP to the tunnel's proxy, then CONNECT through it to the tunnel's target.
  static TcpTransport via_proxy(std::unique_ptr<ProxyTunnel> tunnel);

  Progress open() override;
  Progress progress() override;
  IoResult read(std::span<std::uint8_t> into) override;
  IoResult write(std::span<const std::uint8_t> from) override;
  void close() override { m_fd.reset(); }
  void close_gracefully(std::chrono::milliseconds wait) override;
  void set_user_timeout(std::chrono::milliseconds timeout) override;
  const char* pending() const override;
  bool failed_until_fixed() const override { return m_tunneling && m_tunnel->refused_until_fixed(); }
  int fd() const override { return m_fd.get(); }
  const char* error() const override { return m_error; }

 private:
  TcpTransport() = default;
  Progress fail(const char* what, int err);
  Progress connected();  // TCP is up: done, or on to the proxy's tunnel
  Progress tunnel();
  std::string m_host;  // or the unix socket path
  std::uint16_t m_port = 0;
  bool m_unix = false;
  std::unique_ptr<ProxyTunnel> m_tunnel;
  bool m_tunneling = false;  // TCP is up, the tunnel is not yet
  util::Fd m_fd;
  char m_error[256] = "";
};

}  // namespace edgegw::mqtt
