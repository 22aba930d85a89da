// The MQTT client session: connect (with reconnect, backoff and jitter), subscribe,
// receive QoS 0/1/2 with acknowledgement controlled by the application, publish QoS 0/1
// with a bounded in-flight window, keepalive. Driven by the event loop; after construction
// nothing is allocated (buffers, rings and bitsets are sized once from SessionOptions).
//
// Received PUBLISH packets are read straight into a slot of the fixed pool. When the pool
// is empty, or receive_maximum messages await the application's ack, the session stops
// reading the socket: the broker holds the rest (backpressure, never allocation).
//
// Callbacks to SessionHandler run on the loop thread, never from inside a call the
// application made into the session (failures are handled on the next loop iteration),
// except in stop(): it reports on_disconnected() before it returns, and composing what is
// due before its DISCONNECT may report on_published() for a queued message over the
// server's Maximum Packet Size.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event/loop.hpp"
#include "mem/pool.hpp"
#include "mem/ring.hpp"
#include "mqtt/codec/packets.hpp"
#include "mqtt/id_set.hpp"
#include "mqtt/transport.hpp"
#include "util/random.hpp"

namespace edgegw::mqtt {

// A received message. Topic, payload and properties are views into `slot`, which the
// handler owns from on_message() on and must give back with Pool::release().
struct Message {
  mem::Slot* slot = nullptr;
  std::string_view topic;
  Bytes payload;
  Properties props;
  std::uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;
};

// Names a received QoS 1/2 message for Session::ack(). Tokens of an earlier connection are
// ignored (the broker redelivers those messages after the reconnect).
struct AckToken {
  std::uint32_t connection = 0;
  std::uint64_t position = 0;  // the message's absolute position in the session's ack ring
};

// A message to publish. The views must stay valid until on_published() for its cookie
// (QoS 1), or until publish() returns (QoS 0).
struct OutMessage {
  std::string_view topic_prefix;
  std::string_view topic;
  Bytes payload;
  std::uint8_t qos = 1;
  bool retain = false;
  std::span<const UserProperty> user_properties;  // MQTT 5 only
  bool has_message_expiry = false;                // MQTT 5 only: a Message Expiry Interval ...
  std::uint32_t message_expiry_s = 0;             // ... of this many seconds
};

enum class PublishStatus {
  queued,         // will be sent (QoS 1: and resent after reconnects) until acknowledged
  window_full,    // max_inflight QoS 1 messages are queued already
  not_connected,  // QoS 0 while not connected
  buffer_full,    // QoS 0: no room in the send buffer now
  too_large,      // over the send buffer less its 1 KiB headroom, or the server's Maximum Packet Size
};

struct DisconnectInfo {
  Reason reason = Reason::success;
  // The server ended it: it sent DISCONNECT, refused (or allowed less than publish_qos) in
  // CONNACK, or closed the connection while edgegw held its input.
  bool from_server = false;
  const char* detail = "";  // readable cause, valid during the callback
  // A failure retrying soon cannot mend, the same as the last attempt's: logged already,
  // so handlers need not log it again.
  bool repeated = false;
};

class SessionHandler {
 public:
  virtual void on_connected(bool session_present) = 0;
  virtual void on_disconnected(const DisconnectInfo& info) = 0;
  virtual void on_message(const Message& message, AckToken token) = 0;
  // After each SUBACK, and after a CONNACK that rules out every filter (no SUBSCRIBE goes):
  // the state of every filter, in order (Session::subscription_states).
  virtual void on_subscribed(Bytes states) { (void)states; }
  // A QoS 1 publish is done with: the broker acknowledged it (reason >= 0x80: it refused
  // it), or the session gave it up: packet_too_large when it exceeds the server's Maximum
  // Packet Size, or the reason of the DISCONNECTs that kept ending connections while it was
  // the oldest in flight (blame_oldest_publish).
  virtual void on_published(std::uint64_t cookie, Reason reason) { (void)cookie, (void)reason; }

 protected:
  ~SessionHandler() = default;
};

struct SessionOptions {
  // The config table the session comes from ("uplink", "ingest"): errors that only the
  // operator can fix name the setting to change.
  std::string config_key = "mqtt";
  Version version = Version::v5;
  // MQTT 5 first; a broker that answers it as a 3.1.1-only broker gets 3.1.1 from then on.
  bool version_fallback = false;
  // The QoS the application publishes at: a broker whose CONNACK allows less (Maximum
  // QoS) is an error that names both, retried only at reconnect_max.
  std::uint8_t publish_qos = 0;
  std::string client_id;
  // CONNECT's user name and password (3.1.1 sends a password only with a user name).
  std::string username;  // empty: none
  std::optional<std::string> password;
  // A Last Will: what the broker publishes when the connection ends without a DISCONNECT.
  // A broker that refuses a retained one (Retain Not Supported) gets it without the flag,
  // one that refuses its QoS (QoS Not Supported) gets it at QoS 0, from the next attempt on.
  std::string will_topic;  // empty: none
  std::string will_payload;
  bool will_retain = false;
  std::uint8_t will_qos = 1;
  bool clean_start = false;
  std::uint32_t session_expiry_s = 0xffffffff;  // MQTT 5; 3.1.1 sessions never expire
  std::uint16_t keepalive_s = 30;
  std::vector<std::string> subscriptions;
  std::uint8_t subscribe_qos = 1;
  // MQTT 5 subscription options beyond the QoS (bit 3 Retain As Published, bits 4-5
  // Retain Handling); ignored on 3.1.1, which has none.
  std::uint8_t subscribe_options_v5 = 0;
  std::uint16_t receive_maximum = 64;  // received QoS 1/2 messages awaiting ack() at once
  std::uint16_t max_inflight = 64;     // QoS 1 publishes queued or awaiting PUBACK at once
  std::size_t rx_buffer_bytes = 8192;  // largest non-PUBLISH packet accepted
  std::size_t tx_buffer_bytes = 0;     // 0: a pool slot (4 KiB without a pool) plus 1 KiB
  event::Duration connect_timeout = std::chrono::seconds(10);
  event::Duration reconnect_min = std::chrono::milliseconds(200);
  event::Duration reconnect_max = std::chrono::seconds(30);
  // The backoff starts again from reconnect_min only after a connection lasted this long:
  // a broker that accepts and then ends every session is retried ever more slowly.
  event::Duration stable_after = std::chrono::seconds(30);
  // A refused subscription is asked for again after this, doubling up to reconnect_max.
  event::Duration resubscribe_min = std::chrono::seconds(1);
  std::uint64_t random_seed = 0;  // 0: seeded from the clock
};

struct SessionCounters {
  std::uint64_t received = 0;            // messages handed to on_message
  std::uint64_t refused_oversize = 0;    // larger than a pool slot: acknowledged and dropped
  std::uint64_t duplicates_dropped = 0;  // QoS 2 redeliveries already accepted
  std::uint64_t stale_acks = 0;          // ack() of an earlier connection, or after its PUBACK/PUBREC went
  std::uint64_t published = 0;           // QoS 0/1 PUBLISH packets put in the send buffer (resends too)
  std::uint64_t resent = 0;              // of those, QoS 1 sent again (DUP) after a reconnect
  std::uint64_t publish_acked = 0;
  std::uint64_t connects = 0;          // successful CONNACKs
  std::uint64_t connect_failures = 0;  // attempts ended before a successful CONNACK (stop() too)
  std::uint64_t disconnects = 0;       // connections ended after a successful CONNACK
  // Failures for a malformed packet or a protocol error: the server's packets found bad,
  // or the server's DISCONNECT saying so of ours.
  std::uint64_t protocol_errors = 0;
  std::uint64_t pings_sent = 0;
  std::uint64_t pongs_received = 0;
  std::uint64_t input_pauses = 0;        // times reading stopped: full pool or ack ring, hold_input
  std::uint64_t retain_stripped = 0;     // publishes sent without their retain flag (Retain Available 0)
  std::uint64_t sessions_lost = 0;       // CONNACKs without the session we asked to resume
  std::uint64_t subscribe_refusals = 0;  // filters a SUBACK refused (each retry counts again)
};

// The reason a client may put in its DISCONNECT for a failure (3.14.2.1): `reason` itself,
// or 0x80 for reasons only a server sends.
Reason client_disconnect_reason(Reason reason);

enum class SessionState { stopped, backoff, connecting, awaiting_connack, connected };
const char* state_name(SessionState state);

// Delay before reconnect attempt `attempt` (0-based): exponential from min to max, with
// jitter uniform in [d/2, d] so that many gateways do not reconnect in step.
event::Duration backoff_delay(unsigned attempt, event::Duration min, event::Duration max, util::Random& random);

class Session final : private event::IoHandler,
                      private event::Timer::Handler,
                      private event::Deferred,
                      private mem::PoolWaiter {
 public:
  // pool may be null for a session that only publishes; PUBLISH packets it still
  // receives are refused as oversize.
  Session(event::Loop& loop, Transport& transport, mem::Pool* pool, SessionOptions options, SessionHandler& handler);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Connects now, and again after every failure, until stop().
  void start();
  // Sends DISCONNECT (best effort, when connected) and closes; on_disconnected runs before
  // this returns, unless there was no connection or attempt to end (backoff, stopped).
  void stop();

  // The application holds the message durably (or no longer needs it redelivered): its
  // PUBACK/PUBREC may go out, after those of every message received before it (at the end
  // of this loop iteration, with everything else composed in it).
  void ack(AckToken token);

  // The application stops (true) or resumes (false) taking new messages: the session
  // stops reading at the next PUBLISH, and the broker queues. Holds across reconnects.
  // Everything before that PUBLISH (CONNACK, SUBACK, PINGRESP, DISCONNECT) is still read;
  // behind it, keepalive goes on with PINGREQs, and a dead broker shows as a TCP error
  // (TCP_USER_TIMEOUT) or the broker's close (EPOLLRDHUP).
  void hold_input(bool hold);

  // The password of the next CONNECT on (a reload read its file again).
  void set_password(std::optional<std::string> password) { m_options.password = std::move(password); }

  PublishStatus publish(const OutMessage& message, std::uint64_t cookie);
  // Forgets the QoS 1 publishes queued, without on_published(), before a stop() (the
  // application sends them on another session: gateway/failover.hpp).
  void drop_publishes();
  // How many more QoS 1 messages publish() would take now.
  std::uint32_t publish_room() const { return static_cast<std::uint32_t>(m_out.room()); }

  SessionState state() const { return m_state; }
  const SessionCounters& counters() const { return m_counters; }
  // Effective publish window: min(max_inflight, server Receive Maximum).
  std::uint32_t publish_window() const;
  std::uint32_t unacked_received() const { return static_cast<std::uint32_t>(m_acks.size()); }
  Version version() const { return m_options.version; }
  // Per subscription filter, in order: the granted QoS (0-2), the broker's refusal (a
  // reason code >= 0x80; refusals that may pass are asked for again), or k_unanswered
  // while no SUBACK answered it on this connection.
  static constexpr std::uint8_t k_unanswered = 0xff;
  Bytes subscription_states() const { return {m_sub_state.data(), m_sub_state.size()}; }
  // The broker keeps retained messages (false: Retain Available 0; the flag is dropped).
  bool retain_available() const { return m_server_retain_available; }
  // The highest QoS the broker takes publishes at (its CONNACK's Maximum QoS; 2 if unsaid).
  std::uint8_t maximum_qos() const { return m_server_maximum_qos; }
  // Heap bytes of the buffers, rings, bitsets and subscription list (sized at construction).
  std::size_t footprint_bytes() const;

 private:
  enum class RxMode : std::uint8_t { header, body, publish_start, slot_body, discard };
  enum PauseReason : std::uint8_t { k_pause_pool = 1, k_pause_acks = 2, k_pause_app = 4 };

  struct PendingAck {
    std::uint16_t packet_id;
    std::uint8_t qos;
    bool ready;
  };
  struct Outgoing {
    OutMessage message;
    std::uint64_t cookie;
    std::uint16_t packet_id;
    bool acked;
    bool sent_before;  // resends carry DUP
  };

  // event callbacks
  void on_io(std::uint32_t events) override;
  void on_timer(event::Timer& timer) override;
  void run_deferred() override;
  void on_slot_available() override;

  // connection (session.cpp)
  void connect_now();
  void handle_progress(Progress progress);
  void send_connect();
  // Whose word ended the connection: the server's (it sent DISCONNECT, refused in CONNACK,
  // or closed while we held its input; DisconnectInfo::from_server), or ours (timeouts,
  // transport errors, and packets of the server's we found bad: a v5 server is then told
  // why in a DISCONNECT).
  enum class Origin : std::uint8_t { local, server };
  void fail(Reason reason, Origin origin, const char* fmt, ...) __attribute__((format(printf, 4, 5)));
  // A failure that retrying soon cannot mend (a setting or the broker must change): logged
  // as an error, and the next attempt waits reconnect_max.
  void fail_until_fixed(Reason reason, Origin origin, const char* fmt, ...) __attribute__((format(printf, 4, 5)));
  void vfail(Reason reason, Origin origin, const char* fmt, va_list ap);
  void close_now();
  void update_interest();
  bool usable() const { return m_state >= SessionState::awaiting_connack && !m_failing; }
  void arm_keepalive();
  event::TimePoint ping_deadline() const;
  std::uint16_t keepalive_s() const;

  // Output is composed and written once per loop iteration, at its end (ack() and a QoS 1
  // publish() only mark what is due; a QoS 0 publish() is composed at once, and written
  // early only when the send buffer is full), so a burst leaves in one write.
  class Flusher final : public event::Deferred {
   public:
    explicit Flusher(Session& session) : Deferred(true), m_session(session) {}
    void run_deferred() override { m_session.flush(); }

   private:
    Session& m_session;
  };

  // output (session.cpp)
  void flush_later() { m_loop.defer(m_flusher); }
  void flush();
  void compose();
  bool compose_acks();
  void compose_publishes();
  void write_out();
  std::span<std::uint8_t> tx_space();
  std::uint16_t take_packet_id();
  bool strip_retain(bool retain);
  // A Message Expiry Interval, if the message has one (MQTT 5: encode leaves properties out on 3.1.1).
  static void set_expiry(Publish& p, const OutMessage& message);

  // subscriptions (session_subscribe.cpp)
  void subscriptions_connected(const Properties& connack);
  bool compose_subscribe();
  void handle_suback(Bytes body);
  void resubscribe();

  // input (session_rx.cpp)
  void read_input();
  bool consume_buffered();
  bool take_body(std::size_t n);
  void handle_packet(Bytes body);
  void handle_connack(Bytes body);
  void describe_reference(std::string_view reference, char (&out)[128]) const;
  bool fall_back_to_311();
  void handle_publish();
  void handle_puback(const Ack& ack);
  void drop_acked_publishes();
  void blame_oldest_publish(Reason reason);
  void finish_discard();
  void push_ack(std::uint16_t packet_id, std::uint8_t qos, bool ready);
  void pause_input(std::uint8_t reason);
  void reset_input();

  event::Loop& m_loop;
  Transport& m_transport;
  mem::Pool* m_pool;
  SessionOptions m_options;
  SessionHandler& m_handler;
  event::Timer m_timer;      // connect timeout, backoff, keepalive
  event::Timer m_sub_timer;  // asking again for refused subscriptions
  Flusher m_flusher{*this};
  util::Random m_random;
  std::vector<Subscription> m_subscriptions;  // views into m_options.subscriptions

  SessionState m_state = SessionState::stopped;
  bool m_running = false;
  bool m_failing = false;
  bool m_failure_until_fixed = false;
  DisconnectInfo m_failure;
  char m_failure_text[192] = "";
  // The last failure of fail_until_fixed() logged, until a CONNACK lets us in: the same
  // one again is not logged again (DisconnectInfo::repeated).
  char m_failure_logged[192] = "";
  unsigned m_attempt = 0;
  event::TimePoint m_connected_at{};
  std::uint32_t m_connection = 0;
  int m_registered_fd = -1;
  std::uint32_t m_registered_events = 0;
  std::uint32_t m_progress_events = 0;  // while connecting: what the transport waits for

  // server's limits from CONNACK
  std::uint32_t m_server_receive_maximum = 65535;
  std::uint32_t m_server_max_packet = 0;  // 0: no limit
  std::uint16_t m_server_keepalive = 0;
  bool m_server_keepalive_set = false;
  bool m_server_retain_available = true;
  std::uint8_t m_server_maximum_qos = 2;
  bool m_retain_stripped_logged = false;

  // keepalive
  event::TimePoint m_last_tx{};
  event::TimePoint m_last_rx{};
  event::TimePoint m_ping_deadline{};  // the least wait for a PINGRESP (see ping_deadline())
  bool m_ping_pending = false;         // PINGREQ to compose
  bool m_ping_outstanding = false;     // PINGRESP awaited

  // input
  std::unique_ptr<std::uint8_t[]> m_rx;
  std::size_t m_rx_cap, m_rx_begin = 0, m_rx_end = 0;
  RxMode m_rx_mode = RxMode::header;
  FixedHeader m_header;
  mem::Slot* m_rx_slot = nullptr;
  std::uint32_t m_body_filled = 0;
  std::uint8_t m_discard_prefix[4] = {};  // topic length and packet id of a discarded PUBLISH
  std::uint8_t m_paused = 0;
  bool m_hold = false;  // the application's hold: pause at the next PUBLISH

  // received messages awaiting ack, in arrival order
  mem::Ring<PendingAck> m_acks;
  // QoS 2: PUBREC sent, PUBREL awaited; PUBREL received, PUBCOMP owed (bit per packet id)
  std::unique_ptr<IdSet> m_awaiting_rel, m_pubcomp_owed;

  // output
  std::unique_ptr<std::uint8_t[]> m_tx;
  std::size_t m_tx_cap, m_tx_begin = 0, m_tx_end = 0;
  bool m_subscribe_pending = false;            // filters k_unanswered wait for a SUBSCRIBE
  std::vector<std::uint8_t> m_sub_state;       // per filter (subscription_states)
  std::vector<Subscription> m_sub_batch;       // the filters of the SUBSCRIBE in flight
  std::vector<std::size_t> m_sub_batch_index;  // ... and their indices
  std::uint16_t m_sub_packet_id = 0;
  unsigned m_sub_attempt = 0;
  // QoS 1 publishes: queued, then sent from m_out_next on (head() <= m_out_next <= tail());
  // an entry leaves at the head once it and all before it are acknowledged (or given up).
  mem::Ring<Outgoing> m_out;
  std::uint64_t m_out_next = 0;
  std::uint32_t m_outstanding = 0;  // sent on this connection, not acknowledged
  std::uint16_t m_next_packet_id = 1;
  // blame_oldest_publish: the publish that was oldest at the last DISCONNECTs, and how many
  static constexpr unsigned k_poison_strikes = 3;
  std::uint64_t m_struck_cookie = 0;
  unsigned m_strikes = 0;

  SessionCounters m_counters;
};

}  // namespace edgegw::mqtt
