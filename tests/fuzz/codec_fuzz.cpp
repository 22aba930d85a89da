// Fuzzes every decoder with arbitrary bytes. The first input byte picks the protocol
// version; the rest is a packet as it would arrive from a server. Decoders must never
// crash or read outside their input (ASan + UBSan are on); views they return must lie
// inside it. The same bytes also go, as an HTTP proxy's answer to CONNECT, to the uplink's
// proxy tunnel (mqtt/proxy_tunnel.hpp), in pieces of 1 to 8 bytes the first byte picks.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "mqtt/codec/packets.hpp"
#include "mqtt/proxy_tunnel.hpp"

using namespace edgegw::mqtt;

namespace {

void inside(Bytes outer, const void* p, std::size_t n) {
  auto* b = static_cast<const std::uint8_t*>(p);
  if (n && (b < outer.data() || b + n > outer.data() + outer.size())) std::abort();
}

void check_props(Bytes body, const Properties& props) {
  inside(body, props.raw.data(), props.raw.size());
  for_each_user_property(props, [&](const UserProperty& u) {
    inside(body, u.key.data(), u.key.size());
    inside(body, u.value.data(), u.value.size());
  });
}

// The answer's head ends at a line feed, never past its bound; after it, nothing more is
// taken; a refusal or acceptance has a status code that says which; its line is printable.
void connect_reply(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return;
  std::vector<std::uint8_t> answer(data + 1, data + size);
  const std::size_t piece = (data[0] >> 1 & 7) + 1;
  ConnectReply r;
  std::size_t used = 0;
  for (std::size_t at = 0; at < answer.size(); at += piece) {
    const std::size_t n = std::min(piece, answer.size() - at);
    const bool done = r.state() != ConnectReply::State::reading;
    const std::size_t k = r.feed(std::span(answer.data() + at, n));
    if (k > n || (done && k != 0)) std::abort();
    used += k;
  }
  if (used > ConnectReply::k_max_head + 1) std::abort();
  const ConnectReply::State s = r.state();
  if ((s == ConnectReply::State::accepted || s == ConnectReply::State::refused) && answer[used - 1] != '\n')
    std::abort();
  if (s == ConnectReply::State::accepted && r.status() / 100 != 2) std::abort();
  if (s == ConnectReply::State::refused && (r.status() / 100 == 2 || r.status() < 100 || r.status() > 999))
    std::abort();
  for (const char* c = r.status_line(); *c; ++c) {
    if (*c < 0x20 || *c > 0x7e || c - r.status_line() >= 127) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  connect_reply(data, size);
  if (size < 2) return 0;
  const Version v = (data[0] & 1) ? Version::v5 : Version::v311;
  // Copy into an exact-size heap block so an overread is an ASan report.
  std::vector<std::uint8_t> packet(data + 1, data + size);
  FixedHeader h;
  if (decode_fixed_header(packet, h) != HeaderStatus::ok) return 0;
  if (h.size + static_cast<std::size_t>(h.remaining) > packet.size()) return 0;
  std::vector<std::uint8_t> body_copy(packet.begin() + h.size, packet.begin() + h.size + h.remaining);
  Bytes body(body_copy);
  switch (h.type) {
    case PacketType::connect: {
      Connect c;
      if (decode(body, c) == Reason::success) {
        inside(body, c.client_id.data(), c.client_id.size());
        check_props(body, c.props);
        // What decodes must encode again.
        std::vector<std::uint8_t> out(packet.size() + 16);
        if (encode(out, c) == 0) std::abort();
      }
      break;
    }
    case PacketType::connack: {
      Connack c;
      if (decode(body, v, c) == Reason::success) check_props(body, c.props);
      break;
    }
    case PacketType::publish: {
      Publish p;
      if (decode(h, body, v, p) == Reason::success) {
        inside(body, p.topic.data(), p.topic.size());
        inside(body, p.payload.data(), p.payload.size());
        check_props(body, p.props);
        std::vector<std::uint8_t> out(packet.size() + 16);
        p.props.user = {};
        p.props.present = 0;
        if (encode(out, p, v) == 0) std::abort();
      }
      break;
    }
    case PacketType::puback:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp: {
      Ack a;
      if (decode(h, body, v, a) == Reason::success) check_props(body, a.props);
      break;
    }
    case PacketType::subscribe: {
      Subscribe s;
      if (decode(body, v, s) == Reason::success)
        for_each_subscription(s, [&](const Subscription& sub) { inside(body, sub.filter.data(), sub.filter.size()); });
      break;
    }
    case PacketType::unsubscribe: {
      Unsubscribe u;
      if (decode(body, v, u) == Reason::success)
        for_each_filter(u, [&](std::string_view f) { inside(body, f.data(), f.size()); });
      break;
    }
    case PacketType::suback:
    case PacketType::unsuback: {
      SubAck s;
      if (decode(h, body, v, s) == Reason::success) inside(body, s.reasons.data(), s.reasons.size());
      break;
    }
    case PacketType::disconnect: {
      Disconnect d;
      if (decode(body, v, d) == Reason::success) check_props(body, d.props);
      break;
    }
    default: break;
  }
  return 0;
}
