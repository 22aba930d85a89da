// Session: connection lifecycle, keepalive and the output path. The input path is in
// session_rx.cpp.
#include "mqtt/session.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "util/log.hpp"

namespace edgegw::mqtt {
namespace {

constexpr std::size_t k_tx_headroom = 1024;  // beyond the largest message: headers, acks, pings

}  // namespace

Reason client_disconnect_reason(Reason reason) {
  switch (reason) {
    case Reason::success:
    case Reason::disconnect_with_will:
    case Reason::unspecified_error:
    case Reason::malformed_packet:
    case Reason::protocol_error:
    case Reason::implementation_specific_error:
    case Reason::topic_name_invalid:
    case Reason::receive_maximum_exceeded:
    case Reason::topic_alias_invalid:
    case Reason::packet_too_large:
    case Reason::message_rate_too_high:
    case Reason::quota_exceeded:
    case Reason::administrative_action:
    case Reason::payload_format_invalid: return reason;
    default: return Reason::unspecified_error;
  }
}

const char* state_name(SessionState state) {
  switch (state) {
    case SessionState::stopped: return "stopped";
    case SessionState::backoff: return "backoff";
    case SessionState::connecting: return "connecting";
    case SessionState::awaiting_connack: return "awaiting-connack";
    case SessionState::connected: return "connected";
  }
  return "?";
}

event::Duration backoff_delay(unsigned attempt, event::Duration min, event::Duration max, util::Random& random) {
  event::Duration delay = min;
  for (unsigned i = 0; i < attempt && delay < max; ++i) delay *= 2;
  if (delay > max) delay = max;
  const auto ticks = static_cast<std::uint64_t>(delay.count());
  return event::Duration(static_cast<event::Duration::rep>(random.between(ticks / 2, ticks)));
}

Session::Session(event::Loop& loop, Transport& transport, mem::Pool* pool, SessionOptions options,
                 SessionHandler& handler)
    : m_loop(loop), m_transport(transport), m_pool(pool), m_options(std::move(options)), m_handler(handler),
      m_timer(loop, *this), m_sub_timer(loop, *this),
      m_random(m_options.random_seed ? m_options.random_seed
                                     : static_cast<std::uint64_t>(event::Clock::now().time_since_epoch().count())),
      m_rx_cap(m_options.rx_buffer_bytes), m_acks(m_options.receive_maximum),  // (a capacity of 0 is made 1)
      m_tx_cap(m_options.tx_buffer_bytes ? m_options.tx_buffer_bytes
                                         : (pool ? pool->slot_capacity() : 4096) + k_tx_headroom),
      m_out(m_options.max_inflight) {
  m_rx.reset(new std::uint8_t[m_rx_cap]);
  m_tx.reset(new std::uint8_t[m_tx_cap]);
  m_awaiting_rel.reset(new IdSet);
  m_pubcomp_owed.reset(new IdSet);
  m_subscriptions.reserve(m_options.subscriptions.size());
  for (const std::string& filter : m_options.subscriptions) {
    const std::uint8_t extra = m_options.version == Version::v5 ? m_options.subscribe_options_v5 : 0;
    m_subscriptions.push_back(Subscription{filter, static_cast<std::uint8_t>(m_options.subscribe_qos | extra)});
  }
  m_sub_state.assign(m_subscriptions.size(), k_unanswered);
  m_sub_batch.reserve(m_subscriptions.size());
  m_sub_batch_index.reserve(m_subscriptions.size());
}

Session::~Session() {
  if (m_registered_fd >= 0) m_loop.remove(m_registered_fd);
  if (m_pool) m_pool->stop_waiting(this);
  if (m_rx_slot) m_pool->release(m_rx_slot);
}

std::size_t Session::footprint_bytes() const {
  return m_rx_cap + m_tx_cap + m_acks.capacity() * sizeof(PendingAck) + m_out.capacity() * sizeof(Outgoing) +
         2 * sizeof(IdSet) + m_subscriptions.capacity() * sizeof(Subscription);
}

std::uint32_t Session::publish_window() const {
  return std::min<std::uint32_t>(static_cast<std::uint32_t>(m_out.capacity()), m_server_receive_maximum);
}

std::uint16_t Session::keepalive_s() const {
  return m_server_keepalive_set ? m_server_keepalive : m_options.keepalive_s;
}

// ---- connection lifecycle --------------------------------------------------------------

void Session::start() {
  m_running = true;
  if (m_state == SessionState::stopped || m_state == SessionState::backoff) connect_now();
}

void Session::connect_now() {
  m_state = SessionState::connecting;
  m_timer.arm_in(m_options.connect_timeout);
  handle_progress(m_transport.open());
}

void Session::handle_progress(Progress progress) {
  switch (progress) {
    case Progress::done: {
      m_progress_events = 0;
      // While input is held behind a PUBLISH no PINGRESP can be read: a broker that is gone
      // shows as unacknowledged data (PINGREQs) timing out in TCP instead.
      const auto keepalive = std::chrono::seconds(m_options.keepalive_s);
      m_transport.set_user_timeout(std::max<std::chrono::milliseconds>(std::chrono::seconds(10), keepalive * 3 / 2));
      send_connect();
      break;
    }
    case Progress::want_read: m_progress_events = EPOLLIN; break;
    case Progress::want_write: m_progress_events = EPOLLOUT; break;
    case Progress::failed:
      if (m_transport.failed_until_fixed())
        fail_until_fixed(Reason::unspecified_error, Origin::local, "%s", m_transport.error());
      else fail(Reason::unspecified_error, Origin::local, "%s", m_transport.error());
      return;
  }
  update_interest();
}

void Session::send_connect() {
  Connect c;
  c.version = m_options.version;
  c.clean_start = m_options.clean_start;
  c.keepalive = m_options.keepalive_s;
  c.client_id = m_options.client_id;
  c.has_username = !m_options.username.empty();
  c.username = m_options.username;
  c.has_password = m_options.password.has_value();
  if (c.has_password) c.password = text_bytes(*m_options.password);
  c.has_will = !m_options.will_topic.empty();
  c.will.topic = m_options.will_topic;
  c.will.payload = text_bytes(m_options.will_payload);
  c.will.qos = m_options.will_qos;
  c.will.retain = m_options.will_retain;
  if (c.version == Version::v5) {
    c.props.session_expiry = m_options.session_expiry_s;
    c.props.mark(PropertyId::session_expiry);
    c.props.receive_maximum = static_cast<std::uint16_t>(m_acks.capacity());
    c.props.mark(PropertyId::receive_maximum);
    // A session that takes no messages tells the broker the largest packet it reads. One
    // that does (ingest) does not: the broker would drop a larger message silently, where
    // edgegw refuses it visibly (logged and counted, refused_oversize).
    if (!m_pool) {
      c.props.maximum_packet_size = static_cast<std::uint32_t>(m_rx_cap);
      c.props.mark(PropertyId::maximum_packet_size);
    }
  }
  m_tx_begin = m_tx_end = 0;
  m_tx_end = encode(std::span(m_tx.get(), m_tx_cap), c);
  if (m_tx_end == 0) {
    fail(Reason::implementation_specific_error, Origin::local, "CONNECT does not fit the send buffer");
    return;
  }
  m_state = SessionState::awaiting_connack;
  write_out();
}

void Session::fail(Reason reason, Origin origin, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(reason, origin, fmt, ap);
  va_end(ap);
}

void Session::fail_until_fixed(Reason reason, Origin origin, const char* fmt, ...) {
  if (m_failing || m_state == SessionState::stopped || m_state == SessionState::backoff) return;
  va_list ap;
  va_start(ap, fmt);
  vfail(reason, origin, fmt, ap);
  va_end(ap);
  m_failure_until_fixed = true;
  m_failure.repeated = std::strcmp(m_failure_text, m_failure_logged) == 0;
  if (m_failure.repeated) return;
  std::memcpy(m_failure_logged, m_failure_text, sizeof m_failure_logged);
  EGW_LOG_LIMITED(error, "mqtt %s: %s", m_options.client_id.c_str(), m_failure_text);
}

void Session::vfail(Reason reason, Origin origin, const char* fmt, va_list ap) {
  if (m_failing || m_state == SessionState::stopped || m_state == SessionState::backoff) return;
  m_failing = true;
  std::vsnprintf(m_failure_text, sizeof m_failure_text, fmt, ap);
  m_failure = DisconnectInfo{reason, origin == Origin::server, m_failure_text};
  if (reason == Reason::malformed_packet || reason == Reason::protocol_error) ++m_counters.protocol_errors;
  // Tell a v5 server why we are leaving, if it was its packet that was bad, with a reason
  // a client may send (3.14.2.1; 0x8D keepalive timeout, say, is the server's).
  if (m_options.version == Version::v5 && m_state == SessionState::connected && origin == Origin::local &&
      reason != Reason::unspecified_error) {
    Disconnect d;
    d.reason = client_disconnect_reason(reason);
    std::uint8_t buf[8];
    std::size_t n = encode(buf, d, m_options.version);
    if (m_tx_end == m_tx_begin) (void)m_transport.write(std::span<const std::uint8_t>(buf, n));
  }
  m_loop.defer(*this);
}

void Session::run_deferred() {
  if (m_failing) {
    close_now();
    return;
  }
  // Input resumed (pool slot or ack room came back): work through what is buffered.
  if (usable() && !m_paused) read_input();
  update_interest();
}

void Session::close_now() {
  const bool was_connected = m_state == SessionState::connected;
  if (m_registered_fd >= 0) m_loop.remove(m_registered_fd);
  m_registered_fd = -1;
  m_registered_events = 0;
  m_transport.close();
  reset_input();
  ++m_connection;  // tokens of this connection are stale from now on
  m_acks.clear();
  m_tx_begin = m_tx_end = 0;
  m_ping_pending = m_ping_outstanding = m_subscribe_pending = false;
  // Everything not acknowledged is sent again, with DUP, on the next connection.
  m_out_next = m_out.head();
  m_outstanding = 0;
  m_server_receive_maximum = 65535;
  m_server_max_packet = 0;
  m_server_keepalive_set = false;
  m_server_retain_available = true;
  m_server_maximum_qos = 2;
  m_retain_stripped_logged = false;
  m_sub_timer.cancel();
  std::fill(m_sub_state.begin(), m_sub_state.end(), k_unanswered);

  if (was_connected) ++m_counters.disconnects;
  else ++m_counters.connect_failures;
  const DisconnectInfo info = m_failing ? m_failure : DisconnectInfo{Reason::success, false, "stopped"};
  m_failing = false;
  m_state = m_running ? SessionState::backoff : SessionState::stopped;
  // Only a connection that lasted starts the backoff over: a broker that refuses, or
  // accepts and drops at once, is tried ever more slowly.
  if (was_connected && m_loop.now() - m_connected_at >= m_options.stable_after) m_attempt = 0;
  if (m_running) {
    event::Duration delay = backoff_delay(m_attempt++, m_options.reconnect_min, m_options.reconnect_max, m_random);
    if (m_failure_until_fixed) delay = m_options.reconnect_max;
    m_failure_until_fixed = false;
    m_timer.arm_in(delay);
    if (!info.repeated)
      EGW_LOG_LIMITED(info, "mqtt %s: disconnected (%s: %s); reconnecting in %lld ms", m_options.client_id.c_str(),
                      reason_name(info.reason), info.detail,
                      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()));
  } else {
    m_timer.cancel();
  }
  m_handler.on_disconnected(info);
}

void Session::stop() {
  m_running = false;
  if (m_state == SessionState::backoff) {
    m_timer.cancel();
    m_state = SessionState::stopped;
    return;
  }
  if (m_state == SessionState::connected && !m_failing) {
    compose();  // what is due (the last PUBACKs) goes before the DISCONNECT
    Disconnect d;
    std::span<std::uint8_t> space = tx_space();
    m_tx_end += encode(space, d, m_options.version);
    write_out();
    if (m_tx_end == m_tx_begin && !m_failing) {
      // Everything is written, the last PUBACKs included: let the broker read it all (the
      // fd leaves epoll first, then closes; see Transport::close_gracefully).
      if (m_registered_fd >= 0) m_loop.remove(m_registered_fd);
      m_registered_fd = -1;
      m_registered_events = 0;
      m_transport.close_gracefully(std::chrono::milliseconds(500));
    }
  }
  if (m_state != SessionState::stopped) {
    m_failing = false;
    close_now();
  }
}

void Session::update_interest() {
  const int fd = m_transport.fd();
  std::uint32_t events = 0;
  if (fd >= 0) {
    if (m_state == SessionState::connecting) {
      events = m_progress_events;
    } else if (m_state >= SessionState::awaiting_connack) {
      if (!m_paused) events |= EPOLLIN;
      else events |= EPOLLRDHUP;  // not reading, but told when the broker closes
      if (m_tx_end > m_tx_begin) events |= EPOLLOUT;
    }
  }
  if (fd != m_registered_fd && m_registered_fd >= 0) {
    m_loop.remove(m_registered_fd);
    m_registered_fd = -1;
  }
  if (fd < 0) return;
  if (m_registered_fd < 0) {
    if (m_loop.add(fd, events, this)) {
      m_registered_fd = fd;
      m_registered_events = events;
    }
  } else if (events != m_registered_events && m_loop.modify(fd, events, this)) {
    m_registered_events = events;
  }
}

void Session::on_io(std::uint32_t events) {
  if (m_failing) return;
  if (m_state == SessionState::connecting) {
    handle_progress(m_transport.progress());
    return;
  }
  if ((events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)) && m_paused) {  // not reading: nothing else would see it
    int error = 0;
    socklen_t len = sizeof error;
    if ((events & EPOLLERR) && ::getsockopt(m_transport.fd(), SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error) {
      fail(Reason::unspecified_error, Origin::local, "the connection failed while edgegw held its input: %s",
           std::strerror(error));  // TCP_USER_TIMEOUT: a dead peer
    } else {
      fail(Reason::unspecified_error, Origin::server, "the broker closed the connection while edgegw held its input");
    }
    return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read_input();
  if (usable()) flush();  // composes what is due and writes it, EPOLLOUT or not
}

void Session::on_slot_available() {
  m_paused &= static_cast<std::uint8_t>(~k_pause_pool);
  m_loop.defer(*this);
}

void Session::pause_input(std::uint8_t reason) {
  if (!m_paused) ++m_counters.input_pauses;
  m_paused |= reason;
  if (reason == k_pause_pool) m_pool->wait_for_slot(this);
  update_interest();
}

void Session::hold_input(bool hold) {
  m_hold = hold;
  if (!hold && (m_paused & k_pause_app)) {
    m_paused &= static_cast<std::uint8_t>(~k_pause_app);
    m_loop.defer(*this);
  }
}

// ---- timers: connect timeout, reconnect, keepalive -------------------------------------

void Session::on_timer(event::Timer& timer) {
  if (&timer == &m_sub_timer) return resubscribe();
  switch (m_state) {
    case SessionState::stopped: return;
    case SessionState::backoff: connect_now(); return;
    case SessionState::connecting:
    case SessionState::awaiting_connack:
      fail(Reason::unspecified_error, Origin::local, "connect timed out after %lld ms waiting for %s",
           static_cast<long long>(
               std::chrono::duration_cast<std::chrono::milliseconds>(m_options.connect_timeout).count()),
           m_state == SessionState::connecting ? m_transport.pending() : "the CONNACK");
      return;
    case SessionState::connected: break;
  }
  const event::TimePoint now = m_loop.now();
  if (m_ping_outstanding && now >= ping_deadline()) {
    if (!m_paused) {
      fail(Reason::keepalive_timeout, Origin::local,
           "no PINGRESP, and nothing else from the broker for %lld ms (keepalive %u s)",
           static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(now - m_last_rx).count()),
           keepalive_s());
      return;
    }
    // Held behind a PUBLISH, the PINGRESP cannot be read: PINGREQs go on (the broker
    // hears from us), and a dead broker shows up through TCP_USER_TIMEOUT.
    m_ping_outstanding = false;
  }
  if (!m_ping_outstanding && now >= m_last_tx + std::chrono::seconds(keepalive_s())) {
    m_ping_pending = m_ping_outstanding = true;
    m_ping_deadline = now + std::chrono::milliseconds(keepalive_s() * 500);
    flush();
  }
  arm_keepalive();
}

void Session::arm_keepalive() {
  if (keepalive_s() == 0) {
    m_timer.cancel();
    return;
  }
  event::TimePoint next = m_last_tx + std::chrono::seconds(keepalive_s());
  if (m_ping_outstanding) next = std::min(next, ping_deadline());
  m_timer.arm_at(next);
}

// A broker is given up when a PINGREQ is unanswered and nothing at all came from it for
// 1.5 keepalives (as a broker gives up a silent client), so a half-open link is noticed
// within 1.5 keepalives of going silent, busy or idle; the PINGRESP gets at least half a
// keepalive. (Waiting a whole keepalive for it took up to 2 keepalives.)
event::TimePoint Session::ping_deadline() const {
  return std::max(m_ping_deadline, m_last_rx + std::chrono::milliseconds(keepalive_s() * 1500));
}

// ---- output -------------------------------------------------------------------------

std::span<std::uint8_t> Session::tx_space() {
  if (m_tx_begin == m_tx_end) m_tx_begin = m_tx_end = 0;
  if (m_tx_begin > 0 && m_tx_cap - m_tx_end < k_tx_headroom) {
    std::memmove(m_tx.get(), m_tx.get() + m_tx_begin, m_tx_end - m_tx_begin);
    m_tx_end -= m_tx_begin;
    m_tx_begin = 0;
  }
  return {m_tx.get() + m_tx_end, m_tx_cap - m_tx_end};
}

void Session::flush() {
  if (!usable()) return;
  // Compose what fits, write it, and go again while the socket takes everything (more may
  // be due than the send buffer holds at once).
  for (int round = 0; round < 16; ++round) {
    if (m_state == SessionState::connected) compose();
    const bool composed = m_tx_end > m_tx_begin;
    write_out();
    if (!composed || !usable() || m_tx_end > m_tx_begin) break;
  }
  update_interest();
}

void Session::compose() {
  if (m_ping_pending) {
    std::size_t n = encode_ping(tx_space(), PacketType::pingreq);
    if (n) {
      m_tx_end += n;
      m_ping_pending = false;
      ++m_counters.pings_sent;
    }
  }
  while (m_pubcomp_owed->size() > 0) {
    const std::uint16_t id = m_pubcomp_owed->first();
    std::size_t n = encode(tx_space(), Ack{PacketType::pubcomp, id}, m_options.version);
    if (n == 0) return;
    m_tx_end += n;
    m_pubcomp_owed->erase(id);
  }
  if (!compose_acks()) return;
  if (m_subscribe_pending && !compose_subscribe()) return;
  compose_publishes();
}

bool Session::compose_acks() {
  bool fits = true;
  while (!m_acks.empty()) {
    PendingAck& a = m_acks.front();
    if (!a.ready) break;
    const PacketType type = a.qos == 2 ? PacketType::pubrec : PacketType::puback;
    std::size_t n = encode(tx_space(), Ack{type, a.packet_id}, m_options.version);
    if (n == 0) {  // the send buffer is full: the rest go once it drains
      fits = false;
      break;
    }
    m_tx_end += n;
    if (a.qos == 2) m_awaiting_rel->insert(a.packet_id);
    m_acks.pop_front();
  }
  // Room in the ring again: reading resumes (also when only part of the acks fit).
  if (!m_acks.full() && (m_paused & k_pause_acks)) {
    m_paused &= static_cast<std::uint8_t>(~k_pause_acks);
    m_loop.defer(*this);
  }
  return fits;
}

void Session::compose_publishes() {
  const std::uint32_t window = publish_window();
  while (m_out_next != m_out.tail() && m_outstanding < window) {
    Outgoing& o = m_out[m_out_next];
    if (o.acked) {  // acknowledged out of order before a reconnect
      ++m_out_next;
      continue;
    }
    Publish p;
    p.topic_prefix = o.message.topic_prefix;
    p.topic = o.message.topic;
    p.payload = o.message.payload;
    p.qos = o.message.qos;
    p.retain = strip_retain(o.message.retain);
    p.dup = o.sent_before;
    p.packet_id = o.packet_id;
    p.props.user = o.message.user_properties;
    set_expiry(p, o.message);
    if (m_server_max_packet && encoded_size(p, m_options.version) > m_server_max_packet) {
      // Queued under a larger limit (or none), before this connection: it can never go.
      o.acked = true;
      ++m_out_next;
      drop_acked_publishes();
      m_handler.on_published(o.cookie, Reason::packet_too_large);
      continue;
    }
    std::size_t n = encode(tx_space(), p, m_options.version);
    if (n == 0) return;
    m_tx_end += n;
    if (o.sent_before) ++m_counters.resent;
    o.sent_before = true;
    ++m_outstanding;
    ++m_out_next;
    ++m_counters.published;
  }
}

// A broker without retained messages (CONNACK Retain Available 0) disconnects a client
// that sends one [MQTT-3.3.1-8]: the flag goes, counted, and said once per connection.
bool Session::strip_retain(bool retain) {
  if (!retain || m_server_retain_available) return retain;
  ++m_counters.retain_stripped;
  if (!m_retain_stripped_logged) {
    EGW_LOG(warning,
            "mqtt %s: the broker keeps no retained messages (Retain Available 0): retained messages go "
            "without the retain flag",
            m_options.client_id.c_str());
    m_retain_stripped_logged = true;
  }
  return false;
}

std::uint16_t Session::take_packet_id() {
  // Ids go round 1..65535. The publish ring holds at most 65,000 entries (the config's
  // limit), so an id is never reused while its packet is unacknowledged.
  const std::uint16_t id = m_next_packet_id;
  m_next_packet_id = static_cast<std::uint16_t>(id == 65535 ? 1 : id + 1);
  return id;
}

void Session::write_out() {
  while (m_tx_end > m_tx_begin) {
    IoResult r = m_transport.write(std::span<const std::uint8_t>(m_tx.get() + m_tx_begin, m_tx_end - m_tx_begin));
    if (r.status == IoStatus::ok) {
      m_tx_begin += r.bytes;
      m_last_tx = m_loop.now();
      continue;
    }
    if (r.status == IoStatus::would_block) break;
    fail(Reason::unspecified_error, Origin::local, "%s",
         r.status == IoStatus::closed ? "connection closed by peer" : m_transport.error());
    return;
  }
  if (m_tx_end == m_tx_begin) m_tx_begin = m_tx_end = 0;
}

void Session::set_expiry(Publish& p, const OutMessage& message) {
  if (!message.has_message_expiry) return;
  p.props.message_expiry = message.message_expiry_s;
  p.props.mark(PropertyId::message_expiry);
}

PublishStatus Session::publish(const OutMessage& message, std::uint64_t cookie) {
  Publish p;
  p.topic_prefix = message.topic_prefix;
  p.topic = message.topic;
  p.payload = message.payload;
  p.qos = message.qos;
  p.retain = message.retain;
  p.packet_id = message.qos ? 1 : 0;
  p.props.user = message.user_properties;
  set_expiry(p, message);
  const std::size_t size = encoded_size(p, m_options.version);
  if (size == 0 || size > m_tx_cap - k_tx_headroom || (m_server_max_packet && size > m_server_max_packet)) {
    return PublishStatus::too_large;
  }
  if (message.qos == 0) {
    if (m_state != SessionState::connected || m_failing) return PublishStatus::not_connected;
    p.retain = strip_retain(message.retain);
    std::size_t n = encode(tx_space(), p, m_options.version);
    if (n == 0) {  // what is composed so far goes first
      write_out();
      if (!usable()) return PublishStatus::not_connected;
      n = encode(tx_space(), p, m_options.version);
    }
    if (n == 0) return PublishStatus::buffer_full;
    m_tx_end += n;
    ++m_counters.published;
    flush_later();
    return PublishStatus::queued;
  }
  if (publish_room() == 0) return PublishStatus::window_full;
  m_out.push(Outgoing{message, cookie, take_packet_id(), false, false});
  flush_later();
  return PublishStatus::queued;
}

void Session::drop_publishes() {
  m_out.clear();
  m_out_next = m_out.head();
  m_outstanding = 0;
  m_strikes = 0;
}

void Session::ack(AckToken token) {
  if (token.connection != m_connection || !m_acks.holds(token.position)) {
    ++m_counters.stale_acks;
    return;
  }
  m_acks[token.position].ready = true;
  flush_later();
}

}  // namespace edgegw::mqtt
