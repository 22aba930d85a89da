// One session's connection, as the config describes it: TCP or a unix socket, with TLS
// for mqtts://, through an HTTP proxy for an uplink that has one. Made by the daemon (ingest and uplink) and by the
// self-test and canary (their probe sessions).
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "mqtt/session.hpp"
#include "mqtt/transport.hpp"
#include "tls/tls.hpp"

namespace edgegw::gateway {

struct Link {
  std::unique_ptr<tls::Context> context;
  std::unique_ptr<mqtt::Transport> transport;
  tls::Transport* tls = nullptr;  // = transport, when it is TLS
};

// The connection for `url`: TCP or a unix socket, with TLS for mqtts:// (its context
// loaded now, so a bad CA or key file is an error here, with `key` in the message);
// through `proxy` (HTTP CONNECT) when given one with a host. TLS checks the broker's name.
bool make_link(const config::Url& url, const config::Tls& tls, const char* key, Link& link, std::string& error,
               const config::Proxy* proxy = nullptr);

// Logs what TLS `link` negotiated (cipher suite, ALPN, handshake) once session `name`
// (ingest, uplink) has connected; nothing for plain TCP or a unix socket.
void log_tls(const char* name, const Link& link);

// The session's user name and password, as the config gives them.
void set_credentials(mqtt::SessionOptions& options, const config::Credentials& credentials);

// The MQTT version a session starts with for the config's setting (automatic: 5, falling
// back to 3.1.1).
mqtt::Version session_version(config::MqttVersion v);

}  // namespace edgegw::gateway
