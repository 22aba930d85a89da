#include "observe/metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace edgegw::observe {
namespace {

struct Stage {
  const char* name;  // also the Prometheus "stage" label
  const Histogram Latency::*histogram;
};
constexpr Stage k_stages[] = {
    {"durable", &Latency::durable},
    {"to_uplink", &Latency::to_uplink},
    {"upstream_ack", &Latency::upstream_ack},
    {"end_to_end", &Latency::end_to_end},
};

// Prometheus buckets (seconds): the fine histogram summed at these edges.
constexpr double k_le[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300};

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

struct Counter {
  const char* name;
  const char* help;
  std::uint64_t Snapshot::*value;
};
constexpr Counter k_counters[] = {
    {"received", "Messages taken from the local broker", &Snapshot::received},
    {"durable", "Messages made durable in the spool and acknowledged locally", &Snapshot::durable},
    {"forwarded", "Messages acknowledged by the upstream broker", &Snapshot::forwarded},
    {"replayed", "Messages read back from the spool to be sent", &Snapshot::replayed},
    {"duplicates_suspected", "Messages sent again after a reconnect or restart (same seq)",
     &Snapshot::duplicates_suspected},
    {"dropped_spool_full", "Unsent messages deleted by when_full = drop-oldest", &Snapshot::dropped_full},
    {"dropped_corrupt", "Spool records skipped for a failed checksum", &Snapshot::dropped_corrupt},
    {"refused_upstream", "Upstream refusals (a PUBACK with a failure reason; a message sent again counts again)",
     &Snapshot::refused_upstream},
    {"dropped_refused", "Messages dropped because the upstream broker refused them for good",
     &Snapshot::dropped_refused},
    {"dropped_expired",
     "Messages dropped when they would be sent: older than spool.max_age, or past their Message Expiry Interval",
     &Snapshot::dropped_expired},
    {"dropped_expiry_interval", "Of dropped_expired, those past the Message Expiry Interval the sensor set",
     &Snapshot::dropped_expiry_interval},
    {"retain_stripped", "Messages sent upstream without their retain flag (the broker has no retained messages)",
     &Snapshot::retain_stripped},
    {"retain_stripped_by_rule", "Retained messages sent upstream without the flag, as their uplink rule says",
     &Snapshot::retain_stripped_by_rule},
    {"ingest_sessions_lost", "Reconnections to the local broker that found our session gone",
     &Snapshot::ingest_sessions_lost},
    {"subscribe_refusals", "Ingest topic filters the local broker refused (each retry counts)",
     &Snapshot::subscribe_refusals},
    {"refused_oversize", "Messages larger than a pool slot, acknowledged and dropped", &Snapshot::refused_oversize},
    {"ingest_reconnects", "Reconnections to the local broker", &Snapshot::ingest_reconnects},
    {"uplink_reconnects", "Reconnections to the upstream broker", &Snapshot::uplink_reconnects},
    {"uplink_switches", "Switches back to a preferred upstream broker after its probe connected",
     &Snapshot::uplink_switches},
    {"tls_failures", "TLS handshakes that failed", &Snapshot::tls_failures},
    {"spool_fsyncs", "fsync and fdatasync calls on the spool", &Snapshot::fsyncs},
    {"spool_commits", "Batches of records made durable (group commits)", &Snapshot::commits},
    {"spool_cursor_writes", "Writes of the acknowledged position to the ack file", &Snapshot::cursor_writes},
    {"disk_stalls", "Syncs that were on the disk 5 s or longer (each logged)", &Snapshot::disk_stalls},
    {"reloads", "Reloads (SIGHUP) that read the TLS and password files again", &Snapshot::reloads},
    {"reload_failures", "Reloads refused for a bad file (the files in use kept; each logged)",
     &Snapshot::reload_failures},
};

}  // namespace

void Text::add(const char* fmt, ...) {
  if (m_len + 1 >= m_cap) return;
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(m_buf + m_len, m_cap - m_len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  m_len = std::min(m_len + static_cast<std::size_t>(n), m_cap - 1);
}

void render_text(const Snapshot& s, Text& out) {
  out.add("edgegw %s, gateway %s, up %.0f s\n", s.version, s.gateway_id, s.uptime_s);
  out.add("  ingest   %s%s%s\n  uplink   %s%s%s%s%s%s%s\n", s.ingest_state, s.ingest_subscriptions[0] ? ", " : "",
          s.ingest_subscriptions, s.uplink_state, s.uplink_broker[0] ? ", " : "", s.uplink_broker,
          s.uplink_probe[0] ? ", probe " : "", s.uplink_probe, s.uplink_tls[0] ? ", TLS " : "", s.uplink_tls);
  out.add("  pool     %u of %u slots in use (high water %u)\n", s.pool_in_use, s.pool_slots, s.pool_high_water);
  out.add("  spool    %llu records, %llu of %llu bytes, oldest %.1f s\n",
          static_cast<unsigned long long>(s.spool_records), static_cast<unsigned long long>(s.spool_bytes),
          static_cast<unsigned long long>(s.spool_max_bytes), s.spool_oldest_age_s);
  if (s.spool_full) out.add("  spool    FULL: ingest held until there is room\n");
  if (s.disk_stalled)
    out.add("  disk     STALLED: one sync on the disk for %.1f s (%s)\n", s.sync_waiting_s, s.disk_stall_file);
  if (s.reload_error[0]) out.add("  reload   FAILED, the files in use kept: %s\n", s.reload_error);
  if (const DownlinkStats* d = s.downlink) {
    out.add(
        "  downlink %u of %u slots in use; received %llu, delivered %llu, redelivered %llu, refused %llu, loops "
        "refused %llu\n",
        d->in_flight, d->slots, static_cast<unsigned long long>(d->received),
        static_cast<unsigned long long>(d->delivered), static_cast<unsigned long long>(d->redelivered),
        static_cast<unsigned long long>(d->refused), static_cast<unsigned long long>(d->loops_refused));
  }
  out.add("  counters");
  for (const Counter& c : k_counters) out.add(" %s %llu", c.name, static_cast<unsigned long long>(s.*c.value));
  out.add("\n");
  bool any = false;
  for (const Snapshot::ReasonCount& r : s.refusals) {
    if (r.count == 0) continue;
    out.add("%s %s %llu", any ? "," : "  refused upstream by reason:", r.name,
            static_cast<unsigned long long>(r.count));
    any = true;
  }
  if (any) out.add("\n");
  if (!s.latency) return;
  out.add("  latency ms       count       p50       p90       p99      p999       max\n");
  const auto row = [&](const char* name, const Histogram& h) {
    out.add("  %-12s %9llu %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, static_cast<unsigned long long>(h.count()),
            ms(h.percentile(0.5)), ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()));
  };
  for (const Stage& st : k_stages) row(st.name, s.latency->*st.histogram);
  if (s.downlink) row("downlink", s.downlink->latency);
  if (s.canary) {
    row("canary", *s.canary);
    out.add("  canary   %llu probes sent, %llu came back from upstream\n",
            static_cast<unsigned long long>(s.canary_sent), static_cast<unsigned long long>(s.canary_received));
  }
}

void render_json(const Snapshot& s, Text& out) {
  out.add("{\"version\":\"%s\",\"gateway\":\"%s\",\"uptime_s\":%.1f,", s.version, s.gateway_id, s.uptime_s);
  out.add(
      "\"ingest\":{\"state\":\"%s\",\"subscriptions\":\"%s\"},"
      "\"uplink\":{\"state\":\"%s\",\"broker\":\"%s\",\"probe\":\"%s\",\"tls\":\"%s\"},",
      s.ingest_state, s.ingest_subscriptions, s.uplink_state, s.uplink_broker, s.uplink_probe, s.uplink_tls);
  out.add("\"pool\":{\"in_use\":%u,\"high_water\":%u,\"slots\":%u},", s.pool_in_use, s.pool_high_water, s.pool_slots);
  out.add(
      "\"spool\":{\"records\":%llu,\"bytes\":%llu,\"max_bytes\":%llu,\"oldest_age_s\":%.3f,\"full\":%s,"
      "\"sync_waiting_ms\":%.0f,\"disk_stalled\":%s,\"disk_stall_file\":\"%s\"},",
      static_cast<unsigned long long>(s.spool_records), static_cast<unsigned long long>(s.spool_bytes),
      static_cast<unsigned long long>(s.spool_max_bytes), s.spool_oldest_age_s, s.spool_full ? "true" : "false",
      s.sync_waiting_s * 1e3, s.disk_stalled ? "true" : "false", s.disk_stall_file);
  out.add("\"reload_error\":\"%s\",\"counters\":{", s.reload_error);
  for (const Counter& c : k_counters) {
    out.add("%s\"%s\":%llu", &c == k_counters ? "" : ",", c.name, static_cast<unsigned long long>(s.*c.value));
  }
  out.add("}");
  if (const DownlinkStats* d = s.downlink) {
    const Histogram& h = d->latency;
    out.add(
        ",\"downlink\":{\"downlink_in_flight\":%u,\"downlink_slots\":%u,\"downlink_received\":%llu,"
        "\"downlink_delivered\":%llu,\"downlink_redelivered\":%llu,\"downlink_refused\":%llu,"
        "\"downlink_loops_refused\":%llu,\"latency_ms\":{\"count\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
        "\"p999\":%.3f,\"max\":%.3f}}",
        d->in_flight, d->slots, static_cast<unsigned long long>(d->received),
        static_cast<unsigned long long>(d->delivered), static_cast<unsigned long long>(d->redelivered),
        static_cast<unsigned long long>(d->refused), static_cast<unsigned long long>(d->loops_refused),
        static_cast<unsigned long long>(h.count()), ms(h.percentile(0.5)), ms(h.percentile(0.9)),
        ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()));
  }
  out.add(",\"refused_upstream_by_reason\":{");
  for (const Snapshot::ReasonCount& r : s.refusals) {
    out.add("%s\"%s\":%llu", &r == s.refusals.data() ? "" : ",", r.name, static_cast<unsigned long long>(r.count));
  }
  out.add("}");
  if (s.latency) {
    out.add(",\"latency_ms\":{");
    for (const Stage& st : k_stages) {
      const Histogram& h = s.latency->*st.histogram;
      out.add("%s\"%s\":{\"count\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
              &st == k_stages ? "" : ",", st.name, static_cast<unsigned long long>(h.count()), ms(h.percentile(0.5)),
              ms(h.percentile(0.9)), ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()));
    }
    if (s.canary) {
      const Histogram& h = *s.canary;
      out.add(
          ",\"canary\":{\"count\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,"
          "\"sent\":%llu}",
          static_cast<unsigned long long>(h.count()), ms(h.percentile(0.5)), ms(h.percentile(0.9)),
          ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()), static_cast<unsigned long long>(s.canary_sent));
    }
    out.add("}");
  }
  out.add("}\n");
}

void render_prometheus(const Snapshot& s, Text& out) {
  for (const Counter& c : k_counters) {
    out.add("# HELP edgegw_%s_total %s.\n# TYPE edgegw_%s_total counter\nedgegw_%s_total %llu\n", c.name, c.help,
            c.name, c.name, static_cast<unsigned long long>(s.*c.value));
  }
  out.add(
      "# HELP edgegw_upstream_refusals_total Upstream refusals by PUBACK reason.\n"
      "# TYPE edgegw_upstream_refusals_total counter\n");
  for (const Snapshot::ReasonCount& r : s.refusals) {
    out.add("edgegw_upstream_refusals_total{reason=\"%s\"} %llu\n", r.name, static_cast<unsigned long long>(r.count));
  }
  out.add(
      "# HELP edgegw_pool_slots_in_use Message pool slots in use.\n# TYPE edgegw_pool_slots_in_use gauge\n"
      "edgegw_pool_slots_in_use %u\n",
      s.pool_in_use);
  out.add(
      "# HELP edgegw_pool_slots Message pool slots allocated at startup.\n# TYPE edgegw_pool_slots gauge\n"
      "edgegw_pool_slots %u\n",
      s.pool_slots);
  out.add(
      "# HELP edgegw_spool_bytes Bytes in the spool files.\n# TYPE edgegw_spool_bytes gauge\nedgegw_spool_bytes %llu\n",
      static_cast<unsigned long long>(s.spool_bytes));
  out.add(
      "# HELP edgegw_spool_records Unacknowledged records in the spool.\n# TYPE edgegw_spool_records gauge\n"
      "edgegw_spool_records %llu\n",
      static_cast<unsigned long long>(s.spool_records));
  out.add(
      "# HELP edgegw_spool_oldest_age_seconds Age of the oldest unacknowledged record.\n"
      "# TYPE edgegw_spool_oldest_age_seconds gauge\nedgegw_spool_oldest_age_seconds %.3f\n",
      s.spool_oldest_age_s);
  out.add(
      "# HELP edgegw_spool_full 1 while appends wait for room (spool.max_bytes reached, or the disk full).\n"
      "# TYPE edgegw_spool_full gauge\nedgegw_spool_full %d\n"
      "# HELP edgegw_spool_sync_waiting_seconds How long the sync in flight has been on the disk (0: none).\n"
      "# TYPE edgegw_spool_sync_waiting_seconds gauge\nedgegw_spool_sync_waiting_seconds %.3f\n"
      "# HELP edgegw_disk_stalled 1 while one sync has been on the disk 5 s or longer.\n"
      "# TYPE edgegw_disk_stalled gauge\nedgegw_disk_stalled %d\n",
      s.spool_full ? 1 : 0, s.sync_waiting_s, s.disk_stalled ? 1 : 0);
  out.add(
      "# HELP edgegw_session_connected 1 while the MQTT session is connected.\n# TYPE edgegw_session_connected gauge\n"
      "edgegw_session_connected{session=\"ingest\"} %d\nedgegw_session_connected{session=\"uplink\"} %d\n",
      std::strcmp(s.ingest_state, "connected") == 0 ? 1 : 0, std::strcmp(s.uplink_state, "connected") == 0 ? 1 : 0);
  if (!s.latency) return;
  out.add(
      "# HELP edgegw_stage_latency_seconds Pipeline stage latency: durable, to_uplink and end_to_end from the "
      "message's arrival at edgegw, upstream_ack from its write to the uplink.\n"
      "# TYPE edgegw_stage_latency_seconds histogram\n");
  const auto histogram = [&](const char* name, const Histogram& h) {
    for (double le : k_le) {
      out.add("edgegw_stage_latency_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n", name, le,
              static_cast<unsigned long long>(h.count_at_or_below(static_cast<std::uint64_t>(le * 1e9))));
    }
    out.add("edgegw_stage_latency_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n", name,
            static_cast<unsigned long long>(h.count()));
    out.add("edgegw_stage_latency_seconds_sum{stage=\"%s\"} %.9f\n", name, static_cast<double>(h.sum()) / 1e9);
    out.add("edgegw_stage_latency_seconds_count{stage=\"%s\"} %llu\n", name,
            static_cast<unsigned long long>(h.count()));
  };
  for (const Stage& st : k_stages) histogram(st.name, s.latency->*st.histogram);
  if (const DownlinkStats* d = s.downlink) {
    histogram("downlink", d->latency);  // upstream receipt -> local PUBACK
    const std::pair<const char*, std::uint64_t> counters[] = {{"received", d->received},
                                                              {"delivered", d->delivered},
                                                              {"redelivered", d->redelivered},
                                                              {"refused", d->refused},
                                                              {"loops_refused", d->loops_refused}};
    out.add(
        "# HELP edgegw_downlink_total Downlink messages: received from upstream, delivered (local PUBACK), "
        "redelivered (DUP), refused (dropped), loops_refused.\n# TYPE edgegw_downlink_total counter\n");
    for (const auto& [name, value] : counters)
      out.add("edgegw_downlink_total{what=\"%s\"} %llu\n", name, static_cast<unsigned long long>(value));
    out.add(
        "# HELP edgegw_downlink_in_flight Downlink messages awaiting the local PUBACK.\n"
        "# TYPE edgegw_downlink_in_flight gauge\nedgegw_downlink_in_flight %u\n",
        d->in_flight);
  }
  if (!s.canary) return;
  histogram("canary", *s.canary);
  out.add(
      "# HELP edgegw_canary_probes_sent_total In-service canary probes published to the local broker.\n"
      "# TYPE edgegw_canary_probes_sent_total counter\nedgegw_canary_probes_sent_total %llu\n",
      static_cast<unsigned long long>(s.canary_sent));
}

}  // namespace edgegw::observe
