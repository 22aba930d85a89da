// Broker URLs: mqtt://host:port, mqtts://host:port, unix:///path. IPv6 hosts go in
// brackets: mqtt://[::1]:1883.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgegw::config {

enum class Scheme { mqtt, mqtts, unix_socket, http };  // http: a proxy's (parse_proxy_url)

struct Url {
  Scheme scheme = Scheme::mqtt;
  std::string host;  // without brackets
  std::uint16_t port = 0;
  std::string path;  // unix socket path
  std::string text;  // as written
};

// On failure returns nothing and says why in `why`.
std::optional<Url> parse_url(std::string_view text, std::string& why);
// An HTTP proxy: http://host:port (the port required; no https://, no credentials).
std::optional<Url> parse_proxy_url(std::string_view text, std::string& why);

}  // namespace edgegw::config
