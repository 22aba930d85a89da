// edgegw-vport: carries one TCP connection at a time over a byte stream, for the board VM
// tests, whose guest has no IP network. In the guest the stream is a virtio-serial port;
// on the host it is the unix socket QEMU's chardev connects to. Each side runs one:
//
//   edgegw-vport (--device PATH | --accept-link UNIX_PATH) (--listen HOST:PORT | --connect HOST:PORT)
//
// The --listen side accepts TCP connections; for each, the --connect side opens one to its
// target. A byte stream has no "connection closed", so both sides speak frames:
//   type (1 byte) | connection id (1) | payload length (2, big-endian) | payload
//   'R' reset: the other side restarted; drop any connection
//   'O' open, 'D' data, 'C' close (frames for an id that is not the current one are dropped)
// A power cut (QEMU killed) closes the host's link socket: the host side then drops its TCP
// connection, so a broker sees the gateway go away as it would on a real board.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::size_t k_max_payload = 16384;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "edgegw-vport: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

bool write_all(int fd, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

sockaddr_in parse_address(const std::string& text) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || inet_pton(AF_INET, text.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "edgegw-vport: '%s' is not IPV4:PORT\n", text.c_str());
    std::exit(2);
  }
  a.sin_port = htons(static_cast<std::uint16_t>(std::atoi(text.c_str() + colon + 1)));
  return a;
}

class Bridge {
 public:
  Bridge(int link, bool listening, sockaddr_in address) : m_link(link), m_listening(listening), m_address(address) {}

  // Runs until the link closes (returns true) or fails (false).
  bool run(int listener) {
    send('R', 0, nullptr, 0);
    std::vector<std::uint8_t> in;
    std::uint8_t buf[k_max_payload];
    while (!m_link_failed) {
      pollfd fds[3] = {{m_link, POLLIN, 0}, {listener, POLLIN, 0}, {m_tcp, POLLIN, 0}};
      const unsigned polled = m_adopted;  // frames handled below may replace the connection
      if (::poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      if (fds[0].revents) {
        ssize_t n = ::read(m_link, buf, sizeof buf);
        if (n <= 0) {
          close_tcp(false);
          return n == 0;
        }
        in.insert(in.end(), buf, buf + n);
        std::size_t at = 0;
        while (in.size() - at >= 4) {
          const std::size_t len = (std::size_t{in[at + 2]} << 8) | in[at + 3];
          if (in.size() - at < 4 + len) break;
          on_frame(in[at], in[at + 1], &in[at + 4], len);
          at += 4 + len;
        }
        in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(at));
      }
      if (listener >= 0 && fds[1].revents) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          close_tcp(true);
          adopt(fd, ++m_id);
          send('O', m_id, nullptr, 0);
        }
      }
      if (m_tcp >= 0 && m_adopted == polled && fds[2].revents) {
        ssize_t n = ::read(m_tcp, buf, sizeof buf);
        if (n > 0) {
          send('D', m_id, buf, static_cast<std::size_t>(n));
        } else if (!(n < 0 && errno == EINTR)) {
          close_tcp(true);
        }
      }
    }
    close_tcp(false);
    return false;
  }

 private:
  void on_frame(std::uint8_t type, std::uint8_t id, const std::uint8_t* payload, std::size_t len) {
    switch (type) {
      case 'R': close_tcp(false); break;
      case 'O':
        if (m_listening) break;
        close_tcp(false);
        connect_to(id);
        break;
      case 'D':
        if (m_tcp >= 0 && id == m_id && !write_all(m_tcp, payload, len)) close_tcp(true);
        break;
      case 'C':
        if (id == m_id) close_tcp(false);
        break;
      default: break;
    }
  }

  void connect_to(std::uint8_t id) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&m_address), sizeof m_address) != 0) {
      if (fd >= 0) ::close(fd);
      send('C', id, nullptr, 0);
      return;
    }
    adopt(fd, id);
  }

  void adopt(int fd, std::uint8_t id) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    m_tcp = fd;
    m_id = id;
    ++m_adopted;
  }

  void close_tcp(bool tell) {
    if (m_tcp < 0) return;
    ::close(m_tcp);
    m_tcp = -1;
    if (tell) send('C', m_id, nullptr, 0);
  }

  void send(char type, std::uint8_t id, const std::uint8_t* payload, std::size_t len) {
    std::uint8_t frame[4 + k_max_payload];
    frame[0] = static_cast<std::uint8_t>(type);
    frame[1] = id;
    frame[2] = static_cast<std::uint8_t>(len >> 8);
    frame[3] = static_cast<std::uint8_t>(len);
    if (len) std::memcpy(frame + 4, payload, len);
    // A power cut ends the host's link in the middle of anything: the run ends, no more.
    if (!m_link_failed && !write_all(m_link, frame, 4 + len)) m_link_failed = true;
  }

  int m_link;
  bool m_listening;
  sockaddr_in m_address;
  int m_tcp = -1;
  std::uint8_t m_id = 0;
  unsigned m_adopted = 0;  // connections taken on so far
  bool m_link_failed = false;
};

int listen_tcp(const sockaddr_in& a) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0)
    die("listening");
  return fd;
}

int listen_unix(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) {
    std::fprintf(stderr, "edgegw-vport: socket path too long: %s\n", path.c_str());
    std::exit(2);
  }
  std::memcpy(a.sun_path, path.c_str(), path.size());
  ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1) != 0) {
    die("listening on " + path);
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a peer gone (QEMU killed, broker stopped) is an error return, not death
  std::string device, accept_link, listen_at, connect_to;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--device") device = argv[i + 1];
    else if (flag == "--accept-link") accept_link = argv[i + 1];
    else if (flag == "--listen") listen_at = argv[i + 1];
    else if (flag == "--connect") connect_to = argv[i + 1];
  }
  if (device.empty() == accept_link.empty() || listen_at.empty() == connect_to.empty()) {
    std::fprintf(
        stderr,
        "usage: edgegw-vport (--device PATH | --accept-link UNIX_PATH) (--listen IPV4:PORT | --connect IPV4:PORT)\n");
    return 2;
  }
  const bool listening = !listen_at.empty();
  const sockaddr_in address = parse_address(listening ? listen_at : connect_to);
  const int listener = listening ? listen_tcp(address) : -1;

  if (!device.empty()) {  // the guest: the port is there for the whole boot
    int link = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
    if (link < 0) die("opening " + device);
    Bridge bridge(link, listening, address);
    return bridge.run(listener) ? 0 : 1;  // host gone: systemd starts us again
  }
  const int server = listen_unix(accept_link);  // the host: one QEMU after another
  for (;;) {
    int link = ::accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
    if (link < 0) {
      if (errno == EINTR) continue;
      die("accepting the link");
    }
    Bridge bridge(link, listening, address);
    bridge.run(listener);
    ::close(link);
  }
}
