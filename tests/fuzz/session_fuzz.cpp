// Fuzzes an mqtt::Session with what a hostile or broken server could send: sequences of
// CONNACK, SUBACK, PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP, PINGRESP and DISCONNECT with
// fuzzed fields and properties, raw bytes between them, reads cut at any byte, connections
// that end, and the application's calls (publish, ack, hold) in between. Once as an
// uplink-like session (publishes, no pool) and once as an ingest-like one (subscribes,
// receives into a small pool).
//
// The session must never crash or read outside its buffers (ASan + UBSan), and it must
// either go on or close with an error. Beyond that, checked here:
//  - every packet it writes decodes (whatever the server sent, the client stays well-formed);
//  - a received message's topic and payload lie inside its pool slot;
//  - on_published() names a cookie that is queued, and each one once;
//  - after stop() no pool slot is left taken.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "mqtt/session.hpp"
#include "util/log.hpp"

using namespace edgegw;
using namespace edgegw::mqtt;

namespace {

// An in-memory connection. Its fd is an eventfd that is always readable and writable, so
// the loop offers the session I/O on every iteration; read() says would_block when the
// fuzzer has queued nothing.
class MemTransport final : public Transport {
 public:
  MemTransport() {
    static const int efd = [] {
      const int fd = ::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
      if (fd < 0) std::abort();
      return fd;
    }();
    m_efd = efd;
  }

  Progress open() override {
    m_open = true;
    m_end = IoStatus::ok;
    m_in.clear();
    m_in_pos = 0;
    m_out.clear();
    ++opens;
    return slow_open ? Progress::want_write : Progress::done;
  }
  Progress progress() override { return Progress::done; }
  IoResult read(std::span<std::uint8_t> into) override {
    if (!m_open) return {IoStatus::error};
    if (m_in_pos == m_in.size()) return {m_end == IoStatus::ok ? IoStatus::would_block : m_end};
    const std::size_t n = std::min({into.size(), m_in.size() - m_in_pos, chunk});
    std::memcpy(into.data(), m_in.data() + m_in_pos, n);
    m_in_pos += n;
    return {IoStatus::ok, n};
  }
  IoResult write(std::span<const std::uint8_t> from) override {
    if (!m_open) return {IoStatus::error};
    m_out.insert(m_out.end(), from.begin(), from.end());
    parse_output();
    return {IoStatus::ok, from.size()};
  }
  void close() override { m_open = false; }
  int fd() const override { return m_open ? m_efd : -1; }
  const char* error() const override { return "in-memory connection ended"; }

  // What the server sends next.
  void send(const std::uint8_t* p, std::size_t n) { m_in.insert(m_in.end(), p, p + n); }
  void end(IoStatus how) { m_end = how; }
  bool is_open() const { return m_open; }

  std::size_t chunk = 1 << 20;  // most bytes one read() returns
  bool slow_open = false;
  int opens = 0;
  std::uint16_t last_subscribe_id = 0;
  std::vector<std::uint16_t> publish_ids;  // QoS 1/2 packet ids the client sent, newest last

 private:
  // Decodes every packet the client wrote; a malformed one is a finding.
  void parse_output() {
    std::size_t off = 0;
    while (off < m_out.size()) {
      FixedHeader h;
      const Bytes rest(m_out.data() + off, m_out.size() - off);
      const HeaderStatus st = decode_fixed_header(rest, h);
      if (st == HeaderStatus::malformed) std::abort();
      if (st == HeaderStatus::need_more || h.size + std::size_t{h.remaining} > rest.size()) break;
      const Bytes body = rest.subspan(h.size, h.remaining);
      const Version v = m_version;
      Reason r = Reason::success;
      switch (h.type) {
        case PacketType::connect: {
          Connect c;
          r = decode(body, c);
          m_version = c.version;
          break;
        }
        case PacketType::publish: {
          Publish p;
          r = decode(h, body, v, p);
          if (r == Reason::success && p.qos > 0) publish_ids.push_back(p.packet_id);
          break;
        }
        case PacketType::puback:
        case PacketType::pubrec:
        case PacketType::pubrel:
        case PacketType::pubcomp: {
          Ack a;
          r = decode(h, body, v, a);
          break;
        }
        case PacketType::subscribe: {
          Subscribe s;
          r = decode(body, v, s);
          last_subscribe_id = s.packet_id;
          break;
        }
        case PacketType::disconnect: {
          Disconnect d;
          r = decode(body, v, d);
          break;
        }
        case PacketType::pingreq: r = body.empty() ? Reason::success : Reason::malformed_packet; break;
        default: std::abort();  // nothing else is the client's to send
      }
      if (r != Reason::success) std::abort();
      off += h.size + h.remaining;
    }
    m_out.erase(m_out.begin(), m_out.begin() + static_cast<std::ptrdiff_t>(off));
  }

  int m_efd = -1;
  bool m_open = false;
  IoStatus m_end = IoStatus::ok;
  std::vector<std::uint8_t> m_in;
  std::size_t m_in_pos = 0;
  std::vector<std::uint8_t> m_out;
  Version m_version = Version::v5;
};

class Handler final : public SessionHandler {
 public:
  explicit Handler(mem::Pool* pool) : m_pool(pool) {}

  void on_connected(bool) override {}
  void on_disconnected(const DisconnectInfo& info) override {
    if (!info.detail) std::abort();
  }
  void on_message(const Message& m, AckToken token) override {
    const std::uint8_t* lo = m.slot->data;
    const std::uint8_t* hi = lo + m.slot->capacity;
    const auto* t = reinterpret_cast<const std::uint8_t*>(m.topic.data());
    if (t < lo || t + m.topic.size() > hi || m.payload.data() < lo || m.payload.data() + m.payload.size() > hi)
      std::abort();
    if (m.qos > 2) std::abort();
    held_slots.push_back(m.slot);
    if (m.qos > 0) held.push_back(token);
  }
  void on_published(std::uint64_t cookie, Reason) override {
    if (queued.erase(cookie) != 1) std::abort();  // not queued, or reported twice
  }

  // The application is done with what it holds.
  void ack_all(Session& s) {
    for (AckToken t : held) s.ack(t);
    held.clear();
    release_all();
  }
  void release_all() {
    for (mem::Slot* slot : held_slots) m_pool->release(slot);
    held_slots.clear();
  }

  std::set<std::uint64_t> queued;  // QoS 1 cookies awaiting on_published
  std::vector<AckToken> held;
  std::vector<mem::Slot*> held_slots;

 private:
  mem::Pool* m_pool;
};

const Reason k_reasons[] = {Reason::success,
                            Reason::granted_qos1,
                            Reason::granted_qos2,
                            Reason::no_matching_subscribers,
                            Reason::unspecified_error,
                            Reason::malformed_packet,
                            Reason::protocol_error,
                            Reason::unsupported_protocol_version,
                            Reason::not_authorized,
                            Reason::server_busy,
                            Reason::session_taken_over,
                            Reason::topic_filter_invalid,
                            Reason::packet_id_not_found,
                            Reason::receive_maximum_exceeded,
                            Reason::quota_exceeded,
                            Reason::qos_not_supported,
                            Reason::use_another_server,
                            Reason::shared_subscriptions_not_supported,
                            Reason::wildcard_subscriptions_not_supported};

Reason pick_reason(FuzzedDataProvider& in) {
  if (in.ConsumeBool()) return static_cast<Reason>(in.ConsumeIntegral<std::uint8_t>());
  return in.PickValueInArray(k_reasons);
}

// A packet id the client used (or any): answers that match are what reach deep states.
std::uint16_t pick_id(FuzzedDataProvider& in, const MemTransport& t, bool subscribe) {
  if (in.ConsumeBool()) return in.ConsumeIntegral<std::uint16_t>();
  if (subscribe) return t.last_subscribe_id;
  if (t.publish_ids.empty()) return 1;
  return t.publish_ids[t.publish_ids.size() - 1 - in.ConsumeIntegralInRange<std::size_t>(0, t.publish_ids.size() - 1)];
}

// Properties with fuzzed ids (those a server may send and some it may not) and values.
// The strings live in `keep` until the packet is encoded.
Properties pick_props(FuzzedDataProvider& in, std::vector<std::string>& keep, std::vector<UserProperty>& user) {
  Properties p;
  if (!in.ConsumeBool()) return p;
  p.present = in.ConsumeIntegral<std::uint64_t>() & ((std::uint64_t{1} << 0x2b) - 2) &
              ~(std::uint64_t{1} << static_cast<unsigned>(PropertyId::user_property));
  // Only ids the codec knows how to write: the rest are a raw-bytes affair.
  for (unsigned id = 1; id < 0x2b; ++id) {
    if (!(id == 1 || id == 2 || id == 3 || id == 8 || id == 9 || id == 0x0b || (id >= 0x11 && id <= 0x13) ||
          (id >= 0x15 && id <= 0x1a) || id == 0x1c || id == 0x1f || (id >= 0x21 && id <= 0x25) ||
          (id >= 0x27 && id <= 0x2a))) {
      p.present &= ~(std::uint64_t{1} << id);
    }
  }
  p.payload_format = in.ConsumeIntegral<std::uint8_t>();
  p.maximum_qos = in.ConsumeIntegralInRange<std::uint8_t>(0, 3);
  p.retain_available = in.ConsumeIntegralInRange<std::uint8_t>(0, 2);
  p.wildcard_sub_available = in.ConsumeBool();
  p.server_keepalive = in.ConsumeIntegral<std::uint16_t>();
  p.receive_maximum = in.ConsumeIntegral<std::uint16_t>();
  p.topic_alias_maximum = in.ConsumeIntegral<std::uint16_t>();
  p.topic_alias = in.ConsumeIntegral<std::uint16_t>();
  p.maximum_packet_size = in.ConsumeIntegral<std::uint32_t>();
  p.session_expiry = in.ConsumeIntegral<std::uint32_t>();
  p.subscription_id = in.ConsumeIntegralInRange<std::uint32_t>(0, 300000000);
  p.message_expiry = in.ConsumeIntegral<std::uint32_t>();
  keep.push_back(in.ConsumeRandomLengthString(24));
  p.assigned_client_id = p.reason_string = p.content_type = p.response_topic = keep.back();
  p.server_reference = p.response_info = p.auth_method = keep.back();
  if (in.ConsumeBool()) {
    keep.push_back(in.ConsumeRandomLengthString(16));
    keep.push_back(in.ConsumeRandomLengthString(16));
    user.push_back({keep[keep.size() - 2], keep.back()});
    p.user = user;
  }
  return p;
}

Bytes as_bytes(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

// One packet (or raw bytes) from the server, queued on the transport.
void server_sends(FuzzedDataProvider& in, MemTransport& t, Version v) {
  std::vector<std::uint8_t> out(4096);
  std::vector<std::string> keep;
  keep.reserve(8);  // views into it must not move
  std::vector<UserProperty> user;
  std::size_t n = 0;
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0: {
      Connack c;
      c.session_present = in.ConsumeBool();
      c.reason = in.ConsumeBool() ? Reason::success : pick_reason(in);
      if (v == Version::v5) c.props = pick_props(in, keep, user);
      n = encode(out, c, v);
      break;
    }
    case 1: {
      SubAck s;
      s.packet_id = pick_id(in, t, true);
      if (v == Version::v5) s.props = pick_props(in, keep, user);
      std::uint8_t reasons[4];
      const std::size_t count = in.ConsumeIntegralInRange<std::size_t>(1, 4);
      for (std::size_t i = 0; i < count; ++i) reasons[i] = static_cast<std::uint8_t>(pick_reason(in));
      s.reasons = Bytes(reasons, count);
      n = encode(out, s, v);
      break;
    }
    case 2: {
      Publish p;
      p.qos = in.ConsumeIntegralInRange<std::uint8_t>(0, 2);
      p.dup = p.qos > 0 && in.ConsumeBool();
      p.retain = in.ConsumeBool();
      p.packet_id = p.qos ? pick_id(in, t, false) : 0;
      keep.push_back(in.ConsumeBool() ? std::string("sensors/a") : in.ConsumeRandomLengthString(40));
      p.topic = keep.back();
      // Up to past the pool's slot size (256 + headroom): oversize messages are refused.
      keep.push_back(std::string(in.ConsumeIntegralInRange<std::size_t>(0, 900), 'p'));
      p.payload = as_bytes(keep.back());
      if (v == Version::v5) p.props = pick_props(in, keep, user);
      n = encode(out, p, v);
      break;
    }
    case 3: {
      Ack a;
      const PacketType types[] = {PacketType::puback, PacketType::pubrec, PacketType::pubrel, PacketType::pubcomp};
      a.type = in.PickValueInArray(types);
      a.packet_id = pick_id(in, t, false);
      if (v == Version::v5) {
        a.reason = pick_reason(in);
        a.props = pick_props(in, keep, user);
      }
      n = encode(out, a, v);
      break;
    }
    case 4: n = encode_ping(out, PacketType::pingresp); break;
    case 5: {
      Disconnect d;
      d.reason = pick_reason(in);
      if (v == Version::v5) d.props = pick_props(in, keep, user);
      n = encode(out, d, v);
      break;
    }
    case 6: {  // bytes no encoder would write
      const std::string raw = in.ConsumeRandomLengthString(64);
      t.send(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
      return;
    }
    case 7: {  // a packet cut short or padded: the fixed header lies about the length
      const std::string raw = in.ConsumeRandomLengthString(32);
      const std::uint8_t first[] = {0x20, 0x30, 0x32, 0x34, 0x40, 0x50, 0x62, 0x70, 0x90, 0xb0, 0xd0, 0xe0, 0xf0};
      const std::uint8_t head[] = {in.PickValueInArray(first), in.ConsumeIntegral<std::uint8_t>()};
      t.send(head, 2);
      t.send(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
      return;
    }
  }
  t.send(out.data(), n);
}

void run(FuzzedDataProvider& in, bool ingest) {
  event::Loop loop;
  mem::Pool pool(4, 256);
  MemTransport t;
  Handler handler(&pool);
  SessionOptions o;
  o.config_key = ingest ? "ingest" : "uplink";
  o.version = in.ConsumeBool() ? Version::v5 : Version::v311;
  o.version_fallback = in.ConsumeBool();
  o.client_id = ingest ? "fuzz-in" : "fuzz-up";
  o.clean_start = in.ConsumeBool();
  o.keepalive_s = 0;  // keepalive runs on real time: left out so an input always does the same
  o.receive_maximum = in.ConsumeIntegralInRange<std::uint16_t>(1, 8);
  o.max_inflight = in.ConsumeIntegralInRange<std::uint16_t>(1, 8);
  o.publish_qos = ingest ? 0 : 1;
  if (ingest) {
    o.subscriptions = {"sensors/#", "alarms/+/x"};
    o.subscribe_qos = in.ConsumeIntegralInRange<std::uint8_t>(0, 2);
    // Retain As Published, and Retain Handling 0-2 (3 is not one).
    o.subscribe_options_v5 =
        static_cast<std::uint8_t>((in.ConsumeBool() ? 0x08 : 0) | in.ConsumeIntegralInRange(0, 2) << 4);
  }
  o.rx_buffer_bytes = in.ConsumeBool() ? 64 : 8192;  // small: CONNACKs with properties overflow it
  // Reconnects and resubscriptions at once: timers that are due now fire on the next
  // iteration, whatever the clock says.
  o.reconnect_min = o.reconnect_max = o.resubscribe_min = event::Duration(0);
  o.random_seed = 1;
  t.chunk = in.ConsumeBool() ? 1 << 20 : in.ConsumeIntegralInRange<std::size_t>(1, 16);
  t.slow_open = in.ConsumeBool();

  Session s(loop, t, ingest ? &pool : nullptr, o, handler);
  s.start();
  std::uint64_t cookie = 0;
  const std::string payload(300, 'u');
  for (int step = 0; step < 48 && in.remaining_bytes() > 0; ++step) {
    switch (in.ConsumeIntegralInRange(0, 7)) {
      case 0:
      case 1:
      case 2: server_sends(in, t, s.version()); break;
      case 3: {  // the application publishes
        OutMessage m;
        m.topic_prefix = ingest ? "" : "site/";
        m.topic = "sensors/a";
        m.payload = Bytes(reinterpret_cast<const std::uint8_t*>(payload.data()),
                          in.ConsumeIntegralInRange<std::size_t>(0, 300));
        m.qos = ingest ? 0 : in.ConsumeIntegralInRange<std::uint8_t>(0, 1);
        m.retain = in.ConsumeBool();
        if (s.publish(m, ++cookie) == PublishStatus::queued && m.qos == 1) handler.queued.insert(cookie);
        break;
      }
      case 4: handler.ack_all(s); break;
      case 5: s.hold_input(in.ConsumeBool()); break;
      case 6: t.end(in.ConsumeBool() ? IoStatus::closed : IoStatus::error); break;
      case 7: break;  // just time passing (loop iterations)
    }
    for (int i = in.ConsumeIntegralInRange(1, 3); i > 0; --i) loop.run_once(event::Duration(0));
  }
  s.stop();
  if (s.state() != SessionState::stopped || t.is_open()) std::abort();
  handler.release_all();
  if (pool.in_use() != 0) std::abort();  // a slot the session kept for itself
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = (util::set_log_level(util::Level::silent), true);
  (void)quiet;
  FuzzedDataProvider in(data, size);
  run(in, in.ConsumeBool());
  return 0;
}
