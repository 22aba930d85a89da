// ChaosProxy: a TCP proxy for network fault tests, after toxiproxy's "toxics", written for
// edgegw. It listens on a free loopback port, opens a connection to the target (a real
// broker on loopback) for every client it accepts, and forwards bytes both ways from a
// thread of its own (a poll loop). The test changes the toxics at any time, per direction:
// upstream is client -> server (edgegw -> broker), downstream server -> client.
//
//  - latency: every chunk is held this long (order kept);
//  - bytes_per_second: the link's rate (0: unlimited); the proxy buffers at most 64 KiB a
//    direction, so a slow link fills the kernel's buffers and the sender waits, as on a
//    real one;
//  - slice: chunks of at most this many bytes, written separately (slice_gap apart);
//  - blackhole: everything read is dropped, the connection stays open (a half-open link:
//    the sender's TCP sees its data acknowledged, nothing ever answers);
//  - blackhole_after: on each connection, this many bytes pass, then blackhole;
//  - limit_data: on each connection, this many bytes pass, then both sides are closed (FIN);
//  - reset_after (one shot, over all connections): this many more bytes pass, then both
//    sides get a RST (SO_LINGER 0), so a packet can be cut in the middle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace edgegw::test {

enum class Direction { upstream, downstream };

struct Toxics {
  std::chrono::milliseconds latency{0};
  std::uint64_t bytes_per_second = 0;
  std::size_t slice = 0;
  std::chrono::milliseconds slice_gap{0};
  bool blackhole = false;
  std::int64_t blackhole_after = -1;
  std::int64_t limit_data = -1;
  std::int64_t reset_after = -1;
};

class ChaosProxy {
 public:
  ChaosProxy(std::string target_host, std::uint16_t target_port);
  ~ChaosProxy();
  ChaosProxy(const ChaosProxy&) = delete;
  ChaosProxy& operator=(const ChaosProxy&) = delete;

  std::uint16_t port() const { return m_port; }
  std::string url(const std::string& scheme = "mqtt") const;

  Toxics toxics(Direction d);
  void set(Direction d, const Toxics& t);
  void set_both(const Toxics& t) {
    set(Direction::upstream, t);
    set(Direction::downstream, t);
  }
  void clear() { set_both(Toxics{}); }
  void blackhole(bool on);  // both directions
  // One shot: `bytes` more bytes pass in direction d (over all connections), then a RST.
  void reset_after(Direction d, std::int64_t bytes);
  // Every open connection gets a RST now; returns how many there were.
  int reset_all();

  long accepted() const { return m_accepted.load(); }
  long resets() const { return m_resets.load(); }  // connections the toxics cut (reset_after, reset_all)
  long open_connections() const { return m_open.load(); }
  std::uint64_t forwarded(Direction d) const { return m_forwarded[static_cast<int>(d)].load(); }

 private:
  struct Conn;
  void run();
  void accept_one();
  void pump(Conn& c, int dir, bool readable);
  void kill(Conn& c, bool rst);

  std::string m_target_host;
  std::uint16_t m_target_port;
  int m_listen = -1;
  int m_wake[2] = {-1, -1};
  std::uint16_t m_port = 0;
  std::mutex m_mutex;  // m_toxics, m_conns
  Toxics m_toxics[2];
  std::vector<std::unique_ptr<Conn>> m_conns;
  std::atomic<bool> m_stop{false};
  std::atomic<long> m_accepted{0}, m_resets{0}, m_open{0};
  std::atomic<std::uint64_t> m_forwarded[2] = {0, 0};
  std::thread m_thread;
};

}  // namespace edgegw::test
