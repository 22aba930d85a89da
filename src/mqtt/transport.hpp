// The byte stream an MQTT session runs over. Non-blocking: every call returns at once and
// the session waits in the event loop for the readiness the transport asks for. TCP and
// unix sockets are in tcp_transport.hpp; TLS (mbedTLS) implements the same interface.
// Owned by whoever creates the session; used only from the event loop thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace edgegw::mqtt {

enum class Progress {
  done,        // connected (and handshaken): read/write may be used
  want_read,   // call progress() again when the fd is readable
  want_write,  // call progress() again when the fd is writable
  failed,      // see error(); the caller closes the transport
};

enum class IoStatus { ok, would_block, closed, error };

struct IoResult {
  IoStatus status;
  std::size_t bytes = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Starts a new connection (closing any old one). After any failure the fd stays open
  // until close(), so the caller can unregister it first.
  virtual Progress open() = 0;
  // Continues a connection that open() left in progress.
  virtual Progress progress() = 0;
  virtual IoResult read(std::span<std::uint8_t> into) = 0;
  virtual IoResult write(std::span<const std::uint8_t> from) = 0;
  // Readable data may be buffered inside the transport (TLS records) where epoll cannot see it.
  virtual bool has_buffered_input() const { return false; }
  virtual void close() = 0;
  // After the last bytes were written: closes so that they reach the peer's application.
  // A socket closed with unread input sends a reset, and a reset can make the peer drop
  // what it had not read yet (a broker would lose the last PUBACKs and redeliver those
  // messages). Half-closes, discards input until the peer closes (at most `wait`), closes.
  virtual void close_gracefully(std::chrono::milliseconds wait) {
    (void)wait;
    close();
  }
  // Data written and not acknowledged by the peer for this long makes the connection fail
  // (TCP_USER_TIMEOUT): how a dead peer shows up while nothing is read. No-op where it
  // does not apply (unix sockets).
  virtual void set_user_timeout(std::chrono::milliseconds timeout) { (void)timeout; }
  // What open()/progress() is waiting for, for the log of a connect that timed out.
  virtual const char* pending() const { return "the TCP connect"; }
  // The last failure needs an operator (a setting, or the proxy's rules, must change):
  // retried at reconnect_max only, and logged once.
  virtual bool failed_until_fixed() const { return false; }
  // The fd to wait on; -1 when closed.
  virtual int fd() const = 0;
  // The reason for the last failure, for logs ("connect 127.0.0.1:1883: Connection refused").
  virtual const char* error() const = 0;
};

}  // namespace edgegw::mqtt
