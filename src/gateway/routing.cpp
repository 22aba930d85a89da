#include "gateway/routing.hpp"

#include <algorithm>
#include <cstring>

#include "util/log.hpp"

namespace edgegw::gateway {
namespace {
constexpr std::size_t k_max_topic = 65535;  // MQTT's limit on a topic name
}  // namespace

Router::Router(const config::Uplink& uplink, std::uint32_t slot_bytes, std::size_t entries)
    : m_uplink(uplink), m_entries(std::max<std::size_t>(entries, 1)) {
  m_max_growth = uplink.topic_prefix.size();
  m_max_qos = uplink.qos;
  for (const config::UplinkRule& r : uplink.rules) {
    Rule rule{&r, {}, 0};
    if (r.filter.ends_with("#")) rule.hash_level = util::level_count(r.filter);
    m_max_qos = std::max(m_max_qos, r.qos);
    if (r.action == config::UplinkRule::Action::prefix) m_max_growth = std::max(m_max_growth, r.text.size());
    if (r.action == config::UplinkRule::Action::topic) {
      // Each {N} or {#} is part of the local topic, which fits a slot and MQTT's limit.
      const std::size_t level_bound = std::min<std::size_t>(slot_bytes, k_max_topic);
      std::size_t bound = 0;
      util::for_each_template_part(r.text, [&](const util::TemplatePart& p) {
        rule.parts.push_back(p);
        bound += p.kind == util::TemplatePart::literal ? p.text.size() : level_bound;
      });
      bound = std::min(bound, k_max_topic);
      m_buffer_bytes = std::max(m_buffer_bytes, bound);
      m_max_growth = std::max(m_max_growth, bound);
    }
    m_rules.push_back(std::move(rule));
  }
  if (m_buffer_bytes) m_buffers = std::make_unique<char[]>(m_buffer_bytes * m_entries);
}

Route Router::route(std::string_view topic, bool retain, std::uint64_t entry) {
  for (const Rule& rule : m_rules) {
    const config::UplinkRule& r = *rule.config;
    if (!util::topic_matches(r.filter, topic)) continue;
    // A strip rule passes on a topic its text would leave empty, or that it does not start
    // ("sensors/#" with strip "sensors/" matches "sensors"): config.cpp checks the rest do.
    if (r.action == config::UplinkRule::Action::strip && !(topic.size() > r.text.size() && topic.starts_with(r.text)))
      continue;
    Route out{{}, topic, r.qos, retain && !r.strip_retain, retain && r.strip_retain};
    if (out.retain_stripped && !m_strip_logged) {
      m_strip_logged = true;
      EGW_LOG(notice,
              "uplink: the rule at line %zu (filter \"%s\") sends retained messages without the retain flag "
              "(retain = \"strip\"); counted in retain_stripped_by_rule",
              r.line, r.filter.c_str());
    }
    switch (r.action) {
      case config::UplinkRule::Action::prefix: out.prefix = r.text; break;
      case config::UplinkRule::Action::strip: out.topic = topic.substr(r.text.size()); break;
      case config::UplinkRule::Action::topic: {
        char* const buf = m_buffers.get() + (entry % m_entries) * m_buffer_bytes;
        std::size_t n = 0;
        for (const util::TemplatePart& p : rule.parts) {
          std::string_view piece = p.text;
          if (p.kind == util::TemplatePart::level) piece = util::level(topic, p.index);
          else if (p.kind == util::TemplatePart::rest) piece = util::levels_from(topic, rule.hash_level);
          if (piece.size() > m_buffer_bytes - n) {
            out.too_long = true;
            break;
          }
          if (!piece.empty()) std::memcpy(buf + n, piece.data(), piece.size());
          n += piece.size();
        }
        out.topic = out.too_long ? topic : std::string_view(buf, n);
        break;
      }
    }
    return out;
  }
  return Route{m_uplink.topic_prefix, topic, m_uplink.qos, retain, false};
}

std::string upstream_topic(const config::Config& config, std::string_view topic) {
  Router router(config.uplink, config.pool.slot_bytes, 1);
  const Route r = router.route(topic, false, 0);
  return std::string(r.prefix) + std::string(r.topic);
}

}  // namespace edgegw::gateway
