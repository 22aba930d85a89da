// The store-and-forward pipeline (docs/ARCHITECTURE.md has the picture):
//
//   ingest session --PUBLISH into a pool slot--> spool.append --job--> sync thread
//                                                                       | write + fdatasync
//   local PUBACK <--for every record up to the durable seq-- eventfd <--+
//   uplink session <--from the slot, or replayed from the spool-- in sequence order
//                    --PUBACK upstream--> spool.ack (record released)
//
// Rules it keeps:
//  - the loop never waits for the disk: appends fill a batch in memory; at the end of a
//    loop iteration, if the sync thread is idle (and spool.commit_interval has passed
//    since its last start), the batch goes to it; what arrives meanwhile forms the next
//    one (group commit, no fixed wait);
//  - a local PUBACK/PUBREC goes out only once the record is durable, in arrival order;
//  - upstream gets only durable records (so a seq is never given to two messages, even
//    across a crash), in sequence order, at most max_inflight unacknowledged;
//  - a slot is held only while its message waits for durability, for the uplink or for
//    an upstream PUBACK; a durable message the uplink cannot take now (disconnected, or
//    fewer than an ingest window of slots, half the pool at most, would stay free) gives
//    its slot back and is replayed from the spool later, so memory is flat through an
//    outage of any length;
//  - replay after an outage runs at uplink.drain_rate (token bucket), new messages queue
//    behind it in order;
//  - a spool I/O error stops everything that is not yet durable from being acknowledged,
//    and the daemon exits non-zero (the restart recovers from disk).
// Nothing here allocates after start().
//
// The files of the gateway: this pipeline (gateway.cpp), what it shows of itself
// (status.cpp: summary and snapshot), its connections (link.hpp), the drain rate's token
// bucket (token_bucket.hpp), timestamps (clock.hpp), message ages (age.hpp), upstream
// refusals (refusals.hpp), the uplink rules: upstream topic, QoS and retain per topic
// (routing.hpp), the online status (presence.hpp), the reload of its TLS and password files
// (reload.hpp), the uplink's brokers in order of preference (failover.hpp), commands from upstream to the
// local broker (downlink.hpp: the other direction);
// around it, the service (service.hpp), the self-test and the canary.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "event/loop.hpp"
#include "gateway/age.hpp"
#include "gateway/downlink.hpp"
#include "gateway/failover.hpp"
#include "gateway/link.hpp"
#include "gateway/presence.hpp"
#include "gateway/refusals.hpp"
#include "gateway/reload.hpp"
#include "gateway/routing.hpp"
#include "gateway/token_bucket.hpp"
#include "mem/pool.hpp"
#include "mem/ring.hpp"
#include "mqtt/session.hpp"
#include "observe/metrics.hpp"
#include "spool/spool.hpp"
#include "spool/sync_thread.hpp"

namespace edgegw::gateway {

struct Counters {
  std::uint64_t received = 0;          // messages taken from the local broker
  std::uint64_t spooled = 0;           // appended to the spool
  std::uint64_t acked_local = 0;       // PUBACK/PUBREC released to the local broker
  std::uint64_t forwarded = 0;         // done with upstream: acknowledged (QoS 0: written), or dropped_*
  std::uint64_t replayed = 0;          // read back from the spool to be sent
  std::uint64_t refused_upstream = 0;  // upstream PUBACKs with a failure reason (a resend counts again)
  std::uint64_t dropped_refused = 0;   // of those, messages dropped: refused for good (Refusals::for_good)
  std::uint64_t disk_stalls = 0;       // syncs that were on the disk for k_disk_stall or longer
  std::uint64_t resent_on_switch = 0;  // sent again on the new uplink at a switch of brokers (failover.hpp)
  // retained records sent without the flag: their uplink rule says retain = "strip" (routing.hpp)
  std::uint64_t retain_stripped_by_rule = 0;
  // Dropped for their age when they would be sent (age.hpp): older than spool.max_age, or
  // past the MQTT 5 Message Expiry Interval the sensor set; and, of those, the latter.
  std::uint64_t dropped_expired = 0;
  std::uint64_t dropped_expiry_interval = 0;
};

// A sync on the disk this long is reported (log, status, metrics). A good sync takes
// milliseconds, a slow SD card's garbage collection a second or two: 5 s is no disk
// working normally, and half the 10 s after which healthy() gives up, so the operator
// reads the warning before the watchdog restarts the daemon.
inline constexpr std::chrono::seconds k_disk_stall{5};

// Where the two sessions connect: a null one is made from the config's url and tls
// (link.hpp); tests give in-memory transports (tests/support/memory_transport.hpp),
// which must outlive the gateway.
struct Transports {
  mqtt::Transport* ingest = nullptr;
  mqtt::Transport* uplink = nullptr;
};

class Gateway final : private event::Timer::Handler, private event::Deferred, private event::IoHandler {
 public:
  // `disk`: where the spool's file operations go (nullptr: the real disk; tests slow it).
  // `clock`: what message ages are read from (nullptr: the real clocks; tests step them).
  Gateway(event::Loop& loop, const config::Config& config, spool::Disk* disk = nullptr, Transports transports = {},
          Clock* clock = nullptr);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Recovers the spool, starts its sync thread, allocates the pool, starts both sessions.
  // On failure `error` says what and where, and no session was started.
  bool start(std::string& error);
  // Graceful stop: no new messages; what was received is made durable and acknowledged
  // locally; upstream PUBACKs are awaited, all within `grace`; the cursor is written; both
  // sessions disconnect; then stopped() is true.
  void shutdown(event::Duration grace);
  bool stopped() const { return m_phase == Phase::stopped; }
  // SIGHUP: reads the TLS and password files again and reconnects the sessions whose files
  // changed (reload.hpp); false when a file is bad (logged; nothing changed) or not running.
  bool reload();
  int exit_code() const { return m_exit_code; }

  const Counters& counters() const { return m_counters; }
  // Everything `edgegw status` and the metrics file show (latency points into this);
  // defined in status.cpp.
  void snapshot(observe::Snapshot& out) const;
  const spool::Spool& spool() const { return *m_spool; }
  const mem::Pool& pool() const { return *m_pool; }
  const mqtt::Session& ingest() const { return *m_ingest; }
  const mqtt::Session& uplink() const { return *m_uplink; }
  const Downlink& downlink() const { return *m_downlink; }
  // A batch is on the disk (the sync thread has not answered yet).
  bool syncing() const { return m_sync.busy(); }
  // Messages handed to the uplink and not yet acknowledged upstream.
  std::size_t inflight_count() const { return m_inflight.size(); }
  // The local broker accepted every ingest subscription of the current connection.
  bool subscribed() const { return m_subscribed; }
  // False once the pipeline is wedged: the spool failed, or one sync has been on the disk
  // for longer than 10 s + 20 x spool.commit_interval (the watchdog then lets systemd
  // restart the daemon). An uplink outage, a full spool or a slow sync is not wedged, nor
  // is a refused subscription: a restart cannot mend an ACL, and it is asked for again;
  // status and STATUS= show it.
  bool healthy(event::TimePoint now) const;
  // One line for systemd's STATUS= and logs: sessions, counters, spool backlog; defined in
  // status.cpp.
  void summary(char* buf, std::size_t cap) const;

 private:
  struct Received {  // received, not yet handed to the uplink (nor given its slot back)
    mem::Slot* slot;
    std::string_view topic;
    mqtt::Bytes payload;
    std::uint64_t received_ns;
    spool::format::RecordExt stamp;  // what ages it (age.hpp)
    std::uint64_t seq;               // 0: not in the spool yet (held: the spool was full or busy)
    mqtt::AckToken token;
    std::uint8_t qos;
    bool retain;
  };
  struct LocalAck {  // a local PUBACK/PUBREC waiting for its record to be durable
    std::uint64_t seq;
    mqtt::AckToken token;
    std::uint64_t received_ns;
  };
  struct Inflight {  // handed to the uplink, awaiting its PUBACK
    mem::Slot* slot;
    std::string_view topic;  // views into the slot (a replayed record is read into one too)
    mqtt::Bytes payload;
    std::uint64_t seq;
    std::uint64_t received_ns, written_ns;  // CLOCK_REALTIME, for the stage histograms
    spool::format::RecordExt stamp;         // what ages it (age.hpp)
    bool acked;
    bool refused;  // by the broker, for a reason that may pass: sent again later
    char seq_text[24];
    mqtt::UserProperty props[2];
    Route up;  // upstream topic, QoS and retain (routing.hpp), set when it is handed over
  };
  class IngestHandler;
  class UplinkHandler;
  enum class Phase { idle, running, draining, stopped };

  // pipeline steps
  void on_message(const mqtt::Message& m, mqtt::AckToken token);
  void on_published(std::uint64_t seq, mqtt::Reason reason);
  void on_uplink_state();
  void switch_uplink();
  bool append(Received& r);
  void append_held();
  void kick();
  void wake_at(event::TimePoint when);
  void on_io(std::uint32_t events) override;  // the sync thread finished a job
  void ack_durable();
  void pump();
  void give_back_slots();
  bool publish(mem::Slot* slot, std::string_view topic, mqtt::Bytes payload, bool retain, std::uint64_t seq,
               std::uint64_t received_ns, const spool::format::RecordExt& stamp);
  void handed_over(std::uint64_t seq);
  void drop_expired(Inflight& e, Ages::Verdict verdict, std::uint64_t age_ns);
  mqtt::PublishStatus send(Inflight& e);
  void resend_refused();
  void describe_subscriptions(mqtt::Bytes states);
  void release_acked();
  bool take_drain_token();
  std::uint64_t oldest_held_ns() const;
  double oldest_age_s() const;  // of oldest_held_ns(); 0: none
  void stop_uplink();
  void fatal();
  void report_stall();
  void finish_shutdown();
  void schedule() { m_loop.defer(*this); }
  void run_deferred() override;
  void on_timer(event::Timer& timer) override;

  event::Loop& m_loop;
  const config::Config& m_config;
  spool::Disk* m_disk;
  Clock& m_clock;
  Ages m_ages;
  std::unique_ptr<mem::Pool> m_pool;
  std::unique_ptr<spool::Spool> m_spool;
  spool::SyncThread m_sync;  // after m_spool: it stops (finishing its job) before the spool goes
  bool m_sync_registered = false;
  event::TimePoint m_sync_started{};  // of the last job

  Link m_in;
  Failover m_failover{m_loop, m_config.uplink};  // the uplink's links
  Transports m_transports;                       // what the sessions run over: m_in's and m_failover's, or the test's
  std::unique_ptr<IngestHandler> m_in_handler;
  std::unique_ptr<UplinkHandler> m_up_handlers[2];
  std::unique_ptr<Downlink> m_downlink;  // before the sessions: they hold its pool's slots
  std::unique_ptr<mqtt::Session> m_ingest;
  // The second uplink session probes a preferred broker (only with several: failover.hpp);
  // m_uplink is the one in use.
  std::unique_ptr<mqtt::Session> m_uplinks[2];
  mqtt::Session* m_uplink = nullptr;
  event::Timer m_kick_timer, m_drain_timer, m_grace_timer, m_refused_timer, m_stall_timer;
  Refusals m_refusals;
  Presence m_presence{m_config.uplink.status_topic};
  Router m_router{m_config.uplink, m_config.pool.slot_bytes, m_config.uplink.max_inflight};
  char m_subscriptions_text[256] = "";

  mem::Ring<Received> m_received;  // in arrival order
  mem::Ring<LocalAck> m_acks;      // in arrival order
  mem::Ring<Inflight> m_inflight;  // in sequence order

  std::uint64_t m_send_seq = 1;  // next sequence to hand to the uplink
  TokenBucket m_drain;           // paces replay (uplink.drain_rate)
  bool m_holding = false;        // messages wait to be appended (spool full or busy)
  bool m_full = false;           // ... because the spool is full (ingest is on hold)
  bool m_subscribed = false;
  bool m_ingest_stopped = false;
  bool m_stall_reported = false;  // the sync in flight passed k_disk_stall (and was logged)
  char m_stall_file[320] = "";    // the file it writes, for the log and the status
  Phase m_phase = Phase::idle;
  int m_exit_code = 0;
  Counters m_counters;
  Reloads m_reloads{m_config};
  observe::Latency m_latency;
  event::TimePoint m_started_at{};
};

}  // namespace edgegw::gateway
