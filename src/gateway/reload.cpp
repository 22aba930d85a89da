#include "gateway/reload.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "gateway/gateway.hpp"
#include "util/log.hpp"

namespace edgegw::gateway {
namespace {

timespec mtime_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mtim : timespec{};
}

// One session's files, read again.
struct Fresh {
  std::unique_ptr<tls::Context> context;  // a TLS link's
  std::string password;                   // with a password_file
  bool tls_changed = false, password_changed = false;
};

// False with `error` naming the key, the file and why.
bool read_again(const Link& link, const config::Credentials& credentials, const std::string& password_in_use,
                Fresh& fresh, std::string& error) {
  if (link.context) {
    fresh.context = tls::Context::load(link.context->options(), error);
    if (!fresh.context) return false;
    fresh.tls_changed = !fresh.context->same_material(*link.context);
  }
  if (!credentials.password_file.empty()) {
    config::Credentials c = credentials;
    std::vector<std::string> errors;
    if (!config::read_password(c, errors)) {
      error = errors.front();
      return false;
    }
    fresh.password_changed = c.password != password_in_use;
    fresh.password = std::move(c.password);
  }
  return true;
}

// Session `name` takes what changed: a clean DISCONNECT, then a connect at once.
void apply(const char* name, Link& link, mqtt::Session& session, const config::Credentials& credentials, Fresh& fresh,
           std::string& password_in_use) {
  if (!fresh.tls_changed && !fresh.password_changed) {
    if (link.context || !credentials.password_file.empty())
      EGW_LOG(info, "reload: %s: files unchanged, connection kept", name);
    return;
  }
  session.stop();  // the unacknowledged window stays, to be resent with its seq
  if (fresh.tls_changed) {
    char text[320];
    fresh.context->describe(text, sizeof text);
    link.tls->use(*fresh.context);
    link.context = std::move(fresh.context);
    EGW_LOG(notice, "reload: %s: new TLS files loaded: %s", name, text);
  }
  if (fresh.password_changed) {
    password_in_use = std::move(fresh.password);
    session.set_password(password_in_use);
    EGW_LOG(notice, "reload: %s: new password loaded from %s", name, credentials.password_file.c_str());
  }
  EGW_LOG(notice, "reload: %s: reconnecting with it", name);
  session.start();
}

}  // namespace

Reloads::Reloads(const config::Config& config)
    : password{config.ingest.credentials.password, config.uplink.credentials.password},
      config_mtime(mtime_of(config.source)) {}

bool Gateway::reload() {
  if (m_phase != Phase::running) {
    EGW_LOG(notice, "reload: ignored: the gateway is not running");
    return false;
  }
  EGW_LOG(notice,
          "reload: reading tls.ca_file, tls.cert_file, tls.key_file and password_file again; every other setting "
          "takes effect at a restart");
  Fresh in, up;
  std::string error;
  if (!read_again(m_in, m_config.ingest.credentials, m_reloads.password[0], in, error) ||
      !read_again(m_up, m_config.uplink.credentials, m_reloads.password[1], up, error)) {
    ++m_reloads.failed;
    std::snprintf(m_reloads.last_error, sizeof m_reloads.last_error, "%s", error.c_str());
    EGW_LOG(error, "reload: %s; nothing changed: the certificates, keys and passwords in use are kept", error.c_str());
    return false;
  }
  ++m_reloads.done;
  m_reloads.last_error[0] = '\0';
  apply("ingest", m_in, *m_ingest, m_config.ingest.credentials, in, m_reloads.password[0]);
  apply("uplink", m_up, *m_uplink, m_config.uplink.credentials, up, m_reloads.password[1]);
  const timespec now = mtime_of(m_config.source);
  if (now.tv_sec != m_reloads.config_mtime.tv_sec || now.tv_nsec != m_reloads.config_mtime.tv_nsec) {
    EGW_LOG(warning,
            "reload: %s changed since the start; a reload reads only the TLS and password files: the "
            "configuration's settings take effect at a restart (systemctl restart edgegw)",
            m_config.source.c_str());
  }
  return true;
}

}  // namespace edgegw::gateway
