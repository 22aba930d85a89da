#include <arpa/inet.h>
#include <malloc.h>
#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

#include "tls/tls.hpp"

namespace edgegw::tls {
namespace {

std::uint64_t now_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

std::size_t heap_in_use() { return mallinfo2().uordblks; }

// Appends to a fixed buffer, cutting at its end.
void append(char* buf, std::size_t cap, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void append(char* buf, std::size_t cap, const char* fmt, ...) {
  const std::size_t used = std::strlen(buf);
  if (used + 1 >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf + used, cap - used, fmt, ap);
  va_end(ap);
}

const char* alert_name(int alert) {
  switch (alert) {
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 48: return "unknown_ca";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 112: return "unrecognized_name";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return "alert";
  }
}

// Calls f(tag, bytes, len) for each GeneralName of the certificate's subjectAltName
// extension. mbedTLS 2.28 lists only dNSName entries itself; edgegw needs iPAddress too.
template <typename F>
void for_each_san(const mbedtls_x509_crt& crt, F f) {
  unsigned char* p = crt.v3_ext.p;
  if (!p) return;
  const unsigned char* end = p + crt.v3_ext.len;
  std::size_t len = 0;
  if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return;
  while (p < end) {
    std::size_t ext_len = 0;
    if (mbedtls_asn1_get_tag(&p, end, &ext_len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return;
    const unsigned char* ext_end = p + ext_len;
    mbedtls_asn1_buf oid;
    if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0) return;
    oid.p = p;
    p += oid.len;
    int critical = 0;
    (void)mbedtls_asn1_get_bool(&p, ext_end, &critical);  // optional
    std::size_t value_len = 0;
    if (mbedtls_asn1_get_tag(&p, ext_end, &value_len, MBEDTLS_ASN1_OCTET_STRING) != 0) return;
    if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) == 0) {
      unsigned char* q = p;
      const unsigned char* names_end = p + value_len;
      std::size_t names_len = 0;
      if (mbedtls_asn1_get_tag(&q, names_end, &names_len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return;
      while (q < names_end) {
        const int tag = *q++;
        std::size_t n = 0;
        if (mbedtls_asn1_get_len(&q, names_end, &n) != 0) return;
        f(tag & 0x1f, q, n);
        q += n;
      }
      return;
    }
    p = const_cast<unsigned char*>(ext_end);
  }
}

void format_time(char* out, std::size_t cap, const mbedtls_x509_time& t) {
  std::snprintf(out, cap, "%04d-%02d-%02d %02d:%02d:%02d UTC", t.year, t.mon, t.day, t.hour, t.min, t.sec);
}

}  // namespace

Transport::Transport(const Context& context, mqtt::TcpTransport tcp, std::string host)
    : m_context(&context), m_tcp(std::move(tcp)), m_host(std::move(host)) {
  mbedtls_ssl_session_init(&m_session);
  const std::string& name = context.options().server_name.empty() ? m_host : context.options().server_name;
  if (::inet_pton(AF_INET, name.c_str(), m_ip) == 1) m_ip_len = 4;
  else if (::inet_pton(AF_INET6, name.c_str(), m_ip) == 1) m_ip_len = 16;
  m_host_is_ip = m_ip_len > 0;
  m_verify_name = name;
  setup();
}

void Transport::use(const Context& context) {
  mbedtls_ssl_session_free(&m_session);
  mbedtls_ssl_session_init(&m_session);
  m_have_session = false;
  mbedtls_ssl_free(&m_ssl);
  m_context = &context;
  setup();
}

void Transport::setup() {
  mbedtls_ssl_init(&m_ssl);
  m_setup_error[0] = '\0';
  const std::size_t before = heap_in_use();
  int rc = mbedtls_ssl_setup(&m_ssl, m_context->config());
  m_buffers_bytes = heap_in_use() - before;
  // A DNS name is sent as SNI and checked by mbedTLS; an IP address is never sent as SNI
  // (RFC 6066) and is checked against the iPAddress names by verify_cb.
  if (rc == 0) rc = mbedtls_ssl_set_hostname(&m_ssl, m_host_is_ip ? nullptr : m_verify_name.c_str());
  if (rc != 0) {
    char text[128];
    mbedtls_strerror(rc, text, sizeof text);
    std::snprintf(m_setup_error, sizeof m_setup_error, "tls setup: %s", text);
  }
  mbedtls_ssl_set_bio(&m_ssl, this, send_cb, recv_cb, nullptr);
  mbedtls_ssl_set_verify(&m_ssl, verify_cb, this);
}

Transport::~Transport() {
  mbedtls_ssl_session_free(&m_session);
  mbedtls_ssl_free(&m_ssl);
}

mqtt::Progress Transport::open() {
  if (m_setup_error[0]) {
    std::snprintf(m_error, sizeof m_error, "%s", m_setup_error);
    return mqtt::Progress::failed;
  }
  mbedtls_ssl_session_reset(&m_ssl);
  if (m_have_session) mbedtls_ssl_set_session(&m_ssl, &m_session);
  m_peer_names[0] = m_peer_dates[0] = m_peer_issuer[0] = '\0';
  m_peer_self_signed = m_verified = false;
  m_hs_bytes = 0;
  m_hs_started_us = now_us();
  m_heap_before = heap_in_use();
  m_state = State::connecting;
  return after_tcp(m_tcp.open());
}

mqtt::Progress Transport::progress() {
  return m_state == State::connecting ? after_tcp(m_tcp.progress()) : handshake();
}

// The TCP connect finished (or is still going, or failed): the handshake starts when it is done.
mqtt::Progress Transport::after_tcp(mqtt::Progress p) {
  if (p != mqtt::Progress::done) {
    if (p == mqtt::Progress::failed) std::snprintf(m_error, sizeof m_error, "%s", m_tcp.error());
    return p;
  }
  m_state = State::handshaking;
  return handshake();
}

mqtt::Progress Transport::handshake() {
  const int rc = mbedtls_ssl_handshake(&m_ssl);
  if (rc == MBEDTLS_ERR_SSL_WANT_READ) return mqtt::Progress::want_read;
  if (rc == MBEDTLS_ERR_SSL_WANT_WRITE) return mqtt::Progress::want_write;
  if (rc != 0) return fail_handshake(rc);
  m_state = State::open;
  ++m_stats.handshakes;
  m_stats.last_resumed = !m_verified;  // a resumed session presents no certificate
  if (m_stats.last_resumed) ++m_stats.resumed;
  m_stats.last_handshake_bytes = m_hs_bytes;
  m_stats.last_handshake_us = now_us() - m_hs_started_us;
  m_heap_bytes = m_buffers_bytes + (heap_in_use() - m_heap_before);
  mbedtls_ssl_session_free(&m_session);
  mbedtls_ssl_session_init(&m_session);
  m_have_session = mbedtls_ssl_get_session(&m_ssl, &m_session) == 0;
  return mqtt::Progress::done;
}

mqtt::Progress Transport::fail_handshake(int rc) {
  ++m_stats.failures;
  m_state = State::closed;
  m_have_session = false;  // a failed server is verified in full next time
  const Options& o = m_context->options();
  std::snprintf(m_error, sizeof m_error, "tls handshake with %s: ", m_verify_name.c_str());
  if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    const std::uint32_t flags = mbedtls_ssl_get_verify_result(&m_ssl);
    append(m_error, sizeof m_error, "server certificate refused:");
    if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
      if (m_peer_self_signed)
        append(m_error, sizeof m_error, " self-signed (%s), not in %s;", m_peer_issuer, o.ca_file.c_str());
      else
        append(m_error, sizeof m_error, " unknown CA: issued by %s, which is not in %s;", m_peer_issuer,
               o.ca_file.c_str());
    }
    if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
      append(m_error, sizeof m_error, " name mismatch: \"%s\" is not among its names (%s);", m_verify_name.c_str(),
             m_peer_names[0] ? m_peer_names : "none");
    }
    if (flags & MBEDTLS_X509_BADCERT_EXPIRED) append(m_error, sizeof m_error, " expired (valid %s);", m_peer_dates);
    if (flags & MBEDTLS_X509_BADCERT_FUTURE)
      append(m_error, sizeof m_error, " not yet valid (valid %s);", m_peer_dates);
    const std::uint32_t described = MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_CN_MISMATCH |
                                    MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE;
    if (flags & ~described) {
      char info[256];
      mbedtls_x509_crt_verify_info(info, sizeof info, "", flags & ~described);
      for (char* c = info; *c; ++c) *c = *c == '\n' ? ';' : *c;
      append(m_error, sizeof m_error, " %s", info);
    }
    const std::size_t n = std::strlen(m_error);
    if (n > 0 && m_error[n - 1] == ';') m_error[n - 1] = '\0';
    return mqtt::Progress::failed;
  }
  if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) return describe_alert(m_ssl.in_msg ? m_ssl.in_msg[1] : 0);
  if (rc == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION) {
    append(m_error, sizeof m_error,
           "protocol version: the server offered a TLS version below 1.2, which edgegw refuses");
    return mqtt::Progress::failed;
  }
  if (rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == MBEDTLS_ERR_NET_RECV_FAILED || rc == MBEDTLS_ERR_NET_SEND_FAILED) {
    // A server that refuses sends an alert and closes, often while edgegw is still
    // writing its flight: the alert is then still unread on the socket.
    std::uint8_t record[7];
    mqtt::IoResult r = m_tcp.read(record);
    if (r.status == mqtt::IoStatus::ok && r.bytes == sizeof record && record[0] == 21 && record[1] == 3 &&
        record[3] == 0 && record[4] == 2) {
      return describe_alert(record[6]);
    }
    append(m_error, sizeof m_error, "connection closed by the server during the handshake%s%s",
           m_tcp.error()[0] ? ": " : "", m_tcp.error());
    return mqtt::Progress::failed;
  }
  char text[160];
  mbedtls_strerror(rc, text, sizeof text);
  append(m_error, sizeof m_error, "%s", text);
  return mqtt::Progress::failed;
}

mqtt::Progress Transport::describe_alert(int alert) {
  const Options& o = m_context->options();
  append(m_error, sizeof m_error, "the server refused it (alert %d, %s): ", alert, alert_name(alert));
  const bool at_hello = m_ssl.state <= MBEDTLS_SSL_SERVER_HELLO;  // it answered our ClientHello
  if (alert == 70 || alert == 71 || (at_hello && alert == 40)) {
    append(m_error, sizeof m_error,
           "no TLS version or cipher suite in common (edgegw offers TLS 1.2 with ECDHE and ChaCha20-Poly1305 or "
           "AES-GCM)");
  } else if (alert == 120) {
    append(m_error, sizeof m_error, "no ALPN protocol in common (%s.alpn)", o.key_prefix.c_str());
  } else if (alert == 116 || (m_ssl.client_auth && o.cert_file.empty())) {
    append(m_error, sizeof m_error, "it requires a client certificate, and %s.cert_file/key_file are not set",
           o.key_prefix.c_str());
  } else if (m_ssl.client_auth) {
    append(m_error, sizeof m_error, "client certificate %s refused", o.cert_file.c_str());
  } else {
    append(m_error, sizeof m_error, "see the broker's log");
  }
  return mqtt::Progress::failed;
}

int Transport::verify_cb(void* self, mbedtls_x509_crt* crt, int depth, std::uint32_t* flags) {
  auto* t = static_cast<Transport*>(self);
  if (depth != 0) return 0;
  t->m_verified = true;
  // What the server presented, for the error message if it is refused.
  char dn[128];
  if (mbedtls_x509_dn_gets(dn, sizeof dn, &crt->subject) > 0) append(t->m_peer_names, sizeof t->m_peer_names, "%s", dn);
  if (mbedtls_x509_dn_gets(t->m_peer_issuer, sizeof t->m_peer_issuer, &crt->issuer) < 0) t->m_peer_issuer[0] = '\0';
  t->m_peer_self_signed = crt->issuer_raw.len == crt->subject_raw.len &&
                          std::memcmp(crt->issuer_raw.p, crt->subject_raw.p, crt->issuer_raw.len) == 0;
  char from[32], to[32];
  format_time(from, sizeof from, crt->valid_from);
  format_time(to, sizeof to, crt->valid_to);
  std::snprintf(t->m_peer_dates, sizeof t->m_peer_dates, "from %s to %s", from, to);
  bool ip_matches = false;
  for_each_san(*crt, [&](int tag, const unsigned char* p, std::size_t n) {
    if (tag == MBEDTLS_X509_SAN_DNS_NAME) {
      append(t->m_peer_names, sizeof t->m_peer_names, ", DNS:%.*s", static_cast<int>(n),
             reinterpret_cast<const char*>(p));
    } else if (tag == MBEDTLS_X509_SAN_IP_ADDRESS && (n == 4 || n == 16)) {
      char text[INET6_ADDRSTRLEN];
      ::inet_ntop(n == 4 ? AF_INET : AF_INET6, p, text, sizeof text);
      append(t->m_peer_names, sizeof t->m_peer_names, ", IP:%s", text);
      ip_matches |= n == t->m_ip_len && std::memcmp(p, t->m_ip, n) == 0;
    }
  });
  if (t->m_host_is_ip && !ip_matches) *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
  return 0;
}

int Transport::send_cb(void* self, const unsigned char* buf, std::size_t len) {
  auto* t = static_cast<Transport*>(self);
  mqtt::IoResult r = t->m_tcp.write(std::span<const std::uint8_t>(buf, len));
  if (r.status == mqtt::IoStatus::ok) {
    if (t->m_state == State::handshaking) t->m_hs_bytes += r.bytes;
    return static_cast<int>(r.bytes);
  }
  return r.status == mqtt::IoStatus::would_block ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_NET_SEND_FAILED;
}

int Transport::recv_cb(void* self, unsigned char* buf, std::size_t len) {
  auto* t = static_cast<Transport*>(self);
  mqtt::IoResult r = t->m_tcp.read(std::span<std::uint8_t>(buf, len));
  switch (r.status) {
    case mqtt::IoStatus::ok:
      if (t->m_state == State::handshaking) t->m_hs_bytes += r.bytes;
      return static_cast<int>(r.bytes);
    case mqtt::IoStatus::would_block: return MBEDTLS_ERR_SSL_WANT_READ;
    case mqtt::IoStatus::closed: return 0;  // EOF
    case mqtt::IoStatus::error: break;
  }
  return MBEDTLS_ERR_NET_RECV_FAILED;
}

mqtt::IoResult Transport::read(std::span<std::uint8_t> into) {
  const int rc = mbedtls_ssl_read(&m_ssl, into.data(), into.size());
  if (rc > 0) return {mqtt::IoStatus::ok, static_cast<std::size_t>(rc)};
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return {mqtt::IoStatus::would_block};
  if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || rc == MBEDTLS_ERR_SSL_CONN_EOF)
    return {mqtt::IoStatus::closed};
  char text[160];
  mbedtls_strerror(rc, text, sizeof text);
  std::snprintf(m_error, sizeof m_error, "tls read from %s: %s", m_verify_name.c_str(),
                rc == MBEDTLS_ERR_NET_RECV_FAILED ? m_tcp.error() : text);
  return {mqtt::IoStatus::error};
}

mqtt::IoResult Transport::write(std::span<const std::uint8_t> from) {
  const int rc = mbedtls_ssl_write(&m_ssl, from.data(), from.size());
  if (rc >= 0) return {mqtt::IoStatus::ok, static_cast<std::size_t>(rc)};
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return {mqtt::IoStatus::would_block};
  char text[160];
  mbedtls_strerror(rc, text, sizeof text);
  std::snprintf(m_error, sizeof m_error, "tls write to %s: %s", m_verify_name.c_str(),
                rc == MBEDTLS_ERR_NET_SEND_FAILED ? m_tcp.error() : text);
  return {mqtt::IoStatus::error};
}

bool Transport::has_buffered_input() const {
  return m_state == State::open && (mbedtls_ssl_get_bytes_avail(&m_ssl) > 0 || mbedtls_ssl_check_pending(&m_ssl));
}

void Transport::close() {
  if (m_state == State::open) (void)mbedtls_ssl_close_notify(&m_ssl);  // best effort
  m_state = State::closed;
  m_tcp.close();
}

void Transport::close_gracefully(std::chrono::milliseconds wait) {
  if (m_state == State::open) (void)mbedtls_ssl_close_notify(&m_ssl);
  m_state = State::closed;
  m_tcp.close_gracefully(wait);
}

const char* Transport::ciphersuite() const { return m_state == State::open ? mbedtls_ssl_get_ciphersuite(&m_ssl) : ""; }

const char* Transport::alpn() const {
  const char* p = m_state == State::open ? mbedtls_ssl_get_alpn_protocol(&m_ssl) : nullptr;
  return p ? p : "";
}

}  // namespace edgegw::tls
