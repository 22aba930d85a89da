// The control socket: a unix stream socket (mode 0600, so only the service user and root
// can talk to it) on which `edgegw status` asks for the daemon's snapshot. A client sends
// one line, "text" or "json"; the daemon answers and closes. Driven by the event loop;
// connections and buffers are fixed at construction.
#pragma once

#include <cstddef>
#include <string>

#include "event/loop.hpp"
#include "util/fd.hpp"

namespace edgegw::observe {

class StatusSource {
 public:
  // Writes the status as text or JSON into buf; returns its length.
  virtual std::size_t render_status(bool json, char* buf, std::size_t cap) = 0;

 protected:
  ~StatusSource() = default;
};

class ControlServer final : private event::IoHandler {
 public:
  ControlServer(event::Loop& loop, StatusSource& source);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `path` (replacing a stale socket); false with `error` naming the path and why.
  bool listen(const std::string& path, std::string& error);

 private:
  struct Client final : event::IoHandler {
    ControlServer* server = nullptr;
    util::Fd fd;
    char request[16];
    std::size_t got = 0;
    void on_io(std::uint32_t events) override;
  };
  static constexpr int k_clients = 4;

  void on_io(std::uint32_t events) override;  // the listening socket
  void answer(Client& c);
  void drop(Client& c);

  event::Loop& m_loop;
  StatusSource& m_source;
  util::Fd m_fd;
  std::string m_path;
  Client m_clients[k_clients];
  char m_reply[16384];
};

// The client side (edgegw status): sends the request and returns the reply; false with
// `error` when no daemon answers at `path`.
bool query_status(const std::string& path, bool json, std::string& reply, std::string& error);

}  // namespace edgegw::observe
