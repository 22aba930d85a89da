// Session: the input path. Small packets are parsed out of the receive buffer; a PUBLISH
// body goes into a pool slot (copied from what is already buffered, then read from the
// socket straight into the slot).
#include <algorithm>
#include <cinttypes>
#include <cstring>

#include "mqtt/session.hpp"
#include "util/log.hpp"

namespace edgegw::mqtt {

void Session::reset_input() {
  if (m_pool) m_pool->stop_waiting(this);
  if (m_rx_slot) m_pool->release(m_rx_slot);
  m_rx_slot = nullptr;
  m_rx_begin = m_rx_end = 0;
  m_rx_mode = RxMode::header;
  m_body_filled = 0;
  m_paused = 0;  // (the application's hold, m_hold, outlives the connection)
}

void Session::read_input() {
  // A budget per wakeup keeps one busy connection from starving the rest of the loop.
  for (int round = 0; round < 64; ++round) {
    if (!consume_buffered()) return;
    IoResult r;
    std::size_t asked = 0;
    if (m_rx_mode == RxMode::slot_body && m_rx_begin == m_rx_end) {
      asked = m_header.remaining - m_body_filled;
      r = m_transport.read(std::span(m_rx_slot->data + m_body_filled, asked));
      if (r.status == IoStatus::ok) m_body_filled += static_cast<std::uint32_t>(r.bytes);
    } else {
      if (m_rx_begin > 0) {
        std::memmove(m_rx.get(), m_rx.get() + m_rx_begin, m_rx_end - m_rx_begin);
        m_rx_end -= m_rx_begin;
        m_rx_begin = 0;
      }
      asked = m_rx_cap - m_rx_end;
      r = m_transport.read(std::span(m_rx.get() + m_rx_end, asked));
      if (r.status == IoStatus::ok) m_rx_end += r.bytes;
    }
    if (r.status == IoStatus::ok && r.bytes > 0) m_last_rx = m_loop.now();
    // Less than asked: the socket is drained for now (epoll says when more comes), so no
    // read that would only say EAGAIN.
    if (r.status == IoStatus::ok && r.bytes < asked && !m_transport.has_buffered_input()) {
      consume_buffered();
      return;
    }
    if (r.status == IoStatus::would_block) {
      if (!m_transport.has_buffered_input()) return;
      continue;
    }
    if (r.status == IoStatus::closed) {
      fail(Reason::unspecified_error, Origin::local, "connection closed by the server");
      return;
    }
    if (r.status == IoStatus::error) {
      fail(Reason::unspecified_error, Origin::local, "%s", m_transport.error());
      return;
    }
  }
  m_loop.defer(*this);  // budget spent: carry on next iteration (TLS may hold bytes epoll cannot see)
}

// Parses what is buffered. Returns true when it needs more bytes, false when input must
// stop (paused, failed or closed).
bool Session::consume_buffered() {
  while (true) {
    if (!usable() || m_paused) return false;
    const std::size_t avail = m_rx_end - m_rx_begin;
    const Bytes buffered(m_rx.get() + m_rx_begin, avail);
    switch (m_rx_mode) {
      case RxMode::header: {
        if (avail == 0) return true;
        HeaderStatus st = decode_fixed_header(buffered, m_header);
        if (st == HeaderStatus::need_more) return true;
        if (st == HeaderStatus::malformed) {
          fail(Reason::malformed_packet, Origin::local, "malformed fixed header (first byte 0x%02x)", buffered[0]);
          return false;
        }
        m_rx_begin += m_header.size;
        if (m_header.type == PacketType::publish) {
          m_rx_mode = RxMode::publish_start;
        } else if (m_header.remaining > m_rx_cap) {
          fail(Reason::packet_too_large, Origin::local, "%s of %u bytes exceeds the %zu-byte receive buffer",
               packet_name(m_header.type), m_header.remaining, m_rx_cap);
          return false;
        } else {
          m_rx_mode = RxMode::body;
        }
        break;
      }
      case RxMode::body:
        if (avail < m_header.remaining) return true;
        m_rx_begin += m_header.remaining;
        m_rx_mode = RxMode::header;
        handle_packet(buffered.first(m_header.remaining));
        break;
      case RxMode::publish_start: {
        if (m_hold) {  // the application takes nothing now: stop here, the broker queues
          pause_input(k_pause_app);
          return false;
        }
        const bool needs_ack = (m_header.flags & 0x06) != 0;
        if (needs_ack && m_acks.full()) {
          pause_input(k_pause_acks);
          return false;
        }
        m_body_filled = 0;
        if (!m_pool || m_header.remaining > m_pool->slot_capacity()) {
          m_rx_mode = RxMode::discard;
          break;
        }
        m_rx_slot = m_pool->acquire();
        if (!m_rx_slot) {
          pause_input(k_pause_pool);
          return false;
        }
        m_rx_mode = RxMode::slot_body;
        break;
      }
      case RxMode::slot_body: {
        const std::size_t n = std::min<std::size_t>(avail, m_header.remaining - m_body_filled);
        std::memcpy(m_rx_slot->data + m_body_filled, buffered.data(), n);
        if (!take_body(n)) return true;
        handle_publish();
        break;
      }
      case RxMode::discard: {
        const std::size_t n = std::min<std::size_t>(avail, m_header.remaining - m_body_filled);
        // Keep the bytes that name the message: topic length, then the packet id after the topic.
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint32_t at = m_body_filled + static_cast<std::uint32_t>(i);
          const std::uint32_t topic_len = (std::uint32_t{m_discard_prefix[0]} << 8) | m_discard_prefix[1];
          if (at < 2) m_discard_prefix[at] = buffered[i];
          else if (at >= 2 + topic_len && at < 4 + topic_len) m_discard_prefix[at - topic_len] = buffered[i];
        }
        if (!take_body(n)) return true;
        finish_discard();
        break;
      }
    }
  }
}

// `n` more bytes of a PUBLISH body were taken from the receive buffer. True when the body
// is complete: a fixed header comes next.
bool Session::take_body(std::size_t n) {
  m_rx_begin += n;
  m_body_filled += static_cast<std::uint32_t>(n);
  if (m_body_filled < m_header.remaining) return false;
  m_rx_mode = RxMode::header;
  return true;
}

void Session::push_ack(std::uint16_t packet_id, std::uint8_t qos, bool ready) {
  m_acks.push(PendingAck{packet_id, qos, ready});  // publish_start made room
}

void Session::finish_discard() {
  const std::uint8_t qos = (m_header.flags >> 1) & 0x03;
  const auto packet_id = static_cast<std::uint16_t>((m_discard_prefix[2] << 8) | m_discard_prefix[3]);
  if (qos > 0 && packet_id == 0) {
    fail(Reason::malformed_packet, Origin::local, "PUBLISH of %u bytes with packet id 0", m_header.remaining);
    return;
  }
  ++m_counters.refused_oversize;
  EGW_LOG(warning, "mqtt %s: refused a %u-byte PUBLISH (QoS %u, packet id %u): larger than a pool slot (%u bytes)",
          m_options.client_id.c_str(), m_header.remaining, qos, packet_id, m_pool ? m_pool->slot_capacity() : 0);
  // Acknowledged so the broker does not redeliver it forever; counted and logged above.
  if (qos > 0) push_ack(packet_id, qos, true);
}

void Session::handle_publish() {
  mem::Slot* slot = std::exchange(m_rx_slot, nullptr);
  Publish p;
  Reason r = decode(m_header, Bytes(slot->data, m_header.remaining), m_options.version, p);
  if (r == Reason::success && p.props.has(PropertyId::topic_alias)) r = Reason::topic_alias_invalid;  // we allow none
  if (r != Reason::success) {
    m_pool->release(slot);
    fail(r, Origin::local, "bad PUBLISH from the server: %s", reason_name(r));
    return;
  }
  if (p.topic.size() + p.payload.size() > m_pool->slot_bytes()) {
    m_pool->release(slot);
    ++m_counters.refused_oversize;
    EGW_LOG(warning, "mqtt %s: refused a message on '%.*s': topic + payload is %zu bytes, pool slots hold %u",
            m_options.client_id.c_str(), static_cast<int>(p.topic.size()), p.topic.data(),
            p.topic.size() + p.payload.size(), m_pool->slot_bytes());
    if (p.qos > 0) push_ack(p.packet_id, p.qos, true);
    return;
  }
  if (p.qos == 2 && m_awaiting_rel->contains(p.packet_id)) {
    // Accepted already (PUBREC sent); the server resent it before seeing our PUBREC.
    m_pool->release(slot);
    ++m_counters.duplicates_dropped;
    push_ack(p.packet_id, 2, true);
    return;
  }
  AckToken token{m_connection, m_acks.tail()};
  if (p.qos > 0) push_ack(p.packet_id, p.qos, false);
  ++m_counters.received;
  Message m{slot, p.topic, p.payload, p.props, p.qos, p.retain, p.dup, p.packet_id};
  m_handler.on_message(m, token);
}

// A server may disconnect us over a message it will not take (mosquitto, for one, does for
// a topic deeper than 200 '/', with protocol error). After the reconnect that message goes
// first again, and is disconnected again: a loop that holds up everything behind it. So
// when DISCONNECTs whose reason blames a packet end k_poison_strikes connections in a row
// while the same publish was the oldest unacknowledged one, that publish is given up and
// reported refused with the server's reason. A 3.1.1 server only closes the connection,
// which says nothing about why: not counted.
void Session::blame_oldest_publish(Reason reason) {
  const bool blames_a_packet = reason == Reason::malformed_packet || reason == Reason::protocol_error ||
                               reason == Reason::topic_name_invalid || reason == Reason::packet_too_large ||
                               reason == Reason::payload_format_invalid;
  if (!blames_a_packet || m_out.head() == m_out_next) return;  // nothing of ours was in flight
  Outgoing& o = m_out.front();
  if (m_strikes == 0 || o.cookie != m_struck_cookie) {
    m_struck_cookie = o.cookie;
    m_strikes = 0;
  }
  if (++m_strikes < k_poison_strikes) return;
  m_strikes = 0;
  o.acked = true;
  drop_acked_publishes();
  EGW_LOG(error,
          "mqtt %s: the server disconnected us %u times in a row (%s) while message %" PRIu64
          " was the oldest unacknowledged one: given up",
          m_options.client_id.c_str(), k_poison_strikes, reason_name(reason), o.cookie);
  m_handler.on_published(o.cookie, reason);
}

void Session::handle_puback(const Ack& ack) {
  for (std::uint64_t i = m_out.head(); i != m_out_next; ++i) {
    Outgoing& o = m_out[i];
    if (o.packet_id != ack.packet_id || o.acked) continue;
    o.acked = true;
    --m_outstanding;
    ++m_counters.publish_acked;
    drop_acked_publishes();
    m_handler.on_published(o.cookie, ack.reason);
    return;
  }
  EGW_LOG(debug, "mqtt %s: PUBACK for unknown packet id %u ignored", m_options.client_id.c_str(), ack.packet_id);
}

// Publishes leave the ring in order: the oldest once it is acknowledged, with every
// acknowledged one behind it. Those may lie past the send cursor (acknowledged before a
// reconnect, and not passed over yet while the window was full): the cursor moves up with
// the head, so it never names a position whose storage a new publish may take.
void Session::drop_acked_publishes() {
  while (!m_out.empty() && m_out.front().acked) m_out.pop_front();
  m_out_next = std::max(m_out_next, m_out.head());
}

namespace {

// CONNACK refusals that retrying soon cannot mend: a setting, a credential or the broker
// must change first.
bool refused_until_fixed(Reason r) {
  switch (r) {
    case Reason::unsupported_protocol_version:
    case Reason::client_id_not_valid:
    case Reason::bad_username_or_password:
    case Reason::not_authorized:
    case Reason::banned:
    case Reason::bad_auth_method:
    case Reason::use_another_server:
    case Reason::server_moved: return true;
    default: return false;
  }
}

}  // namespace

// A Server Reference (CONNACK or DISCONNECT, "use another server", "server moved") is
// told, not followed: following it would send the credentials, the client certificate and
// the trust in a TLS name to a host the broker picked, not the operator.
void Session::describe_reference(std::string_view reference, char (&out)[128]) const {
  out[0] = '\0';
  if (reference.empty()) return;
  std::snprintf(out, sizeof out, "; it names another server, \"%.*s\" (not followed: set %s.url)",
                static_cast<int>(std::min<std::size_t>(reference.size(), 64)), reference.data(),
                m_options.config_key.c_str());
}

// The version the broker speaks is the operator's to set: with version_fallback, a broker
// that answers MQTT 5 as a 3.1.1 broker gets 3.1.1 from the next attempt on.
bool Session::fall_back_to_311() {
  if (!m_options.version_fallback || m_options.version != Version::v5) return false;
  m_options.version = Version::v311;
  // 3.1.1 has no subscription options: only the QoS may go in the byte after each filter
  // (the rest set is a malformed SUBSCRIBE to a 3.1.1 broker; found by session_fuzz).
  for (Subscription& s : m_subscriptions) {
    s.options &= 0x03;
    if (s.filter.starts_with("$share/"))
      EGW_LOG(warning,
              "mqtt %s: '%.*s' is a shared subscription, which MQTT 3.1.1 does not have: the broker refuses it "
              "or takes it as a plain filter that no message matches",
              m_options.client_id.c_str(), static_cast<int>(s.filter.size()), s.filter.data());
  }
  EGW_LOG(notice, "mqtt %s: the broker does not speak MQTT 5; using MQTT 3.1.1 (%s.mqtt_version = \"auto\")",
          m_options.client_id.c_str(), m_options.config_key.c_str());
  return true;
}

void Session::handle_connack(Bytes body) {
  // A 3.1.1-only broker answers an MQTT 5 CONNECT with a 3.1.1 CONNACK: return code 1,
  // "unacceptable protocol version", and no properties (which MQTT 5 would not parse).
  if (m_options.version == Version::v5 && body.size() == 2 && body[0] == 0 && body[1] == 0x01) {
    if (fall_back_to_311()) {
      fail(Reason::unsupported_protocol_version, Origin::server, "the broker speaks MQTT 3.1.1 only");
    } else {
      fail_until_fixed(Reason::unsupported_protocol_version, Origin::server,
                       "the broker speaks MQTT 3.1.1 only (it refused this MQTT 5 CONNECT as an unacceptable protocol "
                       "version): set %s.mqtt_version = \"3.1.1\" (or \"auto\")",
                       m_options.config_key.c_str());
    }
    return;
  }
  Connack c;
  Reason r = decode(body, m_options.version, c);
  if (r != Reason::success) {
    fail(r, Origin::local, "bad CONNACK: %s", reason_name(r));
    return;
  }
  if (is_error(c.reason)) {
    char reference[128];
    describe_reference(c.props.server_reference, reference);
    if (c.reason == Reason::unsupported_protocol_version && fall_back_to_311()) {
      fail(c.reason, Origin::server, "connection refused: %s", reason_name(c.reason));
    } else if (c.reason == Reason::retain_not_supported && m_options.will_retain) {
      m_options.will_retain = false;  // the broker keeps no retained messages, a will's neither
      fail(c.reason, Origin::server, "connection refused: %s (for the Last Will): it goes without the flag",
           reason_name(c.reason));
    } else if (c.reason == Reason::qos_not_supported && !m_options.will_topic.empty() && m_options.will_qos > 0) {
      m_options.will_qos = 0;  // a broker below QoS 1 refuses a QoS 1 will (mosquitto max_qos 0)
      fail(c.reason, Origin::server, "connection refused: %s (for the Last Will): it goes at QoS 0",
           reason_name(c.reason));
    } else if (refused_until_fixed(c.reason)) {
      fail_until_fixed(c.reason, Origin::server, "connection refused: %s%s%.*s%s", reason_name(c.reason),
                       c.props.reason_string.empty() ? "" : ": ", static_cast<int>(c.props.reason_string.size()),
                       c.props.reason_string.data(), reference);
    } else {
      fail(c.reason, Origin::server, "connection refused: %s%s%.*s%s", reason_name(c.reason),
           c.props.reason_string.empty() ? "" : ": ", static_cast<int>(c.props.reason_string.size()),
           c.props.reason_string.data(), reference);
    }
    return;
  }
  // Asked for a clean start, offered an old session: not ours to trust [MQTT-3.2.2-4].
  if (m_options.clean_start && c.session_present) {
    fail(Reason::protocol_error, Origin::local, "CONNACK with Session Present after a clean start");
    return;
  }
  // A broker that cannot take our QoS would disconnect every publish [MQTT-3.2.2-11].
  if (c.props.has(PropertyId::maximum_qos) && c.props.maximum_qos < m_options.publish_qos) {
    fail_until_fixed(Reason::qos_not_supported, Origin::server,
                     "the broker takes publishes up to QoS %u only (Maximum QoS in its CONNACK), and %s.qos is %u: set "
                     "%s.qos = %u (messages can then be lost between edgegw and the broker), or use a broker that "
                     "takes QoS %u",
                     c.props.maximum_qos, m_options.config_key.c_str(), m_options.publish_qos,
                     m_options.config_key.c_str(), c.props.maximum_qos, m_options.publish_qos);
    return;
  }
  if (!m_options.clean_start && !c.session_present && m_counters.connects > 0) {
    ++m_counters.sessions_lost;
    EGW_LOG(warning, "mqtt %s: the broker kept no session for us: what it held for us while we were away is gone",
            m_options.client_id.c_str());
  }
  m_state = SessionState::connected;
  m_failure_logged[0] = '\0';
  m_connected_at = m_loop.now();
  ++m_counters.connects;
  m_server_retain_available = c.props.retain_available != 0;
  m_server_maximum_qos = c.props.maximum_qos;  // 2 unless it says less
  if (c.props.has(PropertyId::receive_maximum)) m_server_receive_maximum = c.props.receive_maximum;
  if (c.props.has(PropertyId::maximum_packet_size)) m_server_max_packet = c.props.maximum_packet_size;
  if (c.props.has(PropertyId::server_keepalive)) {
    m_server_keepalive = c.props.server_keepalive;
    m_server_keepalive_set = true;
  }
  if (!c.session_present) {
    // A new session: no QoS 2 exchange of an earlier one can still complete.
    m_awaiting_rel->clear();
    m_pubcomp_owed->clear();
  }
  subscriptions_connected(c.props);
  m_ping_outstanding = false;
  m_timer.cancel();
  arm_keepalive();
  EGW_LOG(info, "mqtt %s: connected (MQTT %s, session %s, publish window %u)", m_options.client_id.c_str(),
          m_options.version == Version::v5 ? "5.0" : "3.1.1", c.session_present ? "resumed" : "new", publish_window());
  m_handler.on_connected(c.session_present);
  // Nothing the broker can take was asked for: say so now, there will be no SUBACK.
  if (!m_subscribe_pending && !m_subscriptions.empty() && m_state == SessionState::connected) {
    m_handler.on_subscribed(subscription_states());
  }
}

void Session::handle_packet(Bytes body) {
  const PacketType type = m_header.type;
  if (m_state == SessionState::awaiting_connack) {
    if (type == PacketType::connack) handle_connack(body);
    else fail(Reason::protocol_error, Origin::local, "%s before CONNACK", packet_name(type));
    return;
  }
  switch (type) {
    case PacketType::puback:
    case PacketType::pubrec:
    case PacketType::pubrel:
    case PacketType::pubcomp: {
      Ack a;
      Reason r = decode(m_header, body, m_options.version, a);
      if (r != Reason::success) break;
      if (type == PacketType::puback) {
        handle_puback(a);
      } else if (type == PacketType::pubrel) {
        m_awaiting_rel->erase(a.packet_id);
        m_pubcomp_owed->insert(a.packet_id);
      } else {
        // We publish at QoS 0 and 1 only: a PUBREC or PUBCOMP answers nothing we sent.
        fail(Reason::protocol_error, Origin::local, "unexpected %s", packet_name(type));
      }
      return;
    }
    case PacketType::suback: handle_suback(body); return;
    case PacketType::unsuback: return;
    case PacketType::pingresp:
      m_ping_outstanding = false;
      ++m_counters.pongs_received;
      arm_keepalive();
      return;
    case PacketType::disconnect: {
      Disconnect d;
      if (decode(body, m_options.version, d) != Reason::success) break;
      char reference[128];
      describe_reference(d.props.server_reference, reference);
      fail(d.reason, Origin::server, "server sent DISCONNECT: %s%s%.*s%s", reason_name(d.reason),
           d.props.reason_string.empty() ? "" : ": ", static_cast<int>(d.props.reason_string.size()),
           d.props.reason_string.data(), reference);
      blame_oldest_publish(d.reason);
      return;
    }
    default: fail(Reason::protocol_error, Origin::local, "unexpected %s from the server", packet_name(type)); return;
  }
  fail(Reason::malformed_packet, Origin::local, "malformed %s from the server", packet_name(type));
}

}  // namespace edgegw::mqtt
