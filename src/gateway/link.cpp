#include "gateway/link.hpp"

#include <cinttypes>

#include "mqtt/tcp_transport.hpp"
#include "util/log.hpp"

namespace edgegw::gateway {
namespace {

// TCP to the broker, or to the proxy and through it (CONNECT) to the broker.
mqtt::TcpTransport tcp_to(const config::Url& url, const config::Proxy* proxy) {
  if (!proxy || proxy->url.host.empty()) return mqtt::TcpTransport::tcp(url.host, url.port);
  const config::Credentials& c = proxy->credentials;
  return mqtt::TcpTransport::via_proxy(std::make_unique<mqtt::ProxyTunnel>(proxy->url.host, proxy->url.port, url.host,
                                                                           url.port, c.username, c.password));
}

}  // namespace

bool make_link(const config::Url& url, const config::Tls& tls_config, const char* key, Link& link, std::string& error,
               const config::Proxy* proxy) {
  if (url.scheme == config::Scheme::unix_socket) {
    link.transport = std::make_unique<mqtt::TcpTransport>(mqtt::TcpTransport::unix_socket(url.path));
    return true;
  }
  if (url.scheme == config::Scheme::mqtt) {
    link.transport = std::make_unique<mqtt::TcpTransport>(tcp_to(url, proxy));
    return true;
  }
  const tls::Options options{
      key, tls_config.ca_file, tls_config.cert_file, tls_config.key_file, tls_config.server_name, tls_config.alpn};
  link.context = tls::Context::load(options, error);
  if (!link.context) return false;
  auto t = std::make_unique<tls::Transport>(*link.context, tcp_to(url, proxy), url.host);
  link.tls = t.get();
  link.transport = std::move(t);
  return true;
}

void log_tls(const char* name, const Link& link) {
  if (!link.tls) return;
  const tls::Stats& s = link.tls->stats();
  EGW_LOG(info, "%s: TLS %s%s%s, %s handshake of %" PRIu64 " bytes in %.1f ms, session heap %zu bytes", name,
          link.tls->ciphersuite(), link.tls->alpn()[0] ? ", ALPN " : "", link.tls->alpn(),
          s.last_resumed ? "resumed" : "full", s.last_handshake_bytes, static_cast<double>(s.last_handshake_us) / 1e3,
          link.tls->heap_bytes());
}

void set_credentials(mqtt::SessionOptions& options, const config::Credentials& credentials) {
  options.username = credentials.username;
  if (!credentials.password_file.empty()) options.password = credentials.password;
}

mqtt::Version session_version(config::MqttVersion v) {
  return v == config::MqttVersion::v311 ? mqtt::Version::v311 : mqtt::Version::v5;
}

}  // namespace edgegw::gateway
