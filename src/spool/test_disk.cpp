#include "spool/test_disk.hpp"

#include <unistd.h>

#include <cerrno>
#include <thread>

#include "util/parse.hpp"

namespace edgegw::spool {

std::unique_ptr<TestDisk> TestDisk::parse(std::string_view spec, std::string& error) {
  auto disk = std::make_unique<TestDisk>();
  while (!spec.empty()) {
    const std::size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq), value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (key == "sync_delay") {
      auto d = util::parse_duration(value);
      if (!d) {
        error = "sync_delay: not a duration: \"" + std::string(value) + "\"";
        return nullptr;
      }
      disk->m_sync_delay = *d;
    } else if (key == "stall_file" && !value.empty()) {
      disk->m_stall_file = std::string(value);
    } else if (key == "no_room_file" && !value.empty()) {
      disk->m_no_room_file = std::string(value);
    } else {
      error = "unknown setting \"" + std::string(item) + "\" (sync_delay=DURATION, stall_file=PATH, no_room_file=PATH)";
      return nullptr;
    }
  }
  return disk;
}

void TestDisk::before_sync() const {
  if (m_sync_delay.count() > 0) std::this_thread::sleep_for(m_sync_delay);
  while (!m_stall_file.empty() && ::access(m_stall_file.c_str(), F_OK) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int TestDisk::fdatasync(int fd) {
  before_sync();
  return Disk::fdatasync(fd);
}

int TestDisk::fallocate(int fd, off_t len) {
  if (!m_no_room_file.empty() && ::access(m_no_room_file.c_str(), F_OK) == 0) {
    errno = ENOSPC;
    return -1;
  }
  return Disk::fallocate(fd, len);
}

int TestDisk::fsync(int fd) {
  before_sync();
  return Disk::fsync(fd);
}

}  // namespace edgegw::spool
