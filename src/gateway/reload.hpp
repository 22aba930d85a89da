// Reload (SIGHUP, `systemctl reload edgegw`): the files behind the sessions are read again,
// the TLS CA, certificate and key files and the password files, all or nothing: one that
// cannot be used (unreadable, not PEM, a key that does not match its certificate or that
// others can read) is logged with its key and file, and everything in use is kept. A
// session whose files changed ends its connection cleanly (DISCONNECT) and connects again
// at once with them; its unacknowledged window is resent with the same seq, as after any
// reconnect. A session whose files did not change keeps its connection. The configuration
// file is not read again: its settings take effect at a restart (the log says so when the
// file changed). Gateway::reload() is defined in reload.cpp.
#pragma once

#include <time.h>

#include <cstdint>
#include <string>

#include "config/config.hpp"

namespace edgegw::gateway {

struct Reloads {
  explicit Reloads(const config::Config& config);
  std::uint64_t done = 0;     // reloads that read every file (whether anything changed or not)
  std::uint64_t failed = 0;   // reloads refused for a bad file (the material in use kept)
  char last_error[320] = "";  // why the last reload was refused; "" after one that worked
  std::string password[2];    // in use: ingest, uplink
  timespec config_mtime{};    // of the configuration file at the start
};

}  // namespace edgegw::gateway
