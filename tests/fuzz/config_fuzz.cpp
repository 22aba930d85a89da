// Fuzzes the configuration parser with arbitrary text, as an operator's typo, a truncated
// copy or a wrong file could give it. It must never crash, and it either returns a Config
// and no error, or nothing and at least one "SOURCE:LINE: key: reason" error. What it
// accepts must keep the rules docs/CONFIG.md gives (checked here for the ones a later
// component would trip on).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

using namespace edgegw::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Copied to an exact-size heap block so that reading past the text is an ASan report.
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> errors;
  const std::optional<Config> cfg = parse(text, "fuzz.toml", errors);
  if (!cfg) {
    if (errors.empty()) std::abort();  // refused without saying why
    for (const std::string& e : errors) {
      if (e.rfind("fuzz.toml:", 0) != 0) std::abort();  // every error names the file
    }
    return 0;
  }
  if (!errors.empty()) std::abort();
  const Config& c = *cfg;
  if (c.gateway.id.empty() || c.gateway.state_dir.empty() || c.ingest.topics.empty()) std::abort();
  if (c.ingest.qos > 2 || c.uplink.qos > 1 || c.uplink.max_inflight == 0) std::abort();
  if (c.pool.slots < c.uplink.max_inflight + 2u || c.spool.max_bytes < 4 * (std::uint64_t{c.pool.slot_bytes} + 36)) {
    std::abort();
  }
  if (c.uplink.topic_prefix.find_first_of("+#") != std::string::npos) std::abort();
  return 0;
}
