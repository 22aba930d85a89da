// The uplink through an HTTP proxy (issue 15, item 6): uplink.proxy tunnels with HTTP
// CONNECT through a real tinyproxy on loopback to the rig's upstream TLS listener (mutual
// TLS inside the tunnel), through the whole daemon: forwarding, a proxy that refuses (403,
// and 407 until the credentials are given), the proxy going away mid-stream, and a proxy
// that never answers.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "support/gateway_rig.hpp"
#include "support/text.hpp"
#include "support/tinyproxy.hpp"

namespace edgegw::test {
namespace {

using namespace std::chrono_literals;

// The rig, its uplink over mutual TLS through the proxy at `proxy_port` (made after it).
RigOptions through_proxy(std::uint16_t proxy_port, const std::string& more = "") {
  RigOptions o;
  o.uplink_tls = true;
  o.uplink += "\nproxy = \"http://127.0.0.1:" + std::to_string(proxy_port) + "\"\nreconnect_max = \"2s\"\n" + more;
  return o;
}

// Adds `lines` to the rig's [uplink] table (for its next start_daemon()).
void add_to_uplink(const Rig& rig, const std::string& lines) {
  std::string text = read_file(rig.config_path());
  text.replace(text.find("[uplink]\n"), 9, "[uplink]\n" + lines + "\n");
  std::ofstream(rig.config_path()) << text;
}

std::string connect_line(const Rig& rig) { return "CONNECT 127.0.0.1:" + std::to_string(rig.tls_port()) + " HTTP/1.1"; }

TEST(Proxy, the_uplink_forwards_everything_through_the_proxy) {
  const std::uint16_t proxy_port = free_port();
  Rig rig(through_proxy(proxy_port));
  Tinyproxy proxy({.port = proxy_port, .connect_port = rig.tls_port()});
  proxy.start();
  rig.start_verifier();
  rig.start_daemon();
  Process sensors = rig.stream(2000, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  const Tally t = rig.wait_for_all(2000, 60s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(t.missing(2000), 0) << rig.daemon_log();
  EXPECT_EQ(t.seq_conflicts, 0);
  std::printf("[ measured ] 2000 through the proxy: %ld duplicates\n", t.duplicates());
  EXPECT_GE(count_of(proxy.log(), connect_line(rig)), 1) << proxy.log();
  EXPECT_NE(rig.daemon_log().find("uplink: TLS "), std::string::npos) << rig.daemon_log();
}

// tinyproxy answers a CONNECT to a port it does not allow with 403: the operator's to mend,
// so logged once with the proxy's status line and tried at reconnect_max, never hammered;
// once the proxy allows the port, everything kept arrives.
TEST(Proxy, a_refusing_proxy_is_named_with_its_status_retried_slowly_and_then_passed) {
  const std::uint16_t proxy_port = free_port();
  Rig rig(through_proxy(proxy_port));
  Tinyproxy proxy({.port = proxy_port, .connect_port = 443});
  proxy.start();
  rig.start_verifier();
  rig.start_daemon();
  Process sensors = rig.stream(200, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  std::this_thread::sleep_for(7s);
  EXPECT_EQ(rig.tally().unique.size(), 0u) << "nothing passes a refusing proxy";
  const long attempts = count_of(proxy.log(), connect_line(rig));
  const std::string refused = "proxy 127.0.0.1:" + std::to_string(proxy_port) +
                              " refused CONNECT 127.0.0.1:" + std::to_string(rig.tls_port()) +
                              ": HTTP/1.1 403 Access violation";
  const std::string log = rig.daemon_log();
  std::printf("[ measured ] %ld CONNECTs refused in 7 s (reconnect_max 2 s), %ld lines saying so\n", attempts,
              count_of(log, refused));
  EXPECT_EQ(count_of(log, refused), 3) << "the error once, and the disconnection it caused (session, gateway):\n"
                                       << log;
  EXPECT_GE(attempts, 3) << "it keeps trying";
  EXPECT_LE(attempts, 5) << "at reconnect_max, not from reconnect_min up";

  proxy.kill();
  proxy.set_connect_port(rig.tls_port());
  proxy.start();
  const Tally t = rig.wait_for_all(200, 60s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(t.missing(200), 0) << rig.daemon_log();
}

// A proxy with BasicAuth answers 407 until proxy_username and proxy_password_file are set;
// the password never shows.
TEST(Proxy, proxy_credentials_are_sent_and_a_missing_one_is_named) {
  const std::uint16_t proxy_port = free_port();
  Rig rig(through_proxy(proxy_port));
  Tinyproxy proxy({.port = proxy_port, .connect_port = rig.tls_port(), .basic_auth = "gw pr0xy-Pa55"});
  proxy.start();
  rig.start_verifier();
  rig.start_daemon();
  Process sensors = rig.stream(100, 0);
  EXPECT_EQ(sensors.wait(60s), 0);
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(rig.tally().unique.size(), 0u);
  EXPECT_EQ(count_of(rig.daemon_log(), " 407 Proxy Authentication Required"), 3) << rig.daemon_log();

  const std::string secret = rig.dir().write("proxy-password", "pr0xy-Pa55\n");
  ::chmod(secret.c_str(), 0600);
  add_to_uplink(rig, "proxy_username = \"gw\"\nproxy_password_file = \"" + secret + "\"");
  rig.start_daemon();
  const Tally t = rig.wait_for_all(100, 60s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(t.missing(100), 0) << rig.daemon_log();
  EXPECT_EQ(rig.daemon_log().find("pr0xy-Pa55"), std::string::npos);
}

// The proxy killed mid-stream takes the tunnel with it: the uplink reconnects through it
// once it is back on its port, and nothing is lost.
TEST(Proxy, the_proxy_going_away_mid_stream_loses_nothing) {
  const std::uint16_t proxy_port = free_port();
  Rig rig(through_proxy(proxy_port));
  Tinyproxy proxy({.port = proxy_port, .connect_port = rig.tls_port()});
  proxy.start();
  rig.start_verifier();
  rig.start_daemon();
  Process sensors = rig.stream(3000, 500);
  rig.wait_for_unique(300, 30s);
  proxy.kill();
  std::this_thread::sleep_for(2s);
  proxy.start();
  EXPECT_EQ(sensors.wait(60s), 0);
  const Tally t = rig.wait_for_all(3000, 60s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_EQ(t.missing(3000), 0) << rig.daemon_log();
  EXPECT_EQ(t.seq_conflicts, 0);
  std::printf("[ measured ] 3000 with the proxy killed mid-stream: %ld duplicates, %ld CONNECTs\n", t.duplicates(),
              count_of(proxy.log(), connect_line(rig)));
  EXPECT_GE(count_of(proxy.log(), connect_line(rig)), 2);
}

// A "proxy" that takes the connection and never answers: the connect timeout says so.
TEST(Proxy, a_proxy_that_never_answers_times_out_waiting_for_its_answer) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);  // the kernel completes the handshakes; nobody reads
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  Rig rig(through_proxy(ntohs(a.sin_port), "connect_timeout = \"500ms\""));
  rig.start_daemon();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(rig.stop_daemon(), 0) << rig.daemon_log();
  EXPECT_NE(rig.daemon_log().find("connect timed out after 500 ms waiting for the proxy's answer to CONNECT"),
            std::string::npos)
      << rig.daemon_log();
  ::close(fd);
}

}  // namespace
}  // namespace edgegw::test
