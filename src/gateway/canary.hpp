// The in-service canary: every selftest.canary_interval one probe goes the way the
// sensors' messages go (published to the local broker, through the daemon's pipeline,
// received back from the upstream broker by a subscriber of the daemon's own), so live
// end-to-end latency is known without load from outside. Its own two sessions; fixed
// memory; event loop thread only. Canary probes count in the daemon's counters like any
// message.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "event/loop.hpp"
#include "gateway/selftest.hpp"
#include "observe/histogram.hpp"

namespace edgegw::gateway {

class Canary final : private mqtt::SessionHandler, private event::Timer::Handler {
 public:
  Canary(event::Loop& loop, const config::Config& config);
  ~Canary();
  // Connects both sessions and starts the probes; false with `error` when it cannot.
  bool start(std::string& error);
  void stop();

  const observe::Histogram& latency() const { return m_latency; }
  std::uint64_t sent() const { return m_sent; }
  std::uint64_t received() const { return m_received; }

 private:
  struct Publisher final : mqtt::SessionHandler {
    void on_connected(bool) override {}
    void on_disconnected(const mqtt::DisconnectInfo&) override {}
    void on_message(const mqtt::Message&, mqtt::AckToken) override {}
  };

  void on_timer(event::Timer& timer) override;
  void on_connected(bool) override {}
  void on_disconnected(const mqtt::DisconnectInfo&) override {}
  void on_message(const mqtt::Message& m, mqtt::AckToken token) override;

  event::Loop& m_loop;
  const config::Config& m_config;
  std::string m_topic;
  Publisher m_publisher;
  ProbeSessions m_sessions;
  event::Timer m_timer;
  observe::Histogram m_latency;
  std::uint32_t m_run = 0;
  std::uint64_t m_sent = 0, m_received = 0;
  char m_payload[96] = "";
};

}  // namespace edgegw::gateway
