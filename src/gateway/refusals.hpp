// Upstream refusals: a PUBACK with a failure reason. Most can pass later (an ACL the
// operator is fixing, a quota that refills), so the record is kept and sent again, in
// order, with backoff; only a reason that says the message itself can never be taken
// drops it. Counted by reason for `status` and the metrics. Loop thread only; no
// allocation.
#pragma once

#include <cstdint>
#include <span>

#include "event/loop.hpp"
#include "mqtt/codec/packets.hpp"
#include "observe/metrics.hpp"

namespace edgegw::gateway {

class Refusals {
 public:
  Refusals();

  // The broker would refuse this message again whatever changed on its side: topic name
  // invalid (0x90), payload format invalid (0x99), packet too large (0x95, also said by
  // our own session when the broker's Maximum Packet Size is smaller); and malformed
  // packet or protocol error, which the session blames on a message the server
  // disconnected us over (Session::blame_oldest_publish).
  static bool for_good(mqtt::Reason reason);

  void count(mqtt::Reason reason);
  std::span<const observe::Snapshot::ReasonCount> counts() const { return m_counts; }

  // How long refused messages wait before they are sent again: 1 s, doubling to 60 s;
  // from 1 s again once one passed.
  event::Duration next_delay();
  void passed() { m_attempt = 0; }

 private:
  observe::Snapshot::ReasonCount m_counts[9];  // the PUBACK reasons of the spec, packet too large, "other"
  unsigned m_attempt = 0;
};

}  // namespace edgegw::gateway
