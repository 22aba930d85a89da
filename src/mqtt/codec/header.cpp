#include "mqtt/codec/packets.hpp"

namespace edgegw::mqtt {

const char* packet_name(PacketType type) {
  static constexpr const char* k_names[] = {"reserved", "CONNECT",  "CONNACK",    "PUBLISH", "PUBACK",      "PUBREC",
                                            "PUBREL",   "PUBCOMP",  "SUBSCRIBE",  "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
                                            "PINGREQ",  "PINGRESP", "DISCONNECT", "AUTH"};
  return k_names[static_cast<unsigned>(type) & 0x0f];
}

const char* reason_name(Reason reason) {
  switch (reason) {
    case Reason::success: return "success";
    case Reason::granted_qos1: return "granted QoS 1";
    case Reason::granted_qos2: return "granted QoS 2";
    case Reason::disconnect_with_will: return "disconnect with will message";
    case Reason::no_matching_subscribers: return "no matching subscribers";
    case Reason::no_subscription_existed: return "no subscription existed";
    case Reason::unspecified_error: return "unspecified error";
    case Reason::malformed_packet: return "malformed packet";
    case Reason::protocol_error: return "protocol error";
    case Reason::implementation_specific_error: return "implementation specific error";
    case Reason::unsupported_protocol_version: return "unsupported protocol version";
    case Reason::client_id_not_valid: return "client identifier not valid";
    case Reason::bad_username_or_password: return "bad user name or password";
    case Reason::not_authorized: return "not authorized";
    case Reason::server_unavailable: return "server unavailable";
    case Reason::server_busy: return "server busy";
    case Reason::banned: return "banned";
    case Reason::server_shutting_down: return "server shutting down";
    case Reason::bad_auth_method: return "bad authentication method";
    case Reason::keepalive_timeout: return "keep alive timeout";
    case Reason::session_taken_over: return "session taken over";
    case Reason::topic_filter_invalid: return "topic filter invalid";
    case Reason::topic_name_invalid: return "topic name invalid";
    case Reason::packet_id_in_use: return "packet identifier in use";
    case Reason::packet_id_not_found: return "packet identifier not found";
    case Reason::receive_maximum_exceeded: return "receive maximum exceeded";
    case Reason::topic_alias_invalid: return "topic alias invalid";
    case Reason::packet_too_large: return "packet too large";
    case Reason::message_rate_too_high: return "message rate too high";
    case Reason::quota_exceeded: return "quota exceeded";
    case Reason::administrative_action: return "administrative action";
    case Reason::payload_format_invalid: return "payload format invalid";
    case Reason::retain_not_supported: return "retain not supported";
    case Reason::qos_not_supported: return "QoS not supported";
    case Reason::use_another_server: return "use another server";
    case Reason::server_moved: return "server moved";
    case Reason::shared_subscriptions_not_supported: return "shared subscriptions not supported";
    case Reason::connection_rate_exceeded: return "connection rate exceeded";
    case Reason::maximum_connect_time: return "maximum connect time";
    case Reason::subscription_ids_not_supported: return "subscription identifiers not supported";
    case Reason::wildcard_subscriptions_not_supported: return "wildcard subscriptions not supported";
  }
  return "unknown reason code";
}

HeaderStatus decode_fixed_header(Bytes data, FixedHeader& out) {
  if (data.empty()) return HeaderStatus::need_more;
  const std::uint8_t first = data[0];
  const auto type = static_cast<PacketType>(first >> 4);
  const std::uint8_t flags = first & 0x0f;
  switch (type) {
    case PacketType::publish:
      if ((flags & 0x06) == 0x06) return HeaderStatus::malformed;                 // QoS 3 [MQTT-3.3.1-4]
      if ((flags & 0x06) == 0 && (flags & 0x08)) return HeaderStatus::malformed;  // DUP on QoS 0 [MQTT-3.3.1-2]
      break;
    case PacketType::pubrel:
    case PacketType::subscribe:
    case PacketType::unsubscribe:
      if (flags != 0x02) return HeaderStatus::malformed;
      break;
    default:
      if (static_cast<unsigned>(type) == 0 || flags != 0) return HeaderStatus::malformed;
  }
  Reader in(data.subspan(1));
  std::uint32_t remaining = 0;
  if (!in.varint(remaining)) {
    // Truncated is "wait for more"; four continuation bytes or a non-minimal form is not.
    bool cut_short = data.size() < 5;
    for (std::size_t i = 1; i < data.size() && cut_short; ++i) cut_short = (data[i] & 0x80) != 0;
    return cut_short ? HeaderStatus::need_more : HeaderStatus::malformed;
  }
  out = FixedHeader{type, flags, remaining, static_cast<std::uint8_t>(1 + in.position())};
  return HeaderStatus::ok;
}

std::size_t encode_ping(MutableBytes out, PacketType type) {
  if (out.size() < 2) return 0;
  out[0] = static_cast<std::uint8_t>(static_cast<unsigned>(type) << 4);
  out[1] = 0;
  return 2;
}

}  // namespace edgegw::mqtt
