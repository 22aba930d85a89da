#include "config/url.hpp"

#include <charconv>

namespace edgegw::config {

namespace {

// "host", "host:port" or "[v6]:port" (a trailing '/' ignored) into url.host and url.port
// (kept when not given).
bool parse_host_port(std::string_view rest, Url& url, std::string& why) {
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const bool has_port = rest.find(':') != std::string_view::npos;  // "[::1]" too: then it is missing
  std::string_view port;
  if (rest.starts_with("[")) {
    std::size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      why = "an IPv6 address needs a closing ']'";
      return false;
    }
    url.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        why = "expected ':port' after ']'";
        return false;
      }
      port = rest.substr(1);
    }
  } else {
    std::size_t colon = rest.rfind(':');
    url.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (url.host.empty() || url.host.find_first_of("/?#@ ") != std::string::npos) {
    why = "expected a host name or address (mqtt://host:port)";
    return false;
  }
  if (has_port) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      why = "the port must be a number from 1 to 65535";
      return false;
    }
    url.port = static_cast<std::uint16_t>(value);
  }
  return true;
}

}  // namespace

std::optional<Url> parse_url(std::string_view text, std::string& why) {
  Url url;
  url.text = std::string(text);
  std::string_view rest;
  if (text.starts_with("unix://")) {
    url.scheme = Scheme::unix_socket;
    url.path = std::string(text.substr(7));
    if (url.path.empty() || url.path[0] != '/') {
      why = "a unix URL needs an absolute path (unix:///run/mosquitto/mqtt.sock)";
      return std::nullopt;
    }
    return url;
  }
  if (text.starts_with("mqtt://")) {
    url.scheme = Scheme::mqtt;
    url.port = 1883;
    rest = text.substr(7);
  } else if (text.starts_with("mqtts://")) {
    url.scheme = Scheme::mqtts;
    url.port = 8883;
    rest = text.substr(8);
  } else {
    why = "the scheme must be mqtt://, mqtts:// or unix://";
    return std::nullopt;
  }
  if (!parse_host_port(rest, url, why)) return std::nullopt;
  return url;
}

std::optional<Url> parse_proxy_url(std::string_view text, std::string& why) {
  Url url;
  url.text = std::string(text);
  url.scheme = Scheme::http;
  if (!text.starts_with("http://")) {
    why = text.starts_with("https://") ? "an https:// proxy is not supported; give its http:// address"
                                       : "the scheme must be http:// (http://proxy.example.com:3128)";
    return std::nullopt;
  }
  std::string_view rest = text.substr(7);
  if (rest.find('@') != std::string_view::npos) {
    why = "put no credentials in the URL; use proxy_username and proxy_password_file";
    return std::nullopt;
  }
  if (!parse_host_port(rest, url, why)) return std::nullopt;
  if (url.port == 0) {
    why = "needs a port (http://proxy.example.com:3128)";
    return std::nullopt;
  }
  return url;
}

}  // namespace edgegw::config
