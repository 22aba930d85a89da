#include "gateway/status.hpp"

#include <cinttypes>
#include <cstdio>

#include "edgegw/build_info.hpp"
#include "gateway/gateway.hpp"

namespace edgegw::gateway {

void Gateway::summary(char* buf, std::size_t cap) const {
  const bool shown = !m_subscribed && m_subscriptions_text[0];  // what is not subscribed, once a SUBACK said
  std::snprintf(buf, cap,
                "ingest %s%s%s%s, uplink %s; received %" PRIu64 ", forwarded %" PRIu64 "; spool %" PRIu64
                " records, %" PRIu64 " bytes; pool %u of %u slots",
                mqtt::state_name(m_ingest->state()), shown ? " (" : "", shown ? m_subscriptions_text : "",
                shown ? ")" : "", mqtt::state_name(m_uplink->state()), m_counters.received, m_counters.forwarded,
                m_spool->backlog(), m_spool->bytes(), m_pool->in_use(), m_pool->slot_count());
}

void Gateway::snapshot(observe::Snapshot& out) const {
  out.gateway_id = m_config.gateway.id.c_str();
  out.version = build::k_version;
  out.uptime_s = std::chrono::duration<double>(m_loop.now() - m_started_at).count();
  out.ingest_state = mqtt::state_name(m_ingest->state());
  out.uplink_state = mqtt::state_name(m_uplink->state());
  const Link& up = m_failover.active_link();
  out.uplink_tls = up.tls ? up.tls->ciphersuite() : "";
  out.uplink_broker = m_failover.describe();
  out.uplink_probe = m_failover.enabled() ? m_failover.probe_state() : "";
  out.uplink_switches = m_failover.switches();
  out.pool_in_use = m_pool->in_use();
  out.pool_high_water = m_pool->high_water();
  out.pool_slots = m_pool->slot_count();
  const spool::Stats& s = m_spool->stats();
  out.spool_bytes = m_spool->bytes();
  out.spool_max_bytes = m_spool->max_bytes();
  out.spool_records = m_spool->backlog();
  out.spool_oldest_age_s = oldest_age_s();
  out.spool_full = m_full;
  out.sync_waiting_s = m_sync.busy() ? std::chrono::duration<double>(m_loop.now() - m_sync_started).count() : 0;
  out.disk_stalled = m_stall_reported;
  out.disk_stall_file = m_stall_reported ? m_stall_file : "";
  out.disk_stalls = m_counters.disk_stalls;
  out.received = m_counters.received;
  out.durable = m_counters.acked_local;
  out.forwarded = m_counters.forwarded;
  out.replayed = m_counters.replayed;
  out.duplicates_suspected = m_counters.resent_on_switch;
  for (const auto& session : m_uplinks)
    if (session) out.duplicates_suspected += session->counters().resent;
  out.dropped_full = s.dropped_records;
  out.dropped_corrupt = s.corrupt;
  out.refused_upstream = m_counters.refused_upstream;
  out.dropped_refused = m_counters.dropped_refused;
  out.dropped_expired = m_counters.dropped_expired;
  out.dropped_expiry_interval = m_counters.dropped_expiry_interval;
  out.refusals = m_refusals.counts();
  out.retain_stripped = m_uplink->counters().retain_stripped;
  out.retain_stripped_by_rule = m_counters.retain_stripped_by_rule;
  out.ingest_sessions_lost = m_ingest->counters().sessions_lost;
  out.subscribe_refusals = m_ingest->counters().subscribe_refusals;
  out.ingest_subscriptions = m_subscriptions_text;
  out.refused_oversize = m_ingest->counters().refused_oversize;
  const auto reconnects = [](const mqtt::Session& session) {
    return session.counters().connects > 0 ? session.counters().connects - 1 : 0;
  };
  out.ingest_reconnects = reconnects(*m_ingest);
  // Connections of either uplink session, less the first and the probes' that were switches.
  std::uint64_t uplink_connects = 0;
  for (const auto& session : m_uplinks)
    if (session) uplink_connects += session->counters().connects;
  const std::uint64_t not_reconnects = 1 + m_failover.switches();
  out.uplink_reconnects = uplink_connects > not_reconnects ? uplink_connects - not_reconnects : 0;
  out.tls_failures = (m_in.tls ? m_in.tls->stats().failures : 0) + (up.tls ? up.tls->stats().failures : 0);
  out.fsyncs = s.fsyncs;
  out.commits = s.commits;
  out.cursor_writes = s.cursor_writes;
  out.reloads = m_reloads.done;
  out.reload_failures = m_reloads.failed;
  out.reload_error = m_reloads.last_error;
  out.latency = &m_latency;
  out.downlink = m_downlink->stats();
}

std::size_t render_status(const observe::Snapshot& s, bool json, char* buf, std::size_t cap) {
  observe::Text out(buf, cap);
  if (json) observe::render_json(s, out);
  else observe::render_text(s, out);
  return out.size();
}

}  // namespace edgegw::gateway
