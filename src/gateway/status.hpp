// What the gateway shows of itself: the one-line summary (systemd's STATUS=, the logs)
// and the snapshot that `edgegw status` and the metrics file render. Gateway::summary()
// and Gateway::snapshot() are defined in status.cpp, next to the rendering.
#pragma once

#include <cstddef>

#include "observe/metrics.hpp"

namespace edgegw::gateway {

// `s` as `edgegw status` answers it: JSON or text, into buf[0, cap); the length written.
std::size_t render_status(const observe::Snapshot& s, bool json, char* buf, std::size_t cap);

}  // namespace edgegw::gateway
