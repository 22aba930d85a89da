// What the daemon says about itself: a snapshot of session states, pool, spool, counters
// and stage latencies, rendered as a readable table (edgegw status), JSON (--json) or the
// Prometheus text exposition format (the textfile collector). Rendering writes into a
// caller's fixed buffer and never allocates. Event loop thread only.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <span>

#include "observe/histogram.hpp"

namespace edgegw::observe {

// The pipeline's stages, each a histogram of nanoseconds.
struct Latency {
  Histogram durable;       // received from the local broker -> durable in the spool
  Histogram to_uplink;     // received -> written to the uplink (includes outages)
  Histogram upstream_ack;  // written to the uplink -> upstream PUBACK
  Histogram end_to_end;    // received -> upstream PUBACK
};

// The downlink (gateway/downlink.hpp), shown when it has rules.
struct DownlinkStats {
  std::uint64_t received = 0;       // messages from upstream
  std::uint64_t delivered = 0;      // acknowledged by the local broker (local QoS 0: written), then upstream
  std::uint64_t redelivered = 0;    // of those received, marked DUP by the upstream broker (a possible duplicate)
  std::uint64_t refused = 0;        // dropped and acknowledged upstream: no rule, too large, or refused locally
  std::uint64_t loops_refused = 0;  // messages that would have gone round a loop (check-config explains)
  std::uint32_t in_flight = 0, slots = 0;
  Histogram latency;  // upstream receipt -> local PUBACK
};

struct Snapshot {
  const char* gateway_id = "";
  const char* version = "";
  double uptime_s = 0;
  const char* ingest_state = "";
  const char* uplink_state = "";
  const char* uplink_tls = "";     // cipher suite, "" without TLS
  const char* uplink_broker = "";  // the url, or "broker 2 of 3 (url)" with several (failover)
  const char* uplink_probe = "";   // several brokers: the probe of a preferred one ("off", "waiting", ...)
  std::uint32_t pool_in_use = 0, pool_high_water = 0, pool_slots = 0;
  std::uint64_t spool_bytes = 0, spool_max_bytes = 0, spool_records = 0;
  double spool_oldest_age_s = 0;     // of the oldest unacknowledged record; 0 when none
  bool spool_full = false;           // appends wait for room (max_bytes reached, or the disk full)
  double sync_waiting_s = 0;         // how long the sync in flight has been on the disk; 0 when none
  bool disk_stalled = false;         // ... and it passed the limit (gateway::k_disk_stall)
  const char* disk_stall_file = "";  // the file it writes, while disk_stalled
  // counters
  std::uint64_t received = 0, durable = 0, forwarded = 0, replayed = 0, duplicates_suspected = 0;
  std::uint64_t dropped_full = 0, dropped_corrupt = 0, refused_upstream = 0, refused_oversize = 0;
  std::uint64_t ingest_reconnects = 0, uplink_reconnects = 0, tls_failures = 0, fsyncs = 0;
  std::uint64_t commits = 0, cursor_writes = 0, disk_stalls = 0, uplink_switches = 0;
  std::uint64_t dropped_expired = 0, dropped_expiry_interval = 0;
  std::uint64_t dropped_refused = 0, retain_stripped = 0, ingest_sessions_lost = 0, subscribe_refusals = 0;
  std::uint64_t reloads = 0, reload_failures = 0;
  // retained messages an uplink rule sent without the flag (retain = "strip")
  std::uint64_t retain_stripped_by_rule = 0;
  const char* reload_error = "";  // why the last reload was refused; "" when it worked (or none)
  // The ingest subscriptions in a line: "2 of 2 filters subscribed", or which are refused.
  const char* ingest_subscriptions = "";
  // Upstream refusals (PUBACK reason codes), counted by reason.
  struct ReasonCount {
    const char* name;
    std::uint64_t count;
  };
  std::span<const ReasonCount> refusals;
  const Latency* latency = nullptr;
  // the in-service canary, when it runs
  const Histogram* canary = nullptr;
  std::uint64_t canary_sent = 0, canary_received = 0;
  const DownlinkStats* downlink = nullptr;
};

// A fixed buffer filled with printf-style appends; output past its end is cut.
class Text {
 public:
  Text(char* buf, std::size_t cap) : m_buf(buf), m_cap(cap) {
    if (cap) m_buf[0] = '\0';
  }
  void add(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  std::size_t size() const { return m_len; }

 private:
  char* m_buf;
  std::size_t m_cap, m_len = 0;
};

void render_text(const Snapshot& s, Text& out);
void render_json(const Snapshot& s, Text& out);
void render_prometheus(const Snapshot& s, Text& out);

}  // namespace edgegw::observe
