#include "gateway/gateway.hpp"

#include <sys/epoll.h>
#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "edgegw/build_info.hpp"
#include "util/log.hpp"

namespace edgegw::gateway {
namespace {

std::uint64_t realtime_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t steady_ns(event::TimePoint t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

mqtt::Version version(config::MqttVersion v) { return v == config::MqttVersion::v311 ? mqtt::Version::v311 : mqtt::Version::v5; }

void retry(mqtt::SessionOptions& o, const config::Retry& r) {
  o.connect_timeout = std::chrono::duration_cast<event::Duration>(r.connect_timeout);
  o.reconnect_min = std::chrono::duration_cast<event::Duration>(r.reconnect_min);
  o.reconnect_max = std::chrono::duration_cast<event::Duration>(r.reconnect_max);
}

tls::Options tls_options(const config::Tls& t, const char* key) {
  return tls::Options{key, t.ca_file, t.cert_file, t.key_file, t.server_name, t.alpn};
}

}  // namespace

bool Gateway::make_link(const config::Url& url, const config::Tls& tls_config, const char* key, Link& link,
                             std::string& error) {
  if (url.scheme == config::Scheme::unix_socket) {
    link.transport = std::make_unique<mqtt::TcpTransport>(mqtt::TcpTransport::unix_socket(url.path));
    return true;
  }
  if (url.scheme == config::Scheme::mqtt) {
    link.transport = std::make_unique<mqtt::TcpTransport>(mqtt::TcpTransport::tcp(url.host, url.port));
    return true;
  }
  link.context = tls::Context::load(tls_options(tls_config, key), error);
  if (!link.context) return false;
  auto t = std::make_unique<tls::Transport>(*link.context, mqtt::TcpTransport::tcp(url.host, url.port), url.host);
  link.tls = t.get();
  link.transport = std::move(t);
  return true;
}

namespace {

void log_tls(const char* name, const Gateway::Link& link) {
  if (!link.tls) return;
  const tls::Stats& s = link.tls->stats();
  EGW_LOG(info, "%s: TLS %s%s%s, %s handshake of %" PRIu64 " bytes in %.1f ms, session heap %zu bytes", name,
          link.tls->ciphersuite(), link.tls->alpn()[0] ? ", ALPN " : "", link.tls->alpn(),
          s.last_resumed ? "resumed" : "full", s.last_handshake_bytes,
          static_cast<double>(s.last_handshake_us) / 1e3, link.tls->heap_bytes());
}

}  // namespace

class Gateway::IngestHandler final : public mqtt::SessionHandler {
 public:
  explicit IngestHandler(Gateway& g) : m_g(g) {}
  void on_connected(bool session_present) override {
    EGW_LOG(notice, "ingest: connected to %s (session %s)", m_g.m_config.ingest.url.text.c_str(),
            session_present ? "resumed" : "new");
    log_tls("ingest", m_g.m_in);
  }
  void on_disconnected(const mqtt::DisconnectInfo& info) override {
    EGW_LOG_LIMITED(warning, "ingest: disconnected from %s: %s", m_g.m_config.ingest.url.text.c_str(), info.detail);
    m_g.m_subscribed = false;
    m_g.m_subscriptions_text[0] = '\0';
  }
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override { m_g.on_message(m, token); }
  void on_subscribed(mqtt::Bytes states) override {
    m_g.describe_subscriptions(states);
    const bool all = std::none_of(states.begin(), states.end(), [](std::uint8_t s) { return s >= 0x80; });
    if (all) EGW_LOG(info, "ingest: %s", m_g.m_subscriptions_text);
    else EGW_LOG_LIMITED(warning, "ingest: %s", m_g.m_subscriptions_text);
    m_g.m_subscribed = all;
  }

 private:
  Gateway& m_g;
};

class Gateway::UplinkHandler final : public mqtt::SessionHandler {
 public:
  explicit UplinkHandler(Gateway& g) : m_g(g) {}
  void on_connected(bool) override {
    EGW_LOG(notice, "uplink: connected to %s", m_g.m_config.uplink.url.text.c_str());
    log_tls("uplink", m_g.m_up);
    m_g.on_uplink_state();
  }
  void on_disconnected(const mqtt::DisconnectInfo& info) override {
    EGW_LOG_LIMITED(warning, "uplink: disconnected from %s: %s", m_g.m_config.uplink.url.text.c_str(), info.detail);
    m_g.on_uplink_state();
  }
  void on_message(const mqtt::Message& m, mqtt::AckToken) override { m_g.m_pool->release(m.slot); }
  void on_published(std::uint64_t cookie, mqtt::Reason reason) override { m_g.on_published(cookie, reason); }

 private:
  Gateway& m_g;
};

Gateway::Gateway(event::Loop& loop, const config::Config& config, spool::Disk* disk)
    : m_loop(loop), m_config(config), m_disk(disk), m_kick_timer(loop, *this), m_drain_timer(loop, *this),
      m_grace_timer(loop, *this), m_refused_timer(loop, *this), m_stall_timer(loop, *this) {}

Gateway::~Gateway() {
  if (m_sync_registered) m_loop.remove(m_sync.fd());
}

bool Gateway::start(std::string& error) {
  const config::Config& c = m_config;
  if (!make_link(c.ingest.url, c.ingest.tls, "ingest.tls", m_in, error) ||
      !make_link(c.uplink.url, c.uplink.tls, "uplink.tls", m_up, error)) {
    return false;
  }

  spool::Options so;
  so.dir = c.gateway.state_dir + "/spool";
  so.max_bytes = c.spool.max_bytes;
  so.sync = c.spool.sync == config::SpoolSync::batch;
  so.drop_oldest = c.spool.when_full == config::WhenFull::drop_oldest;
  // A batch holds the largest record at least; 1 MiB covers hundreds of typical ones.
  so.batch_bytes = std::max<std::size_t>(1 << 20, 2 * (std::size_t{c.pool.slot_bytes} + 64 * 1024));
  so.disk = m_disk;
  m_spool = std::make_unique<spool::Spool>(so);
  std::string why;
  if (!m_spool->open(why)) {
    error = "gateway.state_dir: " + why;
    return false;
  }
  if (!m_sync.start(why)) {
    error = "spool: " + why;
    return false;
  }
  if (!m_loop.add(m_sync.fd(), EPOLLIN, this)) {
    error = std::string("spool: watching the sync thread: ") + std::strerror(errno);
    return false;
  }
  m_sync_registered = true;
  EGW_LOG(info, "spool: %s: recovery took %.3f ms, read %" PRIu64 " bytes; %" PRIu64 " records to send",
          so.dir.c_str(), static_cast<double>(m_spool->stats().recovery_ns) / 1e6,
          m_spool->stats().recovery_bytes_read, m_spool->stats().recovered_records);

  m_pool = std::make_unique<mem::Pool>(c.pool.slots, c.pool.slot_bytes);
  m_fresh_cap = c.pool.slots;
  m_fresh = std::make_unique<Fresh[]>(m_fresh_cap);
  m_acks_cap = c.pool.slots + 2u * c.ingest.receive_maximum;
  m_acks = std::make_unique<LocalAck[]>(m_acks_cap);
  m_infl_cap = c.uplink.max_inflight;
  m_infl = std::make_unique<Inflight[]>(m_infl_cap);
  m_send_seq = m_spool->acked_seq() + 1;
  m_tokens = std::max<double>(1, c.uplink.max_inflight);
  m_tokens_at = m_loop.now();

  mqtt::SessionOptions in;
  in.config_key = "ingest";
  in.version = version(c.ingest.mqtt_version);
  in.version_fallback = c.ingest.mqtt_version == config::MqttVersion::automatic;
  in.client_id = c.ingest.client_id;
  in.clean_start = false;  // the local broker keeps our messages while we are down
  in.keepalive_s = c.ingest.keepalive_s;
  in.subscriptions = c.ingest.topics;
  in.subscribe_qos = c.ingest.qos;
  // Retain As Published, so the retain flag goes upstream as the sensor set it; Retain
  // Handling 1, so retained messages come once, not again on every reconnect.
  in.subscribe_options_v5 = 0x08 | 0x10;
  in.receive_maximum = c.ingest.receive_maximum;
  retry(in, c.ingest.retry);
  m_in_handler = std::make_unique<IngestHandler>(*this);
  m_ingest = std::make_unique<mqtt::Session>(m_loop, *m_in.transport, m_pool.get(), in, *m_in_handler);

  mqtt::SessionOptions up;
  up.config_key = "uplink";
  up.version = version(c.uplink.mqtt_version);
  up.version_fallback = c.uplink.mqtt_version == config::MqttVersion::automatic;
  up.publish_qos = c.uplink.qos;
  up.client_id = c.uplink.client_id;
  up.clean_start = true;  // resends after a reconnect come from our own window
  up.keepalive_s = c.uplink.keepalive_s;
  retry(up, c.uplink.retry);
  up.max_inflight = c.uplink.max_inflight;
  // Room for the largest message accepted (topic + payload = slot_bytes) as a whole
  // PUBLISH: what the packet adds to prefix, topic and payload is at most 5 (fixed header)
  // + 4 (topic length, packet id) + 4 (properties length) + 2 x 5 + 2 + 64 + 3 + 20 (the
  // gw and seq user properties) = 112 bytes. The session keeps 1 KiB more for acks and pings.
  constexpr std::size_t k_publish_overhead = 128;
  up.tx_buffer_bytes = c.pool.slot_bytes + c.uplink.topic_prefix.size() + k_publish_overhead + 1024;
  m_up_handler = std::make_unique<UplinkHandler>(*this);
  m_uplink = std::make_unique<mqtt::Session>(m_loop, *m_up.transport, nullptr, up, *m_up_handler);

  m_phase = Phase::running;
  m_started_at = m_loop.now();
  m_uplink->start();
  m_ingest->start();
  EGW_LOG(notice,
          "gateway %s: %s -> %s, pool %u x %u bytes, spool %" PRIu64 " bytes max in %s, sync %s, commit interval %.1f ms",
          c.gateway.id.c_str(), c.ingest.url.text.c_str(), c.uplink.url.text.c_str(), c.pool.slots, c.pool.slot_bytes,
          c.spool.max_bytes, so.dir.c_str(), so.sync ? "batch" : "none",
          std::chrono::duration<double, std::milli>(c.spool.commit_interval).count());
  schedule();
  return true;
}

// ---- ingest -------------------------------------------------------------------------

void Gateway::on_message(const mqtt::Message& m, mqtt::AckToken token) {
  ++m_counters.received;
  if (m_phase != Phase::running) {  // shutting down: not acknowledged, redelivered later
    m_pool->release(m.slot);
    return;
  }
  Fresh& f = m_fresh[m_fresh_tail++ % m_fresh_cap];
  f = Fresh{m.slot, m.topic, m.payload, realtime_ns(), 0, token, m.qos, m.retain};
  // Records go into the spool in arrival order: behind held ones, this one waits too.
  const bool held = m_fresh_tail - m_fresh_head > 1 && m_fresh[(m_fresh_tail - 2) % m_fresh_cap].seq == 0;
  if (!held) append(f);
  schedule();  // the batch goes to the sync thread at the end of this iteration
}

bool Gateway::append(Fresh& f) {
  std::uint64_t seq = 0;
  switch (m_spool->append(f.topic, f.payload, f.qos, f.retain, f.received_ns, seq)) {
    case spool::Append::ok:
      f.seq = seq;
      ++m_counters.spooled;
#ifdef EDGEGW_TEST_ACK_BEFORE_FSYNC
      // The test-only build edgegw-ack-before-fsync (src/CMakeLists.txt): acknowledged now,
      // durable only at the next commit. tests/vm's power cuts must catch this.
      if (f.qos > 0) {
        m_ingest->ack(f.token);
        ++m_counters.acked_local;
      }
      return true;
#endif
      if (f.qos > 0) m_acks[m_acks_tail++ % m_acks_cap] = LocalAck{seq, f.token, f.received_ns};
      return true;
    case spool::Append::busy:  // the batch is full, or the next segment not ready: after this sync
      m_holding = true;
      return false;
    case spool::Append::full:
      // Read nothing more until it fits: held messages keep their slots, and the replay
      // that frees the spool needs slots too.
      m_ingest->hold_input(true);
      if (!m_full) {
        if (m_spool->disk_full()) {
          EGW_LOG(warning, "spool: full (the disk has no room for the next segment, at %" PRIu64 " of %" PRIu64
                           " bytes); holding ingest until there is room", m_spool->bytes(), m_spool->max_bytes());
        } else {
          EGW_LOG(warning, "spool: full (%" PRIu64 " of %" PRIu64 " bytes); holding ingest until upstream catches up",
                  m_spool->bytes(), m_spool->max_bytes());
        }
        m_full = true;
      }
      m_holding = true;
      return false;
    case spool::Append::failed: fatal(); return false;
  }
  return false;
}

// Retries the messages held back, oldest first; once none is left, ingest reads again.
void Gateway::append_held() {
  if (!m_holding) return;
  for (std::size_t i = m_fresh_head; i != m_fresh_tail; ++i) {
    Fresh& f = m_fresh[i % m_fresh_cap];
    if (f.seq == 0 && !append(f)) return;
  }
  m_holding = false;
  if (m_full) m_ingest->hold_input(m_phase == Phase::draining);
  m_full = false;
}

// ---- durability: the sync thread ----------------------------------------------------

// Hands the spool's due work (the batch, the next segment file, deletions, the cursor)
// to the sync thread, unless it is busy: then what arrives meanwhile waits for the next
// job. spool.commit_interval spaces syncs on boards that trade latency for flash writes.
void Gateway::kick() {
  if (m_sync.busy() || m_exit_code != 0 || m_phase == Phase::stopped) return;
  const event::TimePoint now = m_loop.now();
  const auto interval = std::chrono::duration_cast<event::Duration>(m_config.spool.commit_interval);
  if (m_spool->has_uncommitted() && now < m_sync_started + interval) return wake_at(m_sync_started + interval);
  spool::Job* job = m_spool->prepare(steady_ns(now));
  if (!job) {
    // The cursor is due by time later; a full disk is tried again now and then.
    if (m_spool->unpersisted_acks() > 0 || m_full) wake_at(now + std::chrono::seconds(1));
    return;
  }
  m_sync_started = now;
  m_sync.submit(*job);
  m_stall_timer.arm_at(now + k_disk_stall);
}

// One sync on the disk for k_disk_stall: said once, in the log and in the status.
void Gateway::report_stall() {
  if (!m_sync.busy()) return;
  m_spool->describe_job(m_stall_file, sizeof m_stall_file);
  m_stall_reported = true;
  ++m_counters.disk_stalls;
  EGW_LOG(warning, "spool: the disk has held one sync for %.1f s (%s); messages wait for it to be acknowledged locally",
          std::chrono::duration<double>(m_loop.now() - m_sync_started).count(), m_stall_file);
}

void Gateway::wake_at(event::TimePoint when) {
  if (!m_kick_timer.armed() || m_kick_timer.deadline() > when) m_kick_timer.arm_at(when);
}

void Gateway::on_io(std::uint32_t) {
  spool::Job* job = m_sync.take_done();
  if (!job) return;
  m_stall_timer.cancel();
  if (m_stall_reported) {
    EGW_LOG(notice, "spool: the disk stall is over: that sync took %.1f s in all (%s)",
            std::chrono::duration<double>(m_loop.now() - m_sync_started).count(), m_stall_file);
    m_stall_reported = false;
  }
  if (!m_spool->complete(*job)) return fatal();
  ack_durable();
  schedule();
}

// Local acknowledgements, in arrival order, for every record the last job made durable.
void Gateway::ack_durable() {
  const std::uint64_t durable = m_spool->durable_seq();
  const std::uint64_t now = realtime_ns();
  while (m_acks_head != m_acks_tail && m_acks[m_acks_head % m_acks_cap].seq <= durable) {
    const LocalAck& a = m_acks[m_acks_head++ % m_acks_cap];
    m_ingest->ack(a.token);
    m_latency.durable.record(now > a.received_ns ? now - a.received_ns : 0);
    ++m_counters.acked_local;
  }
}

// "subscribed to all 2 topic filters", or "1 of 2 topic filters subscribed; refused:
// sensors/x (not authorized)", for the log and `edgegw status`.
void Gateway::describe_subscriptions(mqtt::Bytes states) {
  std::size_t granted = 0;
  for (std::uint8_t s : states) granted += s < 0x80;
  char* out = m_subscriptions_text;
  const char* end = out + sizeof m_subscriptions_text;
  int n = granted == states.size()
              ? std::snprintf(out, static_cast<std::size_t>(end - out), "subscribed to all %zu topic filters", states.size())
              : std::snprintf(out, static_cast<std::size_t>(end - out), "%zu of %zu topic filters subscribed; refused:",
                              granted, states.size());
  for (std::size_t i = 0; i < states.size() && n > 0 && out + n < end; ++i) {
    if (states[i] < 0x80) continue;
    out += n;
    n = std::snprintf(out, static_cast<std::size_t>(end - out), " %s (%s)", m_config.ingest.topics[i].c_str(),
                      states[i] == mqtt::Session::k_unanswered ? "no answer yet"
                                                                : mqtt::reason_name(static_cast<mqtt::Reason>(states[i])));
  }
}

// ---- uplink -------------------------------------------------------------------------

void Gateway::on_uplink_state() { schedule(); }

bool Gateway::take_token() {
  const std::uint32_t rate = m_config.uplink.drain_rate;
  if (rate == 0) return true;
  const event::TimePoint now = m_loop.now();
  const double burst = std::max<double>(1, m_config.uplink.max_inflight);
  m_tokens = std::min(burst, m_tokens + std::chrono::duration<double>(now - m_tokens_at).count() * rate);
  m_tokens_at = now;
  if (m_tokens >= 1) {
    m_tokens -= 1;
    return true;
  }
  if (!m_drain_timer.armed()) m_drain_timer.arm_in(std::chrono::microseconds(static_cast<long>(1e6 * (1 - m_tokens) / rate) + 1));
  return false;
}

bool Gateway::publish(mem::Slot* slot, std::string_view topic, mqtt::Bytes payload, bool retain, std::uint64_t seq,
                      std::uint64_t received_ns) {
  Inflight& e = m_infl[m_infl_tail % m_infl_cap];
  e = Inflight{slot, topic, payload, seq, received_ns, realtime_ns(), retain, false, false, {}, {}};
  switch (send(e)) {
    case mqtt::PublishStatus::queued: break;
    case mqtt::PublishStatus::too_large:
      EGW_LOG_LIMITED(error, "uplink: message %" PRIu64 " on \"%.*s\" is larger than the upstream broker accepts; dropped", seq,
              static_cast<int>(topic.size()), topic.data());
      m_refusals.count(mqtt::Reason::packet_too_large);
      ++m_counters.refused_upstream;
      ++m_counters.dropped_refused;
      e.acked = true;
      break;
    default:  // QoS 0 while disconnected, or no room in the send buffer: try again shortly
      if (!m_drain_timer.armed()) m_drain_timer.arm_in(std::chrono::milliseconds(1));
      return false;
  }
  if (m_config.uplink.qos == 0) e.acked = true;
  m_latency.to_uplink.record(e.written_ns > received_ns ? e.written_ns - received_ns : 0);
  ++m_infl_tail;
  m_send_seq = seq + 1;
  m_spool->sent_up_to(m_send_seq);
  release_acked();
  return true;
}

// Hands a message to the uplink session: the first time, or again after a refusal.
mqtt::PublishStatus Gateway::send(Inflight& e) {
  mqtt::OutMessage out;
  out.topic_prefix = m_config.uplink.topic_prefix;
  out.topic = e.topic;
  out.payload = e.payload;
  out.qos = m_config.uplink.qos;
  out.retain = e.retain;
  if (m_uplink->version() == mqtt::Version::v5) {
    int n = std::snprintf(e.seq_text, sizeof e.seq_text, "%" PRIu64, e.seq);
    e.props[0] = {"gw", m_config.gateway.id};
    e.props[1] = {"seq", std::string_view(e.seq_text, static_cast<std::size_t>(n))};
    out.user_properties = e.props;
  }
  return m_uplink->publish(out, e.seq);
}

void Gateway::on_published(std::uint64_t seq, mqtt::Reason reason) {
  for (std::size_t i = m_infl_head; i != m_infl_tail; ++i) {
    Inflight& e = m_infl[i % m_infl_cap];
    if (e.seq != seq) continue;
    if (!mqtt::is_error(reason)) {
      m_refusals.passed();  // the broker takes messages: refused ones may pass now too
      const std::uint64_t now = realtime_ns();
      m_latency.upstream_ack.record(now > e.written_ns ? now - e.written_ns : 0);
      m_latency.end_to_end.record(now > e.received_ns ? now - e.received_ns : 0);
      e.acked = true;
      break;
    }
    ++m_counters.refused_upstream;
    m_refusals.count(reason);
    if (Refusals::for_good(reason)) {
      ++m_counters.dropped_refused;
      e.acked = true;
      EGW_LOG_LIMITED(error, "uplink: upstream refused message %" PRIu64 " on \"%.*s\" for good (%s); dropped", seq,
                      static_cast<int>(e.topic.size()), e.topic.data(), mqtt::reason_name(reason));
      break;
    }
    // Kept: it goes again, in its place, and what follows it waits behind it (the records
    // are released in order). An ACL being fixed or a quota refilling lets it pass.
    e.refused = true;
    if (!m_refused_timer.armed()) m_refused_timer.arm_in(m_refusals.next_delay());
    EGW_LOG_LIMITED(error, "uplink: upstream refused message %" PRIu64 " on \"%.*s\": %s; kept, sent again in %.0f s", seq,
                    static_cast<int>(e.topic.size()), e.topic.data(), mqtt::reason_name(reason),
                    std::chrono::duration<double>(m_refused_timer.deadline() - m_loop.now()).count());
    break;
  }
  release_acked();
  schedule();
}

void Gateway::resend_refused() {
  bool waiting = false;
  for (std::size_t i = m_infl_head; i != m_infl_tail; ++i) {
    Inflight& e = m_infl[i % m_infl_cap];
    if (!e.refused) continue;
    if (m_uplink->state() == mqtt::SessionState::connected && m_uplink->publish_room() > 0 &&
        send(e) == mqtt::PublishStatus::queued) {
      e.refused = false;
    } else {
      waiting = true;
    }
  }
  if (waiting) m_refused_timer.arm_in(m_refusals.next_delay());
}

void Gateway::release_acked() {
  std::uint64_t last = 0;
  while (m_infl_head != m_infl_tail && m_infl[m_infl_head % m_infl_cap].acked) {
    Inflight& e = m_infl[m_infl_head++ % m_infl_cap];
    m_pool->release(e.slot);
    last = e.seq;
    ++m_counters.forwarded;
  }
  if (last == 0) return;
  const std::uint64_t bytes_before = m_spool->bytes();
  m_spool->ack(last);  // the cursor follows lazily (Spool::cursor_due), with a job
  if (m_spool->bytes() < bytes_before) append_held();
  schedule();
}

// Hands durable records to the uplink in sequence order: from memory when the next one
// is there, else from the spool. Never a record that is not durable yet: a crash would
// let the restarted spool give its seq to another message, and a consumer dropping
// duplicates by seq would then drop real data.
void Gateway::pump() {
  if (m_phase != Phase::running || m_exit_code != 0) return;
  append_held();
  const bool up = m_uplink->state() == mqtt::SessionState::connected;
  while (up && m_uplink->publish_room() > 0 && m_infl_tail - m_infl_head < m_infl_cap) {
    const std::uint64_t head_seq = m_fresh_head != m_fresh_tail ? m_fresh[m_fresh_head % m_fresh_cap].seq : 0;
    const bool fresh_ready = head_seq != 0 && head_seq <= m_spool->durable_seq();
    const std::uint64_t limit = fresh_ready ? head_seq : m_spool->durable_seq() + 1;
    if (m_send_seq < limit) {  // the backlog: replay from the spool
      if (!take_token()) break;
      mem::Slot* slot = m_pool->acquire();
      if (!slot) break;  // every release schedules another pump
      spool::Record r;
      spool::Read got = m_spool->read_next(m_send_seq, limit, slot->bytes(), r);
      if (got != spool::Read::ok) {
        m_pool->release(slot);
        if (got == spool::Read::failed) return fatal();
        m_send_seq = limit;  // the rest below `limit` was dropped or damaged (counted)
        m_spool->sent_up_to(m_send_seq);
        continue;
      }
      if (!publish(slot, r.topic, r.payload, r.header.retain, r.header.seq, r.header.received_ns)) {
        m_pool->release(slot);
        break;
      }
      ++m_counters.replayed;
    } else if (fresh_ready) {
      Fresh& f = m_fresh[m_fresh_head % m_fresh_cap];
      if (!publish(f.slot, f.topic, f.payload, f.retain, f.seq, f.received_ns)) break;
      ++m_fresh_head;
    } else {
      break;
    }
  }
  cool();
}

// Durable messages the uplink cannot take now give their slots back (replayed later):
// all of them while it is down; while it is up, those that would leave less than a whole
// ingest window of free slots (so the local broker's window never stalls on the pool).
void Gateway::cool() {
  const bool up = m_uplink->state() == mqtt::SessionState::connected;
  const std::uint32_t keep_free = std::min<std::uint32_t>(m_config.ingest.receive_maximum, m_pool->capacity() / 2);
  while (m_fresh_head != m_fresh_tail) {
    Fresh& f = m_fresh[m_fresh_head % m_fresh_cap];
    if (f.seq == 0 || f.seq > m_spool->durable_seq()) break;
    if (up && m_pool->in_use() + keep_free <= m_pool->capacity()) break;
    m_pool->release(f.slot);
    ++m_fresh_head;
  }
}

// ---- health -------------------------------------------------------------------------

bool Gateway::healthy(event::TimePoint now) const {
  if (m_exit_code != 0 || m_spool->failed()) return false;
  const auto limit = std::chrono::seconds(10) + 20 * std::chrono::duration_cast<event::Duration>(m_config.spool.commit_interval);
  return !m_sync.busy() || now - m_sync_started < limit;
}

void Gateway::summary(char* buf, std::size_t cap) const {
  std::snprintf(buf, cap,
                "ingest %s%s%s%s, uplink %s; received %" PRIu64 ", forwarded %" PRIu64 "; spool %" PRIu64 " records, %" PRIu64
                " bytes; pool %u of %u slots",
                mqtt::state_name(m_ingest->state()), m_subscribed ? "" : " (", m_subscribed ? "" : m_subscriptions_text,
                m_subscribed ? "" : ")", mqtt::state_name(m_uplink->state()), m_counters.received,
                m_counters.forwarded, m_spool->backlog(), m_spool->bytes(), m_pool->in_use(),
                m_pool->capacity());
}

void Gateway::snapshot(observe::Snapshot& out) const {
  out.gateway_id = m_config.gateway.id.c_str();
  out.version = build::k_version;
  out.uptime_s = std::chrono::duration<double>(m_loop.now() - m_started_at).count();
  out.ingest_state = mqtt::state_name(m_ingest->state());
  out.uplink_state = mqtt::state_name(m_uplink->state());
  out.uplink_tls = m_up.tls ? m_up.tls->ciphersuite() : "";
  out.pool_in_use = m_pool->in_use();
  out.pool_high_water = m_pool->high_water();
  out.pool_slots = m_pool->capacity();
  const spool::Stats& s = m_spool->stats();
  out.spool_bytes = m_spool->bytes();
  out.spool_max_bytes = m_spool->max_bytes();
  out.spool_records = m_spool->backlog();
  // The oldest message edgegw holds in memory or in flight (what is only on disk after a
  // restart is not timed until it is read back).
  std::uint64_t oldest = 0;
  if (m_infl_head != m_infl_tail) oldest = m_infl[m_infl_head % m_infl_cap].received_ns;
  else if (m_fresh_head != m_fresh_tail) oldest = m_fresh[m_fresh_head % m_fresh_cap].received_ns;
  const std::uint64_t now = realtime_ns();
  out.spool_oldest_age_s = oldest && now > oldest ? static_cast<double>(now - oldest) / 1e9 : 0;
  out.spool_full = m_full;
  out.sync_waiting_s = m_sync.busy() ? std::chrono::duration<double>(m_loop.now() - m_sync_started).count() : 0;
  out.disk_stalled = m_stall_reported;
  out.disk_stall_file = m_stall_reported ? m_stall_file : "";
  out.disk_stalls = m_counters.disk_stalls;
  out.received = m_counters.received;
  out.durable = m_counters.acked_local;
  out.forwarded = m_counters.forwarded;
  out.replayed = m_counters.replayed;
  out.duplicates_suspected = m_uplink->counters().resent;
  out.dropped_full = s.dropped_records;
  out.dropped_corrupt = s.corrupt;
  out.refused_upstream = m_counters.refused_upstream;
  out.dropped_refused = m_counters.dropped_refused;
  out.refusals = m_refusals.counts();
  out.retain_stripped = m_uplink->counters().retain_stripped;
  out.ingest_sessions_lost = m_ingest->counters().sessions_lost;
  out.subscribe_refusals = m_ingest->counters().subscribe_refusals;
  out.ingest_subscriptions = m_subscriptions_text;
  out.refused_oversize = m_ingest->counters().refused_oversize;
  const auto reconnects = [](const mqtt::Session& session) {
    return session.counters().connects > 0 ? session.counters().connects - 1 : 0;
  };
  out.ingest_reconnects = reconnects(*m_ingest);
  out.uplink_reconnects = reconnects(*m_uplink);
  out.tls_failures = (m_in.tls ? m_in.tls->stats().failures : 0) + (m_up.tls ? m_up.tls->stats().failures : 0);
  out.fsyncs = s.fsyncs;
  out.commits = s.commits;
  out.cursor_writes = s.cursor_writes;
  out.latency = &m_latency;
}

// ---- lifecycle ----------------------------------------------------------------------

void Gateway::run_deferred() {
  if (m_phase == Phase::draining) {
    kick();  // what was received goes to disk, and is acknowledged, before ingest stops
    if (!m_ingest_stopped && !m_spool->has_uncommitted() && !m_sync.busy()) {
      m_ingest->stop();  // its last PUBACKs go out before the DISCONNECT
      m_ingest_stopped = true;
    }
    if (m_ingest_stopped && m_infl_head == m_infl_tail) finish_shutdown();
    return;
  }
  pump();
  kick();
}

void Gateway::on_timer(event::Timer& timer) {
  if (&timer == &m_grace_timer) return finish_shutdown();
  if (&timer == &m_refused_timer) resend_refused();
  if (&timer == &m_stall_timer) report_stall();
  if (&timer == &m_kick_timer && m_full) m_spool->retry_spare();
  schedule();
}

void Gateway::fatal() {
  if (m_exit_code != 0) return;
  // Exit, not recovery in place: after a failed sync the kernel may have dropped the pages
  // it covered while clearing the error, so only a fresh start that recovers from what is
  // on the disk knows what is there (docs/SPOOL.md, "What the daemon does").
  EGW_LOG(error, "gateway: stopping: the spool cannot make messages durable (%s); %" PRIu64 " of %" PRIu64
                 " received messages were acknowledged locally, each once durable; exit code 1, the restart recovers "
                 "from what is on the disk", m_spool->error().c_str(), m_counters.acked_local, m_counters.received);
  m_exit_code = 1;
  m_kick_timer.cancel();
  m_stall_timer.cancel();
  m_drain_timer.cancel();
  m_ingest->stop();
  m_uplink->stop();
  m_phase = Phase::stopped;
}

void Gateway::shutdown(event::Duration grace) {
  if (m_phase != Phase::running) {
    if (m_phase == Phase::idle) m_phase = Phase::stopped;
    return;
  }
  EGW_LOG(notice, "gateway: stopping: committing the last batch, waiting up to %.1f s for %zu upstream acknowledgements",
          std::chrono::duration<double>(grace).count(), inflight_count());
  m_phase = Phase::draining;
  m_ingest->hold_input(true);  // nothing new; what is in hand gets durable and acknowledged
  m_drain_timer.cancel();
  m_grace_timer.arm_in(grace);
  schedule();
}

void Gateway::finish_shutdown() {
  if (m_phase == Phase::stopped) return;
  m_grace_timer.cancel();
  m_kick_timer.cancel();
  if (spool::Job* job = m_sync.wait_done()) {  // out of time with a sync on the disk: it ends first
    if (m_spool->complete(*job)) ack_durable();
    else m_exit_code = 1;
  }
  if (!m_ingest_stopped) m_ingest->stop();
  m_ingest_stopped = true;
  // What is still staged and the cursor, on this thread: the loop has nothing else to do.
  if (m_exit_code == 0 && !m_spool->persist_cursor()) m_exit_code = 1;
  m_uplink->stop();
  m_phase = Phase::stopped;
  const spool::Stats& s = m_spool->stats();
  EGW_LOG(notice,
          "gateway: stopped: received %" PRIu64 ", spooled %" PRIu64 ", forwarded %" PRIu64 ", replayed %" PRIu64
          ", fsyncs %" PRIu64 ", commits %" PRIu64 ", cursor_writes %" PRIu64 ", spool corrupt %" PRIu64
          ", dropped %" PRIu64 ", %" PRIu64 " records left",
          m_counters.received, m_counters.spooled, m_counters.forwarded, m_counters.replayed, s.fsyncs, s.commits,
          s.cursor_writes, s.corrupt, s.dropped_records, m_spool->backlog());
}

}  // namespace edgegw::gateway
