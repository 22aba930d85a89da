// TLS for the MQTT sessions, on mbedTLS (statically linked on the boards).
//
//  - Context: what every connection of one session shares, loaded once at startup: the CA
//    chain, the client certificate and key for mutual TLS, the RNG, the mbedTLS config
//    (TLS 1.2 minimum, certificate and name verification always on, ChaCha20-Poly1305
//    first for boards without AES instructions, ALPN). Loading fails with an error that
//    names the key and the file: an unreadable CA file, a key readable by group or others.
//    A reload (SIGHUP) loads a new one from the same files; Transport::use() takes it.
//  - Transport: an mqtt::Transport that runs TLS over a TCP transport, non-blocking, in
//    the event loop. A reconnect resumes the last session (session ticket or id) so a
//    reconnect storm does not repeat full handshakes. A failed handshake says why in words
//    a user can act on (unknown CA, name mismatch with the names found, expired or not yet
//    valid with the dates, client certificate refused, protocol version).
//
// Key material never reaches a log. Used from the event loop thread only.
#pragma once

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mqtt/tcp_transport.hpp"

namespace edgegw::tls {

struct Options {
  std::string key_prefix;  // "uplink.tls", for errors
  std::string ca_file;
  std::string cert_file;  // with key_file: mutual TLS
  std::string key_file;
  std::string server_name;  // SNI and verification; empty: the URL's host
  std::vector<std::string> alpn;
};

struct Stats {
  std::uint64_t handshakes = 0;            // completed
  std::uint64_t resumed = 0;               // of those, abbreviated (session resumption)
  std::uint64_t failures = 0;              // handshakes that failed
  std::uint64_t last_handshake_bytes = 0;  // sent + received by the last completed handshake
  std::uint64_t last_handshake_us = 0;
  bool last_resumed = false;
};

class Context {
 public:
  // Reads the files and sets up the mbedTLS config; on failure returns nothing and
  // `error` says "KEY: FILE: reason".
  static std::unique_ptr<Context> load(const Options& options, std::string& error);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const mbedtls_ssl_config* config() const { return &m_conf; }
  const Options& options() const { return m_options; }
  // The same CA chain and client certificate as `other` (a key that matches the same
  // certificate is the same key).
  bool same_material(const Context& other) const;
  // "client certificate SUBJECT, valid until DATE; N CA certificates", for the log.
  void describe(char* buf, std::size_t cap) const;

 private:
  Context() = default;
  Options m_options;
  mbedtls_entropy_context m_entropy;
  mbedtls_ctr_drbg_context m_drbg;
  mbedtls_x509_crt m_ca;
  mbedtls_x509_crt m_cert;
  mbedtls_pk_context m_key;
  mbedtls_ssl_config m_conf;
  std::vector<const char*> m_alpn;  // null-terminated, into m_options.alpn
  bool m_ready = false;
};

class Transport final : public mqtt::Transport {
 public:
  // `host` is the URL's host (verified unless options.server_name overrides it).
  Transport(const Context& context, mqtt::TcpTransport tcp, std::string host);
  ~Transport() override;
  // Connections from now on use `context` (the same server_name, new files: a reload),
  // with a full handshake (the last session is forgotten: it carries the old client
  // certificate). Only while closed; `context` must outlive the transport or the next use().
  void use(const Context& context);

  mqtt::Progress open() override;
  mqtt::Progress progress() override;
  mqtt::IoResult read(std::span<std::uint8_t> into) override;
  mqtt::IoResult write(std::span<const std::uint8_t> from) override;
  bool has_buffered_input() const override;
  void close() override;
  void close_gracefully(std::chrono::milliseconds wait) override;
  void set_user_timeout(std::chrono::milliseconds timeout) override { m_tcp.set_user_timeout(timeout); }
  const char* pending() const override { return m_state == State::handshaking ? "the TLS handshake" : m_tcp.pending(); }
  bool failed_until_fixed() const override { return m_state == State::connecting && m_tcp.failed_until_fixed(); }
  int fd() const override { return m_tcp.fd(); }
  const char* error() const override { return m_error; }

  const Stats& stats() const { return m_stats; }
  // The cipher suite and ALPN protocol of the current connection ("" when none).
  const char* ciphersuite() const;
  const char* alpn() const;
  // Heap bytes the TLS session took for its last handshake (mbedTLS buffers, handshake
  // state and the peer's certificate chain), measured with mallinfo2.
  std::size_t heap_bytes() const { return m_heap_bytes; }

 private:
  enum class State { closed, connecting, handshaking, open };

  void setup();
  mqtt::Progress after_tcp(mqtt::Progress p);
  mqtt::Progress handshake();
  mqtt::Progress fail_handshake(int rc);
  mqtt::Progress describe_alert(int alert);
  static int send_cb(void* self, const unsigned char* buf, std::size_t len);
  static int recv_cb(void* self, unsigned char* buf, std::size_t len);
  static int verify_cb(void* self, mbedtls_x509_crt* crt, int depth, std::uint32_t* flags);

  const Context* m_context;
  mqtt::TcpTransport m_tcp;
  std::string m_host;
  std::string m_verify_name;  // server_name, or the host
  bool m_host_is_ip = false;
  std::uint8_t m_ip[16] = {};
  std::size_t m_ip_len = 0;
  mbedtls_ssl_context m_ssl;
  mbedtls_ssl_session m_session;  // the last good session, for resumption
  bool m_have_session = false;
  State m_state = State::closed;
  std::uint64_t m_hs_bytes = 0;
  std::uint64_t m_hs_started_us = 0;
  std::size_t m_heap_before = 0, m_heap_bytes = 0, m_buffers_bytes = 0;
  char m_setup_error[160] = "";
  bool m_verified = false;  // the verify callback saw the server's certificate
  // what the verify callback saw of the server's certificate, for error messages
  char m_peer_names[256] = "";
  char m_peer_dates[80] = "";
  char m_peer_issuer[128] = "";
  bool m_peer_self_signed = false;
  char m_error[512] = "";
  Stats m_stats;
};

}  // namespace edgegw::tls
