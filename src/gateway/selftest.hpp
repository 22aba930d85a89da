// `edgegw selftest`: a one-shot measurement on the board, against the latency budgets of
// its board profile (or [selftest] in the config).
//
//  1. intrinsic latency: how late the kernel wakes a thread that sleeps 1 ms (scheduler
//     jitter), the floor under every other figure;
//  2. fsync latency: one batch (ingest.receive_maximum records of 256 bytes) appended and
//     fdatasynced, 200 times, in the state directory (the spool's filesystem);
//  3. end to end through the running daemon: probes published to the local broker on
//     selftest.probe_topic, received back from the upstream broker (uplink.topic_prefix +
//     the topic) by a subscriber of edgegw's own; plus the daemon's own stage histograms
//     from its control socket. If the upstream broker refuses the subscription, the
//     daemon's stages up to the upstream acknowledgement are reported, and it says so.
//
// Verdict: 0 within budget, 1 over budget (naming the stage and the figure), 2 could not
// run (naming why). With enforce off, the figures are reported and the exit is 0 unless
// it could not run (emulated boards, whose times are not the board's).
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "event/loop.hpp"
#include "gateway/link.hpp"
#include "mem/pool.hpp"
#include "mqtt/session.hpp"

namespace edgegw::gateway {

struct SelftestOptions {
  bool json = false;
  bool enforce = true;
};

int run_selftest(const config::Config& config, const SelftestOptions& options);

// The two sessions probes travel between: a publisher on the local broker and a
// subscriber to uplink.topic_prefix + `topic` on the upstream broker, both edgegw's own
// engine, named edgegw-<id>-<name>-pub / -sub. Used by selftest and the canary.
struct ProbeSessions {
  Link pub_link, sub_link;
  std::unique_ptr<mem::Pool> pool;  // for the subscriber's messages
  std::unique_ptr<mqtt::Session> pub, sub;

  // Creates and starts both; false with `error` (a bad TLS file, say).
  bool start(event::Loop& loop, const config::Config& config, const std::string& topic, const char* name,
             std::uint16_t window, mqtt::SessionHandler& publisher, mqtt::SessionHandler& subscriber,
             std::string& error);
  void stop();
};

// Where probes go: selftest.probe_topic, else the fixed levels of the first wildcard
// ingest filter + "edgegw-selftest" ("sensors/#" -> "sensors/edgegw-selftest"); "" if
// there is none.
std::string probe_topic(const config::Config& config);

}  // namespace edgegw::gateway
