#include "gateway/gateway.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "gateway/clock.hpp"
#include "util/log.hpp"

namespace edgegw::gateway {
namespace {

void retry(mqtt::SessionOptions& o, const config::Retry& r) {
  o.connect_timeout = std::chrono::duration_cast<event::Duration>(r.connect_timeout);
  o.reconnect_min = std::chrono::duration_cast<event::Duration>(r.reconnect_min);
  o.reconnect_max = std::chrono::duration_cast<event::Duration>(r.reconnect_max);
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
    if (!info.repeated)
      EGW_LOG_LIMITED(warning, "ingest: disconnected from %s: %s", m_g.m_config.ingest.url.text.c_str(), info.detail);
    m_g.m_subscribed = false;
    m_g.m_subscriptions_text[0] = '\0';
  }
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override { m_g.on_message(m, token); }
  // Its publishes are the downlink's.
  void on_published(std::uint64_t cookie, mqtt::Reason reason) override {
    m_g.m_downlink->on_published(cookie, reason);
  }
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

// Of one of the uplink sessions: the one in use, or the probe (failover.hpp).
class Gateway::UplinkHandler final : public mqtt::SessionHandler {
 public:
  UplinkHandler(Gateway& g, unsigned session) : m_g(g), m_session(session) {}
  void on_connected(bool) override {
    switch (m_g.m_failover.connected(m_session)) {
      case Failover::Role::active:
        EGW_LOG(notice, "uplink: connected to %s", m_g.m_failover.describe());
        log_tls("uplink", m_g.m_failover.active_link());
        m_g.m_presence.online(*m_g.m_uplink, m_g.m_spool->backlog(), m_g.oldest_age_s());
        m_g.on_uplink_state();
        break;
      case Failover::Role::probe: m_g.switch_uplink(); break;
      case Failover::Role::other: break;
    }
  }
  void on_disconnected(const mqtt::DisconnectInfo& info) override {
    const bool active = m_g.m_uplink == m_g.m_uplinks[m_session].get();
    if (active && !info.repeated)
      EGW_LOG_LIMITED(warning, "uplink: disconnected from %s: %s", m_g.m_failover.describe(), info.detail);
    m_g.m_failover.disconnected(m_session, info);
    if (active) m_g.on_uplink_state();
  }
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override {
    m_g.m_downlink->on_message(*m_g.m_uplinks[m_session], m_session, m, token);
  }
  void on_subscribed(mqtt::Bytes states) override { m_g.m_downlink->on_subscribed(states); }
  void on_published(std::uint64_t cookie, mqtt::Reason reason) override {
    if (cookie == Presence::k_cookie) m_g.m_presence.on_published();
    else m_g.on_published(cookie, reason);
  }

 private:
  Gateway& m_g;
  unsigned m_session;
};

Gateway::Gateway(event::Loop& loop, const config::Config& config, spool::Disk* disk, Transports transports,
                 Clock* clock)
    : m_loop(loop), m_config(config), m_disk(disk), m_clock(clock ? *clock : system_clock()),
      m_ages(m_clock, config.spool.max_age), m_transports(transports), m_kick_timer(loop, *this),
      m_drain_timer(loop, *this), m_grace_timer(loop, *this), m_refused_timer(loop, *this), m_stall_timer(loop, *this) {
}

Gateway::~Gateway() {
  if (m_sync_registered) m_loop.remove(m_sync.fd());
}

bool Gateway::start(std::string& error) {
  const config::Config& c = m_config;
  if (!m_transports.ingest) {
    if (!make_link(c.ingest.url, c.ingest.tls, "ingest.tls", m_in, error)) return false;
    m_transports.ingest = m_in.transport.get();
  }
  if (m_transports.uplink) m_failover.use_transport(*m_transports.uplink);
  else if (!m_failover.make_links(error)) return false;

  spool::Options so;
  so.dir = c.gateway.state_dir + "/spool";
  so.max_bytes = c.spool.max_bytes;
  so.sync = c.spool.sync == config::SpoolSync::batch;
  so.drop_oldest = c.spool.when_full == config::WhenFull::drop_oldest;
  // A batch holds the largest record at least; 1 MiB covers hundreds of typical ones.
  so.batch_bytes = std::max<std::size_t>(1 << 20, 2 * (std::size_t{c.pool.slot_bytes} + (std::size_t{64} << 10)));
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
  EGW_LOG(info, "spool: %s: recovery took %.3f ms, read %" PRIu64 " bytes; %" PRIu64 " records to send", so.dir.c_str(),
          static_cast<double>(m_spool->stats().recovery_ns) / 1e6, m_spool->stats().recovery_bytes_read,
          m_spool->stats().recovered_records);

  // A record read back from the spool (replay) lands in a slot with its extension before
  // the topic: the slot's headroom takes it, so the largest message accepted fits.
  static_assert(spool::format::k_ext_bytes <= mem::Pool::k_default_headroom);
  m_pool = std::make_unique<mem::Pool>(c.pool.slots, c.pool.slot_bytes);
  // Every received message holds a slot until it is handed to the uplink or given back,
  // and a local acknowledgement waits only for a record that is not durable yet, which
  // holds its slot too: neither ring can outgrow the pool (the acks' has room to spare).
  m_received.allocate(c.pool.slots);
  m_acks.allocate(c.pool.slots + 2u * c.ingest.receive_maximum);
  m_inflight.allocate(c.uplink.max_inflight);  // pump() hands over no more
  m_send_seq = m_spool->acked_seq() + 1;
  m_ages.started();
  m_drain = TokenBucket(std::max<double>(1, c.uplink.max_inflight), c.uplink.drain_rate, m_loop.now());

  mqtt::SessionOptions in;
  in.config_key = "ingest";
  in.version = session_version(c.ingest.mqtt_version);
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
  m_downlink = std::make_unique<Downlink>(m_loop, c);
  m_downlink->configure_ingest(in);
  set_credentials(in, c.ingest.credentials);
  retry(in, c.ingest.retry);
  m_in_handler = std::make_unique<IngestHandler>(*this);
  m_ingest = std::make_unique<mqtt::Session>(m_loop, *m_transports.ingest, m_pool.get(), in, *m_in_handler);
  m_downlink->attach(*m_ingest);

  mqtt::SessionOptions up;
  up.config_key = "uplink";
  up.version = session_version(c.uplink.mqtt_version);
  up.version_fallback = c.uplink.mqtt_version == config::MqttVersion::automatic;
  up.publish_qos = m_router.max_qos();
  up.client_id = c.uplink.client_id;
  up.clean_start = true;  // resends after a reconnect come from our own window
  up.keepalive_s = c.uplink.keepalive_s;
  retry(up, c.uplink.retry);
  up.max_inflight = c.uplink.max_inflight;
  set_credentials(up, c.uplink.credentials);
  m_presence.configure(up);
  m_downlink->configure_uplink(up);
  // Room for the largest message accepted (topic + payload = slot_bytes) as a whole
  // PUBLISH, its topic as much longer as the prefix or a rule can make it (routing.hpp):
  // what the packet adds to topic and payload is at most 5 (fixed header)
  // + 4 (topic length, packet id) + 4 (properties length) + 2 x 5 + 2 + 64 + 3 + 20 (the
  // gw and seq user properties) + 5 (a Message Expiry Interval) = 117 bytes. The session
  // keeps 1 KiB more for acks and pings.
  constexpr std::size_t k_publish_overhead = 128;
  up.tx_buffer_bytes = c.pool.slot_bytes + m_router.max_growth() + k_publish_overhead + 1024;
  for (unsigned i = 0; i < (m_failover.enabled() ? 2u : 1u); ++i) {
    m_up_handlers[i] = std::make_unique<UplinkHandler>(*this, i);
    m_uplinks[i] =
        std::make_unique<mqtt::Session>(m_loop, m_failover.transport(i), m_downlink->pool(i), up, *m_up_handlers[i]);
  }
  m_failover.attach(m_uplinks[0].get(), m_uplinks[1].get());
  m_uplink = m_uplinks[0].get();

  m_phase = Phase::running;
  m_started_at = m_loop.now();
  m_uplink->start();
  m_ingest->start();
  EGW_LOG(notice,
          "gateway %s: %s -> %s, pool %u x %u bytes, spool %" PRIu64
          " bytes max in %s, sync %s, commit interval %.1f ms",
          c.gateway.id.c_str(), c.ingest.url.text.c_str(), m_failover.describe(), c.pool.slots, c.pool.slot_bytes,
          c.spool.max_bytes, so.dir.c_str(), so.sync ? "batch" : "none",
          std::chrono::duration<double, std::milli>(c.spool.commit_interval).count());
  schedule();
  return true;
}

// ---- ingest -------------------------------------------------------------------------

void Gateway::on_message(const mqtt::Message& m, mqtt::AckToken token) {
  if (Downlink::came_down(m)) {  // an edgegw published it locally: never back up (downlink.hpp)
    m_downlink->count_loop();
    m_pool->release(m.slot);
    if (m.qos > 0) m_ingest->ack(token);
    return;
  }
  ++m_counters.received;
  if (m_phase != Phase::running) {  // shutting down: not acknowledged, redelivered later
    m_pool->release(m.slot);
    return;
  }
  // MQTT 5: an interval of 0 is no expiry (as mosquitto reads it).
  const bool expires = m.props.has(mqtt::PropertyId::message_expiry) && m.props.message_expiry > 0;
  Received& r = m_received.push(Received{m.slot, m.topic, m.payload, m_clock.realtime_ns(),
                                         m_ages.stamp(expires, m.props.message_expiry), 0, token, m.qos, m.retain});
  // Records go into the spool in arrival order: behind held ones, this one waits too.
  const bool held = m_received.size() > 1 && m_received[m_received.tail() - 2].seq == 0;
  if (!held) append(r);
  schedule();  // the batch goes to the sync thread at the end of this iteration
}

bool Gateway::append(Received& r) {
  std::uint64_t seq = 0;
  switch (m_spool->append(r.topic, r.payload, r.qos, r.retain, r.received_ns, seq, &r.stamp)) {
    case spool::Append::ok: {
      r.seq = seq;
      ++m_counters.spooled;
#ifdef EDGEGW_TEST_ACK_BEFORE_FSYNC
      // The test-only build edgegw-ack-before-fsync (src/CMakeLists.txt): acknowledged now,
      // durable only at the next commit. tests/vm's power cuts must catch this.
      if (r.qos > 0) {
        m_ingest->ack(r.token);
        ++m_counters.acked_local;
      }
      return true;
#endif
      if (r.qos > 0) m_acks.push(LocalAck{seq, r.token, r.received_ns});
      return true;
    }
    case spool::Append::busy:  // the batch is full, or the next segment not ready: after this sync
      m_holding = true;
      return false;
    case spool::Append::full:
      // Read nothing more until it fits: held messages keep their slots, and the replay
      // that frees the spool needs slots too.
      m_ingest->hold_input(true);
      if (!m_full) {
        if (m_spool->disk_full()) {
          EGW_LOG(warning,
                  "spool: full (the disk has no room for the next segment, at %" PRIu64 " of %" PRIu64
                  " bytes); holding ingest until there is room",
                  m_spool->bytes(), m_spool->max_bytes());
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
  for (Received& r : m_received) {
    if (r.seq == 0 && !append(r)) return;
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
  const std::uint64_t now = m_clock.realtime_ns();
  while (!m_acks.empty() && m_acks.front().seq <= durable) {
    const LocalAck a = m_acks.front();
    m_acks.pop_front();
    m_ingest->ack(a.token);
    m_latency.durable.record(elapsed_ns(a.received_ns, now));
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
              ? std::snprintf(out, static_cast<std::size_t>(end - out), "subscribed to all %zu topic filters",
                              states.size())
              : std::snprintf(out, static_cast<std::size_t>(end - out),
                              "%zu of %zu topic filters subscribed; refused:", granted, states.size());
  for (std::size_t i = 0; i < states.size() && n > 0 && out + n < end; ++i) {
    if (states[i] < 0x80) continue;
    out += n;
    n = std::snprintf(out, static_cast<std::size_t>(end - out), " %s (%s)", m_config.ingest.topics[i].c_str(),
                      states[i] == mqtt::Session::k_unanswered
                          ? "no answer yet"
                          : mqtt::reason_name(static_cast<mqtt::Reason>(states[i])));
  }
}

// ---- uplink -------------------------------------------------------------------------

void Gateway::on_uplink_state() { schedule(); }

// The probe of a preferred broker connected (failover.hpp): it is the uplink from now on.
// The window in flight goes on it again, in order, with the original seq (records leave
// the spool only on PUBACK), then the old connection ends; what it had acknowledged
// without its PUBACK reaching us is sent twice, at most a window.
void Gateway::switch_uplink() {
  mqtt::Session& old = *m_uplink;
  m_uplink = &m_failover.active();
  for (Inflight& e : m_inflight) {
    if (e.acked || e.refused) continue;
    ++m_counters.resent_on_switch;
    if (send(e) == mqtt::PublishStatus::queued) continue;
    e.refused = true;  // the new broker does not take it now: sent again later, in its place
    if (!m_refused_timer.armed()) m_refused_timer.arm_in(m_refusals.next_delay());
  }
  m_failover.retire(old);
  log_tls("uplink", m_failover.active_link());
  m_presence.on_published();  // a status unacknowledged on the old connection is gone with it
  m_presence.online(*m_uplink, m_spool->backlog(), oldest_age_s());
  on_uplink_state();
}

bool Gateway::publish(mem::Slot* slot, std::string_view topic, mqtt::Bytes payload, bool retain, std::uint64_t seq,
                      std::uint64_t received_ns, const spool::format::RecordExt& stamp) {
  // Into the ring before it is sent: the session keeps views of its user properties.
  Inflight& e = m_inflight.push(
      Inflight{slot, topic, payload, seq, received_ns, m_clock.realtime_ns(), stamp, false, false, {}, {}, {}});
  std::uint64_t age = 0;
  const Ages::Verdict verdict = m_ages.judge(received_ns, stamp, age);
  if (verdict != Ages::Verdict::send) {
    drop_expired(e, verdict, age);
    handed_over(seq);
    return true;
  }
  // Each entry has its own topic buffer (its position in the ring of max_inflight).
  e.up = m_router.route(topic, retain, m_inflight.tail() - 1);
  switch (e.up.too_long ? mqtt::PublishStatus::too_large : send(e)) {
    case mqtt::PublishStatus::queued: break;
    case mqtt::PublishStatus::too_large:
      EGW_LOG_LIMITED(error,
                      "uplink: message %" PRIu64 " on \"%.*s\" is larger than the upstream broker accepts; dropped",
                      seq, static_cast<int>(topic.size()), topic.data());
      m_refusals.count(mqtt::Reason::packet_too_large);
      ++m_counters.refused_upstream;
      ++m_counters.dropped_refused;
      e.acked = true;
      break;
    default:  // QoS 0 while disconnected, or no room in the send buffer: try again shortly
      m_inflight.pop_back();
      if (!m_drain_timer.armed()) m_drain_timer.arm_in(std::chrono::milliseconds(1));
      return false;
  }
  if (e.up.qos == 0) e.acked = true;
  if (e.up.retain_stripped) ++m_counters.retain_stripped_by_rule;
  m_latency.to_uplink.record(elapsed_ns(received_ns, e.written_ns));
  handed_over(seq);
  return true;
}

// The record `seq` is handed over (or done with): the next one goes next.
void Gateway::handed_over(std::uint64_t seq) {
  m_send_seq = seq + 1;
  m_spool->sent_up_to(m_send_seq);
  release_acked();
}

// Hands a message to the uplink session: the first time, or again after a refusal.
mqtt::PublishStatus Gateway::send(Inflight& e) {
  mqtt::OutMessage out;
  out.topic_prefix = e.up.prefix;
  out.topic = e.up.topic;
  out.payload = e.payload;
  out.qos = e.up.qos;
  out.retain = e.up.retain;
  m_ages.set_expiry(out, e.received_ns, e.stamp);
  if (m_uplink->version() == mqtt::Version::v5) {
    int n = std::snprintf(e.seq_text, sizeof e.seq_text, "%" PRIu64, e.seq);
    e.props[0] = {"gw", m_config.gateway.id};
    e.props[1] = {"seq", std::string_view(e.seq_text, static_cast<std::size_t>(n))};
    out.user_properties = e.props;
  }
  return m_uplink->publish(out, e.seq);
}

// Too old to send (age.hpp): done with, in its place, as if upstream had taken it.
void Gateway::drop_expired(Inflight& e, Ages::Verdict verdict, std::uint64_t age_ns) {
  ++m_counters.dropped_expired;
  e.acked = true;
  const double age_s = static_cast<double>(age_ns) / 1e9;
  if (verdict == Ages::Verdict::expired) {
    ++m_counters.dropped_expiry_interval;
    EGW_LOG_LIMITED(warning,
                    "uplink: message %" PRIu64 " on \"%.*s\" expired (%.0f s old, Message Expiry Interval %" PRIu32
                    " s); dropped",
                    e.seq, static_cast<int>(e.topic.size()), e.topic.data(), age_s, e.stamp.expiry_s);
  } else {
    EGW_LOG_LIMITED(
        warning, "uplink: message %" PRIu64 " on \"%.*s\" is %.0f s old, over spool.max_age (%.0f s); dropped", e.seq,
        static_cast<int>(e.topic.size()), e.topic.data(), age_s, static_cast<double>(m_ages.max_age_ns()) / 1e9);
  }
}

void Gateway::on_published(std::uint64_t seq, mqtt::Reason reason) {
  for (Inflight& e : m_inflight) {
    if (e.seq != seq) continue;
    if (!mqtt::is_error(reason)) {
      m_refusals.passed();  // the broker takes messages: refused ones may pass now too
      const std::uint64_t now = m_clock.realtime_ns();
      m_latency.upstream_ack.record(elapsed_ns(e.written_ns, now));
      m_latency.end_to_end.record(elapsed_ns(e.received_ns, now));
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
    EGW_LOG_LIMITED(error, "uplink: upstream refused message %" PRIu64 " on \"%.*s\": %s; kept, sent again in %.0f s",
                    seq, static_cast<int>(e.topic.size()), e.topic.data(), mqtt::reason_name(reason),
                    std::chrono::duration<double>(m_refused_timer.deadline() - m_loop.now()).count());
    break;
  }
  release_acked();
  schedule();
}

void Gateway::resend_refused() {
  bool waiting = false;
  for (Inflight& e : m_inflight) {
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
  while (!m_inflight.empty() && m_inflight.front().acked) {
    mem::Slot* slot = m_inflight.front().slot;
    last = m_inflight.front().seq;
    m_inflight.pop_front();
    m_pool->release(slot);
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
  while (up && m_uplink->publish_room() > 0 && !m_inflight.full()) {
    const std::uint64_t head_seq = m_received.empty() ? 0 : m_received.front().seq;
    const bool received_ready = head_seq != 0 && head_seq <= m_spool->durable_seq();
    const std::uint64_t limit = received_ready ? head_seq : m_spool->durable_seq() + 1;
    if (m_send_seq < limit) {  // the backlog: replay from the spool
      if (!take_drain_token()) break;
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
      const spool::format::RecordExt stamp = r.header.ext_len ? r.header.ext : Ages::legacy();
      if (!publish(slot, r.topic, r.payload, r.header.retain, r.header.seq, r.header.received_ns, stamp)) {
        m_pool->release(slot);
        break;
      }
      ++m_counters.replayed;
    } else if (received_ready) {
      Received& r = m_received.front();
      if (!publish(r.slot, r.topic, r.payload, r.retain, r.seq, r.received_ns, r.stamp)) break;
      m_received.pop_front();
    } else {
      break;
    }
  }
  give_back_slots();
}

// Replay after an outage runs at uplink.drain_rate (0: as fast as the uplink takes it).
bool Gateway::take_drain_token() {
  if (m_config.uplink.drain_rate == 0) return true;
  const event::TimePoint now = m_loop.now();
  if (m_drain.consume(1, now)) return true;
  if (!m_drain_timer.armed()) m_drain_timer.arm_at(m_drain.next_token(now));
  return false;
}

// Durable messages the uplink cannot take now give their slots back (replayed later):
// all of them while it is down; while it is up, those that would leave less than a whole
// ingest window of free slots (so the local broker's window never stalls on the pool).
void Gateway::give_back_slots() {
  const bool up = m_uplink->state() == mqtt::SessionState::connected;
  const std::uint32_t keep_free = std::min<std::uint32_t>(m_config.ingest.receive_maximum, m_pool->slot_count() / 2);
  while (!m_received.empty()) {
    const Received& r = m_received.front();
    if (r.seq == 0 || r.seq > m_spool->durable_seq()) break;
    if (up && m_pool->in_use() + keep_free <= m_pool->slot_count()) break;
    m_pool->release(r.slot);
    m_received.pop_front();
  }
}

// The oldest message edgegw holds in memory or in flight, when it was received (0: none;
// what is only on disk after a restart is not timed until it is read back).
std::uint64_t Gateway::oldest_held_ns() const {
  if (!m_inflight.empty()) return m_inflight.front().received_ns;
  return m_received.empty() ? 0 : m_received.front().received_ns;
}

double Gateway::oldest_age_s() const {
  const std::uint64_t oldest = oldest_held_ns();
  return oldest ? static_cast<double>(elapsed_ns(oldest, m_clock.realtime_ns())) / 1e9 : 0;
}

// ---- health -------------------------------------------------------------------------

bool Gateway::healthy(event::TimePoint now) const {
  if (m_exit_code != 0 || m_spool->failed()) return false;
  const auto limit =
      std::chrono::seconds(10) + 20 * std::chrono::duration_cast<event::Duration>(m_config.spool.commit_interval);
  return !m_sync.busy() || now - m_sync_started < limit;
}

// ---- lifecycle ----------------------------------------------------------------------

void Gateway::run_deferred() {
  if (m_phase == Phase::draining) {
    kick();  // what was received goes to disk, and is acknowledged, before ingest stops
    if (!m_ingest_stopped && !m_spool->has_uncommitted() && !m_sync.busy()) {
      m_ingest->stop();  // its last PUBACKs go out before the DISCONNECT
      m_ingest_stopped = true;
    }
    if (m_ingest_stopped && m_inflight.empty()) finish_shutdown();
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
  EGW_LOG(error,
          "gateway: stopping: the spool cannot make messages durable (%s); %" PRIu64 " of %" PRIu64
          " received messages were acknowledged locally, each once durable; exit code 1, the restart recovers "
          "from what is on the disk",
          m_spool->error().c_str(), m_counters.acked_local, m_counters.received);
  m_exit_code = 1;
  m_kick_timer.cancel();
  m_stall_timer.cancel();
  m_drain_timer.cancel();
  m_downlink->stop();
  m_ingest->stop();
  stop_uplink();
  m_phase = Phase::stopped;
}

// A stop of ours, clean or not, is no broken connection: the will does not say it, so the
// status goes `offline` first.
void Gateway::stop_uplink() {
  m_failover.stop();
  m_presence.offline(*m_uplink);
  m_uplink->stop();
}

void Gateway::shutdown(event::Duration grace) {
  if (m_phase != Phase::running) {
    if (m_phase == Phase::idle) m_phase = Phase::stopped;
    return;
  }
  EGW_LOG(notice,
          "gateway: stopping: committing the last batch, waiting up to %.1f s for %zu upstream acknowledgements",
          std::chrono::duration<double>(grace).count(), inflight_count());
  m_phase = Phase::draining;
  m_downlink->stop();          // what it holds stays unacknowledged upstream, and comes down again
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
  stop_uplink();
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
