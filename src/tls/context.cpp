#include <mbedtls/error.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tls/tls.hpp"

namespace edgegw::tls {
namespace {

// ChaCha20-Poly1305 first: the Pi 3 and 4 have no AES instructions, where it is several
// times faster than AES-GCM. Then AES-GCM, for brokers that offer nothing else. All
// ECDHE (forward secrecy); no CBC, no static RSA.
const int k_ciphersuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0,
};

std::string mbedtls_reason(int rc) {
  char text[160];
  mbedtls_strerror(rc, text, sizeof text);
  return text;
}

// "KEY: FILE: cannot read: REASON" when the file cannot be opened (mbedTLS only says
// "file I/O error").
bool readable(const std::string& key, const std::string& path, std::string& error) {
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
    return true;
  }
  error = key + ": " + path + ": cannot read: " + std::strerror(errno);
  return false;
}

}  // namespace

std::unique_ptr<Context> Context::load(const Options& options, std::string& error) {
  std::unique_ptr<Context> c(new Context);
  c->m_options = options;
  mbedtls_entropy_init(&c->m_entropy);
  mbedtls_ctr_drbg_init(&c->m_drbg);
  mbedtls_x509_crt_init(&c->m_ca);
  mbedtls_x509_crt_init(&c->m_cert);
  mbedtls_pk_init(&c->m_key);
  mbedtls_ssl_config_init(&c->m_conf);
  c->m_ready = true;
  const std::string& p = options.key_prefix;

  if (!readable(p + ".ca_file", options.ca_file, error)) return nullptr;
  if (int rc = mbedtls_x509_crt_parse_file(&c->m_ca, options.ca_file.c_str()); rc < 0) {
    error = p + ".ca_file: " + options.ca_file + ": not a PEM or DER certificate list: " + mbedtls_reason(rc);
    return nullptr;
  } else if (rc > 0) {
    error = p + ".ca_file: " + options.ca_file + ": " + std::to_string(rc) + " certificates could not be parsed";
    return nullptr;
  }
  if (!options.cert_file.empty()) {
    if (!readable(p + ".cert_file", options.cert_file, error)) return nullptr;
    if (int rc = mbedtls_x509_crt_parse_file(&c->m_cert, options.cert_file.c_str()); rc != 0) {
      error = p + ".cert_file: " + options.cert_file + ": not a certificate: " + mbedtls_reason(rc);
      return nullptr;
    }
    // The private key must be the service's alone.
    struct stat st;
    if (::stat(options.key_file.c_str(), &st) != 0) {
      error = p + ".key_file: " + options.key_file + ": cannot read: " + std::strerror(errno);
      return nullptr;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      error = p + ".key_file: " + options.key_file + ": readable by group or others (mode " + mode +
              "); make it the service user's alone (chmod 600)";
      return nullptr;
    }
    if (!readable(p + ".key_file", options.key_file, error)) return nullptr;
    if (int rc = mbedtls_pk_parse_keyfile(&c->m_key, options.key_file.c_str(), nullptr); rc != 0) {
      error = p + ".key_file: " + options.key_file + ": not a private key (or encrypted): " + mbedtls_reason(rc);
      return nullptr;
    }
    if (mbedtls_pk_check_pair(&c->m_cert.pk, &c->m_key) != 0) {
      error = p + ".key_file: " + options.key_file + ": does not match the certificate in " + options.cert_file;
      return nullptr;
    }
  }

  static const char k_personal[] = "edgegw";
  if (int rc = mbedtls_ctr_drbg_seed(&c->m_drbg, mbedtls_entropy_func, &c->m_entropy,
                                     reinterpret_cast<const unsigned char*>(k_personal), sizeof k_personal);
      rc != 0) {
    error = p + ": cannot seed the random generator: " + mbedtls_reason(rc);
    return nullptr;
  }
  mbedtls_ssl_config* conf = &c->m_conf;
  if (int rc = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT);
      rc != 0) {
    error = p + ": " + mbedtls_reason(rc);
    return nullptr;
  }
  mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &c->m_drbg);
  mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);  // no switch turns this off
  mbedtls_ssl_conf_ca_chain(conf, &c->m_ca, nullptr);
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);  // TLS 1.2
  mbedtls_ssl_conf_ciphersuites(conf, k_ciphersuites);
  mbedtls_ssl_conf_session_tickets(conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
  mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
  if (!options.cert_file.empty()) {
    if (int rc = mbedtls_ssl_conf_own_cert(conf, &c->m_cert, &c->m_key); rc != 0) {
      error = p + ".cert_file: " + mbedtls_reason(rc);
      return nullptr;
    }
  }
  if (!c->m_options.alpn.empty()) {
    for (const std::string& proto : c->m_options.alpn) c->m_alpn.push_back(proto.c_str());
    c->m_alpn.push_back(nullptr);
    if (int rc = mbedtls_ssl_conf_alpn_protocols(conf, c->m_alpn.data()); rc != 0) {
      error = p + ".alpn: " + mbedtls_reason(rc);
      return nullptr;
    }
  }
  return c;
}

namespace {
bool same_chain(const mbedtls_x509_crt* a, const mbedtls_x509_crt* b) {
  for (; a && b; a = a->next, b = b->next) {
    if (a->raw.len != b->raw.len || (a->raw.len && std::memcmp(a->raw.p, b->raw.p, a->raw.len) != 0)) return false;
  }
  return a == b;
}
}  // namespace

bool Context::same_material(const Context& other) const {
  return same_chain(&m_ca, &other.m_ca) && same_chain(&m_cert, &other.m_cert);
}

void Context::describe(char* buf, std::size_t cap) const {
  int n = 0;
  for (const mbedtls_x509_crt* c = &m_ca; c && c->raw.len; c = c->next) ++n;
  if (!m_cert.raw.len) {
    std::snprintf(buf, cap, "%d CA certificates", n);
    return;
  }
  char subject[160];
  if (mbedtls_x509_dn_gets(subject, sizeof subject, &m_cert.subject) < 0) subject[0] = '\0';
  const mbedtls_x509_time& t = m_cert.valid_to;
  std::snprintf(buf, cap, "client certificate %s, valid until %04d-%02d-%02d %02d:%02d UTC; %d CA certificates",
                subject, t.year, t.mon, t.day, t.hour, t.min, n);
}

Context::~Context() {
  if (!m_ready) return;
  mbedtls_ssl_config_free(&m_conf);
  mbedtls_pk_free(&m_key);
  mbedtls_x509_crt_free(&m_cert);
  mbedtls_x509_crt_free(&m_ca);
  mbedtls_ctr_drbg_free(&m_drbg);
  mbedtls_entropy_free(&m_entropy);
}

}  // namespace edgegw::tls
