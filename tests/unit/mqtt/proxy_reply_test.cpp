// The proxy's answer to CONNECT (mqtt/proxy_tunnel.hpp): read in pieces however the bytes
// arrive, never past its head, bounded, and garbage refused.
#include <gtest/gtest.h>

#include <string>

#include "mqtt/proxy_tunnel.hpp"

using namespace edgegw::mqtt;

namespace {

std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Feeds `text` in pieces of `piece` bytes; returns how many bytes the head took.
std::size_t feed_in_pieces(ConnectReply& r, const std::string& text, std::size_t piece) {
  std::size_t used = 0;
  for (std::size_t at = 0; at < text.size() && r.state() == ConnectReply::State::reading; at += piece) {
    used += r.feed(bytes(text.substr(at, piece)));
  }
  return used;
}

}  // namespace

TEST(ProxyReply, accepts_a_2xx_head_split_anywhere_and_leaves_what_follows) {
  const std::string head = "HTTP/1.1 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n";
  for (std::size_t piece = 1; piece <= head.size() + 5; ++piece) {
    ConnectReply r;
    EXPECT_EQ(feed_in_pieces(r, head + "\x16\x03\x03tls", piece), head.size()) << piece;
    EXPECT_EQ(r.state(), ConnectReply::State::accepted) << piece;
    EXPECT_EQ(r.status(), 200);
    EXPECT_STREQ(r.status_line(), "HTTP/1.1 200 Connection established");
  }
  ConnectReply r;
  EXPECT_EQ(r.feed(bytes("HTTP/1.0 204\n\n")), 14u) << "bare LF, and no reason phrase";
  EXPECT_EQ(r.state(), ConnectReply::State::accepted);
}

TEST(ProxyReply, waits_for_the_blank_line) {
  ConnectReply r;
  EXPECT_EQ(r.feed(bytes("HTTP/1.1 200 OK\r\nVia: x\r\n")), 25u);
  EXPECT_EQ(r.state(), ConnectReply::State::reading);
  EXPECT_EQ(r.feed(bytes("\r")), 1u);
  EXPECT_EQ(r.state(), ConnectReply::State::reading);
  EXPECT_EQ(r.feed(bytes("\n")), 1u);
  EXPECT_EQ(r.state(), ConnectReply::State::accepted);
}

TEST(ProxyReply, a_non_2xx_status_is_a_refusal_with_its_line) {
  ConnectReply r;
  const std::string head = "HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n<html>";
  EXPECT_EQ(r.feed(bytes(head)), head.size() - 6);
  EXPECT_EQ(r.state(), ConnectReply::State::refused);
  EXPECT_EQ(r.status(), 407);
  EXPECT_STREQ(r.status_line(), "HTTP/1.0 407 Proxy Authentication Required");
  r.reset();
  r.feed(bytes("HTTP/1.1 403 Access violation\r\n\r\n"));
  EXPECT_EQ(r.state(), ConnectReply::State::refused);
  EXPECT_EQ(r.status(), 403);
}

TEST(ProxyReply, garbage_and_overlong_heads_are_malformed) {
  for (const std::string bad : {"SSH-2.0-OpenSSH\r\n", "\x16\x03\x01", "\r\n\r\n", "HTTP/1.1 2000 OK\r\n",
                                "HTTP/1.1 abc\r\n", "HTTP/1.1\r\n", "HTTP/1.1 099 x\r\n", "HTTP\r\n"}) {
    ConnectReply r;
    r.feed(bytes(bad));
    EXPECT_EQ(r.state(), ConnectReply::State::malformed) << bad;
    EXPECT_FALSE(r.too_long());
  }
  ConnectReply r;
  r.feed(bytes("HTTP/1.1 200 OK\r\n"));
  const std::string header = "X-Pad: " + std::string(100, 'x') + "\r\n";
  std::size_t used = 17;
  while (r.state() == ConnectReply::State::reading) used += r.feed(bytes(header));
  EXPECT_EQ(r.state(), ConnectReply::State::malformed);
  EXPECT_TRUE(r.too_long());
  EXPECT_EQ(used, ConnectReply::k_max_head + 1) << "not a byte read past the bound";
  r.reset();
  r.feed(bytes("HTTP/1.1 502 \x01\xff" + std::string(300, 'y') + "\r\n"));
  EXPECT_EQ(std::string(r.status_line()).substr(0, 15), "HTTP/1.1 502 ??");
  EXPECT_EQ(std::string(r.status_line()).size(), 127u) << "cut, printable";
}
