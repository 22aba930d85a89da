// mosquitto_pub / mosquitto_sub (libmosquitto's own clients) as the independent peers of
// the engine under test.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "support/broker.hpp"
#include "support/process.hpp"

namespace edgegw::test {

inline std::vector<std::string> with_broker(const Broker& b, std::vector<std::string> args) {
  std::vector<std::string> out = {args[0]};
  for (const std::string& a : b.client_args()) out.push_back(a);
  out.insert(out.end(), args.begin() + 1, args.end());
  return out;
}

// Publishes one message and waits for mosquitto_pub to finish.
inline void publish(const Broker& b, const std::string& topic, const std::string& payload, int qos,
                    bool retain = false) {
  std::vector<std::string> args = {"mosquitto_pub", "-t", topic, "-m", payload, "-q", std::to_string(qos)};
  if (retain) args.push_back("-r");
  std::string out;
  ASSERT_EQ(run(with_broker(b, args), &out), 0) << out;
}

// Starts publishing `count` lines ("0".."count-1") as separate messages, in order. One
// mosquitto_pub -l run per 5,000 lines: a single run of 100,000 QoS 1 lines gets itself
// disconnected by mosquitto 2.0.11 ("out of memory") and still exits 0. The shell stops
// at the first failing run, so the exit code tells.
inline Process publish_lines(const Broker& b, const TempDir& dir, const std::string& topic, int count, int qos) {
  constexpr int k_chunk = 5000;
  std::string script = "set -e\n";
  for (int start = 0; start < count; start += k_chunk) {
    std::string path = dir.file("lines-" + std::to_string(start));
    std::ofstream f(path);
    for (int i = start; i < std::min(count, start + k_chunk); ++i) f << i << '\n';
    std::string cmd;
    for (const std::string& a : with_broker(b, {"mosquitto_pub", "-t", topic, "-q", std::to_string(qos), "-l"}))
      cmd += a + " ";
    script += cmd + "< " + path + "\n";
  }
  return Process({"sh", "-c", script});
}

// Starts publishing "first".."first+count-1" on `topic` at about `rate` messages/s (0:
// flat out), in order, through one mosquitto_pub -l connection. bash, for pipefail: the
// exit code is mosquitto_pub's.
// `burst` messages go out together, then a pause.
inline Process publish_stream_to(const std::vector<std::string>& client_args, const std::string& topic, long count,
                                 int rate, int qos, long first = 0, int burst = 20) {
  std::string awk = "awk -v f=" + std::to_string(first) + " -v n=" + std::to_string(count) +
                    " -v r=" + std::to_string(rate) + " -v b=" + std::to_string(burst) +
                    " 'BEGIN { for (i = 0; i < n; i++) { print f + i; fflush(); "
                    "if (r > 0 && i % b == b - 1) system(\"sleep \" b / r) } }'";
  std::string pub;
  for (const std::string& a : client_args) pub += a + " ";
  return Process(
      {"bash", "-c",
       "set -o pipefail; " + awk + " | mosquitto_pub " + pub + "-t " + topic + " -q " + std::to_string(qos) + " -l"});
}
inline Process publish_stream(const Broker& b, const std::string& topic, long count, int rate, int qos, long first = 0,
                              int burst = 20) {
  return publish_stream_to(b.client_args(), topic, count, rate, qos, first, burst);
}

}  // namespace edgegw::test
