#include "gateway/reload.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <span>
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

// Session `name` takes what changed, on every link it may use (the uplink has one per
// broker, all on [uplink.tls]): a clean DISCONNECT, then a connect at once.
void apply(const char* name, std::span<Link> links, std::span<Fresh> fresh, mqtt::Session& session,
           const config::Credentials& credentials, std::string& password_in_use, Failover* failover = nullptr) {
  bool tls_changed = false;
  for (const Fresh& f : fresh) tls_changed = tls_changed || f.tls_changed;
  const bool password_changed = fresh[0].password_changed;
  if (!tls_changed && !password_changed) {
    if (links[0].context || !credentials.password_file.empty())
      EGW_LOG(info, "reload: %s: files unchanged, connection kept", name);
    return;
  }
  if (failover) failover->reconnecting();  // the same broker again; a probe stops first
  session.stop();                          // the unacknowledged window stays, to be resent with its seq
  if (tls_changed) {
    char text[320] = "";
    for (std::size_t i = 0; i < links.size(); ++i) {
      if (!fresh[i].context) continue;  // a plain mqtt:// broker in the list
      if (!text[0]) fresh[i].context->describe(text, sizeof text);
      links[i].tls->use(*fresh[i].context);
      links[i].context = std::move(fresh[i].context);
    }
    EGW_LOG(notice, "reload: %s: new TLS files loaded: %s", name, text);
  }
  if (password_changed) {
    password_in_use = std::move(fresh[0].password);
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
  // The uplink's links, one per broker; none when a test gave the transport.
  Link none;
  std::span<Link> up_links = m_failover.links();
  if (up_links.empty()) up_links = {&none, 1};
  Fresh in;
  std::vector<Fresh> up(up_links.size());
  std::string error;
  bool read = read_again(m_in, m_config.ingest.credentials, m_reloads.password[0], in, error);
  for (std::size_t i = 0; read && i < up.size(); ++i)
    read = read_again(up_links[i], m_config.uplink.credentials, m_reloads.password[1], up[i], error);
  if (!read) {
    ++m_reloads.failed;
    std::snprintf(m_reloads.last_error, sizeof m_reloads.last_error, "%s", error.c_str());
    EGW_LOG(error, "reload: %s; nothing changed: the certificates, keys and passwords in use are kept", error.c_str());
    return false;
  }
  ++m_reloads.done;
  m_reloads.last_error[0] = '\0';
  apply("ingest", {&m_in, 1}, {&in, 1}, *m_ingest, m_config.ingest.credentials, m_reloads.password[0]);
  apply("uplink", up_links, up, *m_uplink, m_config.uplink.credentials, m_reloads.password[1], &m_failover);
  // The probe session (several brokers) connects with the same password.
  for (auto& s : m_uplinks)
    if (s && s.get() != m_uplink && !m_config.uplink.credentials.password_file.empty())
      s->set_password(m_reloads.password[1]);
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
