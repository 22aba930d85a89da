#include "support/chaos_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

namespace edgegw::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t k_buffer_cap = 64 * 1024;  // bytes held a direction before reading stops
constexpr std::size_t k_read_size = 16 * 1024;

sockaddr_in loopback(const std::string& host, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  return a;
}

}  // namespace

struct ChaosProxy::Conn {
  struct Chunk {
    Clock::time_point due;
    std::vector<std::uint8_t> bytes;
    std::size_t off = 0;
  };
  // One direction: bytes read from fd[from], written to fd[1 - from].
  struct Flow {
    std::deque<Chunk> queue;
    std::size_t queued = 0;
    std::int64_t passed = 0;  // bytes taken (not dropped) on this connection
    Clock::time_point link_free{};
    bool eof = false;       // the sender finished (FIN), or its FIN was lost in a blackhole
    bool finished = false;  // the FIN was passed on, or lost
    bool closing = false;   // limit_data reached: close once the queue is written
  };
  int fd[2] = {-1, -1};  // client, server
  Flow flow[2];          // upstream (from the client), downstream (from the server)
  bool dead() const { return fd[0] < 0; }
};

ChaosProxy::ChaosProxy(std::string target_host, std::uint16_t target_port)
    : m_target_host(std::move(target_host)), m_target_port(target_port) {
  m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(m_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback("127.0.0.1", 0);
  socklen_t len = sizeof a;
  if (::bind(m_listen, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(m_listen, 64) != 0 ||
      ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
      ::pipe2(m_wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    ADD_FAILURE() << "chaos proxy: cannot listen: " << std::strerror(errno);
    return;
  }
  m_port = ntohs(a.sin_port);
  m_thread = std::thread([this] { run(); });
}

ChaosProxy::~ChaosProxy() {
  m_stop = true;
  if (m_wake[1] >= 0) (void)!::write(m_wake[1], "x", 1);
  if (m_thread.joinable()) m_thread.join();
  for (auto& c : m_conns) kill(*c, false);
  for (int fd : {m_listen, m_wake[0], m_wake[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

std::string ChaosProxy::url(const std::string& scheme) const {
  return scheme + "://127.0.0.1:" + std::to_string(m_port);
}

Toxics ChaosProxy::toxics(Direction d) {
  std::lock_guard lock(m_mutex);
  return m_toxics[static_cast<int>(d)];
}

void ChaosProxy::set(Direction d, const Toxics& t) {
  std::lock_guard lock(m_mutex);
  m_toxics[static_cast<int>(d)] = t;
}

void ChaosProxy::blackhole(bool on) {
  std::lock_guard lock(m_mutex);
  m_toxics[0].blackhole = m_toxics[1].blackhole = on;
}

void ChaosProxy::reset_after(Direction d, std::int64_t bytes) {
  std::lock_guard lock(m_mutex);
  m_toxics[static_cast<int>(d)].reset_after = bytes;
}

int ChaosProxy::reset_all() {
  std::lock_guard lock(m_mutex);
  int n = 0;
  for (auto& c : m_conns) {
    if (c->dead()) continue;
    kill(*c, true);
    ++m_resets;
    ++n;
  }
  return n;
}

// Closes both sides: with a RST (SO_LINGER 0: unsent data is discarded) or a FIN.
void ChaosProxy::kill(Conn& c, bool rst) {
  if (c.dead()) return;
  for (int& fd : c.fd) {
    if (rst) {
      const linger l{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd);
    fd = -1;
  }
  --m_open;
}

void ChaosProxy::accept_one() {
  const int client = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (client < 0) return;
  ++m_accepted;
  // A blocking connect on loopback: it answers at once (or refuses).
  const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(m_target_host, m_target_port);
  if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const linger l{1, 0};
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(client);
    ::close(server);
    return;
  }
  ::fcntl(server, F_SETFL, ::fcntl(server, F_GETFL) | O_NONBLOCK);
  const int one = 1;
  for (int fd : {client, server}) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_unique<Conn>();
  c->fd[0] = client;
  c->fd[1] = server;
  ++m_open;
  m_conns.push_back(std::move(c));
}

// Moves bytes in one direction: reads what the toxics let in, queues it with its due time,
// writes what is due.
void ChaosProxy::pump(Conn& c, int dir, bool readable) {
  Conn::Flow& f = c.flow[dir];
  Toxics& t = m_toxics[dir];
  const int from = c.fd[dir], to = c.fd[1 - dir];
  const auto now = Clock::now();
  if (readable && !f.eof && f.queued < k_buffer_cap) {
    std::uint8_t buf[k_read_size];
    const ssize_t n = ::read(from, buf, std::min(sizeof buf, k_buffer_cap - f.queued));
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return kill(c, true);  // a reset passes on
    if (n == 0) f.eof = true;
    std::size_t take = n > 0 ? static_cast<std::size_t>(n) : 0;
    if (take > 0 && t.reset_after >= 0) {
      if (static_cast<std::int64_t>(take) > t.reset_after) {
        // Cut here: what passes goes out at once (behind nothing still queued: order is
        // kept, so with a queue the cut falls at its end), the rest is lost.
        if (f.queue.empty()) (void)!::write(to, buf, static_cast<std::size_t>(t.reset_after));
        t.reset_after = -1;
        ++m_resets;
        return kill(c, true);
      }
      t.reset_after -= static_cast<std::int64_t>(take);
    }
    // How much of what was read still fits under a per-connection limit.
    const auto within = [&](std::int64_t limit) {
      return static_cast<std::size_t>(std::clamp<std::int64_t>(limit - f.passed, 0, static_cast<std::int64_t>(take)));
    };
    if (t.blackhole) take = 0;
    if (t.blackhole_after >= 0) take = within(t.blackhole_after);
    if (t.limit_data >= 0) {
      take = within(t.limit_data);
      if (f.passed + static_cast<std::int64_t>(take) >= t.limit_data) f.closing = true;
    }
    f.passed += static_cast<std::int64_t>(take);
    std::size_t piece = t.slice > 0 ? t.slice : take;
    if (t.bytes_per_second > 0)
      piece = std::min<std::size_t>(piece, std::max<std::uint64_t>(1, t.bytes_per_second / 50));
    for (std::size_t off = 0; off < take; off += piece) {
      const std::size_t len = std::min(piece, take - off);
      Conn::Chunk chunk{std::max(now + t.latency, f.link_free), std::vector<std::uint8_t>(buf + off, buf + off + len)};
      f.link_free = chunk.due + t.slice_gap;
      if (t.bytes_per_second > 0) f.link_free += std::chrono::microseconds(len * 1000000 / t.bytes_per_second);
      f.queued += len;
      f.queue.push_back(std::move(chunk));
    }
    if (f.eof && (t.blackhole || (t.blackhole_after >= 0 && f.passed >= t.blackhole_after))) f.finished = true;  // lost
  }
  // Due chunks are tried on every pass (EAGAIN keeps them for the next).
  while (!f.queue.empty() && f.queue.front().due <= now) {
    Conn::Chunk& chunk = f.queue.front();
    const ssize_t n = ::send(to, chunk.bytes.data() + chunk.off, chunk.bytes.size() - chunk.off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      return kill(c, true);
    }
    chunk.off += static_cast<std::size_t>(n);
    m_forwarded[dir] += static_cast<std::uint64_t>(n);
    if (chunk.off < chunk.bytes.size()) break;
    f.queued -= chunk.bytes.size();
    f.queue.pop_front();
  }
  if (f.queue.empty()) {
    if (f.closing) return kill(c, false);
    if (f.eof && !f.finished) {
      ::shutdown(to, SHUT_WR);
      f.finished = true;
    }
  }
  if (c.flow[0].finished && c.flow[1].finished) kill(c, false);
}

void ChaosProxy::run() {
  std::vector<pollfd> fds;
  std::vector<Conn*> owners;
  while (!m_stop) {
    fds.clear();
    owners.clear();
    fds.push_back({m_listen, POLLIN, 0});
    fds.push_back({m_wake[0], POLLIN, 0});
    int timeout_ms = 20;  // toxics changed by the test take effect within this
    {
      std::lock_guard lock(m_mutex);
      std::erase_if(m_conns, [](const std::unique_ptr<Conn>& c) { return c->dead(); });
      const auto now = Clock::now();
      for (auto& c : m_conns) {
        for (int side = 0; side < 2; ++side) {
          const Conn::Flow& in = c->flow[side];       // read from this side
          const Conn::Flow& out = c->flow[1 - side];  // written to this side
          short events = 0;
          if (!in.eof && in.queued < k_buffer_cap) events |= POLLIN;
          if (!out.queue.empty()) {
            const auto wait = std::chrono::ceil<std::chrono::milliseconds>(out.queue.front().due - now).count();
            if (wait <= 0) events |= POLLOUT;
            else timeout_ms = std::min<int>(timeout_ms, static_cast<int>(wait));
          }
          fds.push_back({c->fd[side], events, 0});
          owners.push_back(c.get());
        }
      }
    }
    ::poll(fds.data(), fds.size(), timeout_ms);
    std::lock_guard lock(m_mutex);
    if (fds[1].revents) {
      char drain[64];
      while (::read(m_wake[0], drain, sizeof drain) > 0) {
      }
    }
    if (fds[0].revents & POLLIN) accept_one();
    for (std::size_t i = 2; i < fds.size(); i += 2) {
      Conn& c = *owners[i - 2];
      // A peer's RST passes on; a peer gone both ways ends the connection.
      for (int side = 0; side < 2 && !c.dead(); ++side) {
        const short ev = fds[i + static_cast<std::size_t>(side)].revents;
        if ((ev & POLLERR) || ((ev & POLLHUP) && c.flow[side].eof)) kill(c, (ev & POLLERR) != 0);
      }
      // (A connection reset by the test, reset_all, since the poll is dead too: its fds are gone.)
      for (int dir = 0; dir < 2 && !c.dead(); ++dir) {
        pump(c, dir, fds[i + static_cast<std::size_t>(dir)].revents & (POLLIN | POLLHUP | POLLERR));
      }
    }
  }
}

}  // namespace edgegw::test
