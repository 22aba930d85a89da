// The downlink: commands from upstream to the local broker, the uplink path in reverse
// (docs/ARCHITECTURE.md has the picture; docs/CONFIG.md, [downlink]).
//
//   uplink session(s) --PUBLISH into a downlink pool slot--> rule: local topic
//   ingest session --publish QoS 1 (from the slot)--> local broker --PUBACK-->
//   uplink session --PUBACK upstream (Session::ack)--> slot released
//
// Rules it keeps:
//  - the upstream PUBACK goes out only after the local broker's PUBACK (local QoS 0: once
//    the publish is written), so a command in hand is never acknowledged: an edgegw or
//    local broker restart leaves it with the upstream broker, which sends it again;
//  - the upstream broker keeps it because the uplink session is persistent when rules
//    exist: Clean Start 0 with Session Expiry Interval downlink.session_expiry (MQTT 5),
//    clean session 0 (3.1.1: kept until the broker drops it); each broker of a failover
//    list keeps its own session, so commands queued on a broker edgegw left wait there
//    until edgegw is back on it or the session expires;
//  - delivery is at least once: a command whose local PUBACK was in flight at a restart
//    comes down again (counted as downlink_redelivered when the broker marks it DUP);
//  - loops: check-config refuses rules whose local topics overlap ingest.topics, or whose
//    filter overlaps what the uplink publishes; at run time (MQTT 5) both sessions
//    subscribe with No Local, what goes down carries the user property edgegw-downlink,
//    and a message coming back carrying it (ingest), or our own gw property (upstream),
//    is refused and counted;
//  - fixed memory: a pool of downlink.slots slots per upstream session (two with several
//    uplink brokers) and a ring of as many entries, made at start; when they are all in use the uplink session stops
//    reading (the upstream broker holds the rest). Nothing is allocated per message. Event loop thread only.
#pragma once

#include <cstdint>
#include <memory>

#include "config/config.hpp"
#include "event/loop.hpp"
#include "mem/pool.hpp"
#include "mem/ring.hpp"
#include "mqtt/session.hpp"
#include "observe/histogram.hpp"
#include "observe/metrics.hpp"

namespace edgegw::gateway {

class Downlink final : private event::Timer::Handler {
 public:
  // The user property that marks what edgegw published locally (its value: gateway.id).
  static constexpr std::string_view k_mark = "edgegw-downlink";

  Downlink(event::Loop& loop, const config::Config& config);
  bool enabled() const { return !m_config.downlink.rules.empty(); }

  // Session options (before the sessions are made): the uplink session subscribes to the
  // rules' filters and keeps its session; the ingest session publishes and does not get
  // its own publishes back.
  void configure_uplink(mqtt::SessionOptions& up) const;
  void configure_ingest(mqtt::SessionOptions& in) const;
  // Where upstream session 0 or 1 (the failover probe) reads messages into, a pool each
  // (a pool wakes one waiter); made at the first call, nullptr without rules.
  mem::Pool* pool(unsigned session);
  // The session that publishes locally (the ingest session).
  void attach(mqtt::Session& local) { m_local = &local; }
  // No more local publishes: what is in hand stays unacknowledged upstream.
  void stop();

  // A message from an upstream session (the uplink in use, or the failover probe).
  void on_message(mqtt::Session& from, unsigned session, const mqtt::Message& m, mqtt::AckToken token);
  // An upstream session's SUBACK: logged ("downlink: subscribed upstream to ...").
  void on_subscribed(mqtt::Bytes states) const;
  // The local session's on_published.
  void on_published(std::uint64_t cookie, mqtt::Reason reason);
  // A message the ingest session received that edgegw itself sent down (MQTT 5 only).
  static bool came_down(const mqtt::Message& m);
  void count_loop() { ++m_stats.loops_refused; }

  // For `edgegw status` and the metrics (nullptr when disabled).
  const observe::DownlinkStats* stats() const { return enabled() ? &m_stats : nullptr; }
  std::uint32_t in_flight() const { return static_cast<std::uint32_t>(m_entries.size()); }

 private:
  enum class State : std::uint8_t { waiting, sent, done };
  struct Entry {
    mem::Pool* pool;  // the slot's
    mem::Slot* slot;
    mqtt::Session* from;  // whose ack token
    mqtt::AckToken token;
    std::uint8_t upstream_qos;
    std::uint8_t local_qos;
    State state;
    std::uint64_t received_ns;
    mqtt::OutMessage out;  // views into the slot and the rule
  };

  const config::DownlinkRule* match(std::string_view topic) const;
  bool send(std::uint64_t position);
  void done(std::uint64_t position, bool delivered);
  void release_done();
  void send_waiting();
  void on_timer(event::Timer& timer) override;

  const config::Config& m_config;
  std::unique_ptr<mem::Pool> m_pools[2];
  mem::Ring<Entry> m_entries;  // in arrival order
  mqtt::Session* m_local = nullptr;
  event::Timer m_retry;  // entries waiting for the local session to take them
  bool m_stopped = false;
  mqtt::UserProperty m_props[1];
  observe::DownlinkStats m_stats;
};

}  // namespace edgegw::gateway
