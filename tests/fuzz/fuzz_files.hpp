// Files for the spool harnesses: a private work directory (on tmpfs where there is one:
// thousands of runs a second write and delete there), whole-file writes, and clearing.
#pragma once

#include <ftw.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "util/log.hpp"

namespace edgegw::fuzz {

// Made once per process; the spool's log is silenced with it (damage is logged, loudly).
inline const std::string& work_dir(const char* name) {
  static const std::string dir = [name] {
    std::string tmpl = (::access("/dev/shm", W_OK) == 0 ? "/dev/shm/" : "/tmp/") + std::string(name) + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    util::set_log_level(util::Level::silent);
    return tmpl;
  }();
  return dir;
}

inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

// Removes `dir` and everything in it.
inline void remove_tree(const std::string& dir) {
  ::nftw(
      dir.c_str(), [](const char* p, const struct stat*, int, FTW*) { return ::remove(p); }, 16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace edgegw::fuzz
