// The uplink rules ([[uplink.rule]], docs/CONFIG.md): which upstream topic, QoS and retain
// flag a record goes with. The first rule whose filter matches the local topic applies; a
// topic no rule matches goes as uplink.topic_prefix + topic at uplink.qos, its retain flag
// kept (with no rules, every topic does: the behaviour before rules existed).
//
// A rule is applied when a record is sent, not when it is spooled: the spool keeps the
// local topic, so rules changed across a restart apply to the backlog too.
//
// Fixed memory: a prefix or strip rule makes views of the local topic (no copy); a template
// rule composes into a buffer of the entry in flight, one per uplink.max_inflight, sized at
// start for the longest topic the templates can make (at most MQTT's 65,535 bytes; a longer
// one cannot be sent). Nothing allocates per message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "util/topic.hpp"

namespace edgegw::gateway {

// Where a record goes upstream: the topic is prefix + topic (views that stay valid while
// the buffer given to Router::route is not reused), its QoS and retain flag.
struct Route {
  std::string_view prefix;
  std::string_view topic;
  std::uint8_t qos = 1;
  bool retain = false;
  bool retain_stripped = false;  // retained, and its rule says retain = "strip"
  bool too_long = false;         // the template made more than MQTT's 65,535 bytes: cannot be sent
};

class Router {
 public:
  // `slot_bytes` bounds a local topic; `entries`: routes in use at once (each its buffer).
  Router(const config::Uplink& uplink, std::uint32_t slot_bytes, std::size_t entries);

  // The route of a record on `topic`, with its retain flag (the first stripped is logged). A template's topic is
  // composed into the buffer of `entry` (any number: entry % entries is used), which the caller keeps for this record
  // until the upstream broker has acknowledged it.
  Route route(std::string_view topic, bool retain, std::uint64_t entry);

  // The most an upstream topic can be longer than its local topic (send buffer sizing).
  std::size_t max_growth() const { return m_max_growth; }
  // The highest QoS a record may go with (the session checks the broker allows it).
  std::uint8_t max_qos() const { return m_max_qos; }

 private:
  struct Rule {
    const config::UplinkRule* config;
    std::vector<util::TemplatePart> parts;  // the template's (action topic)
    std::size_t hash_level = 0;             // the filter's '#' level, from 1; 0: none
  };

  const config::Uplink& m_uplink;
  std::vector<Rule> m_rules;
  std::size_t m_buffer_bytes = 0;  // per entry; 0: no template rule
  std::size_t m_entries;
  std::unique_ptr<char[]> m_buffers;
  std::size_t m_max_growth = 0;
  std::uint8_t m_max_qos = 0;
  bool m_strip_logged = false;
};

// The upstream topic of a local topic, for the self-test's and the canary's subscriber
// (allocates: not for the pipeline).
std::string upstream_topic(const config::Config& config, std::string_view topic);

}  // namespace edgegw::gateway
