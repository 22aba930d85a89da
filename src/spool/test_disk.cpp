#include "spool/test_disk.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
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
    } else if (key == "fail_file" && !value.empty()) {
      disk->m_fail_file = std::string(value);
    } else if (key == "fail_errno" && (value == "EIO" || value == "EROFS")) {
      disk->m_fail_errno = value == "EIO" ? EIO : EROFS;
    } else if (key == "fail_op" && (value == "all" || value == "write" || value == "sync")) {
      disk->m_fail_writes = value != "sync";
      disk->m_fail_syncs = value != "write";
    } else {
      error = "unknown setting \"" + std::string(item) +
              "\" (sync_delay=DURATION, stall_file=PATH, no_room_file=PATH, fail_file=PATH, fail_errno=EIO|EROFS, "
              "fail_op=all|write|sync)";
      return nullptr;
    }
  }
  if (disk->m_fail_errno == 0) disk->m_fail_errno = EIO;
  return disk;
}

void TestDisk::before_sync() const {
  if (m_sync_delay.count() > 0) std::this_thread::sleep_for(m_sync_delay);
  while (!m_stall_file.empty() && ::access(m_stall_file.c_str(), F_OK) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool TestDisk::failing(bool sync) const {
  if (m_fail_file.empty() || !(sync ? m_fail_syncs : m_fail_writes) || ::access(m_fail_file.c_str(), F_OK) != 0) {
    return false;
  }
  errno = m_fail_errno;
  return true;
}

int TestDisk::openat(int dir_fd, const char* name, int flags, mode_t mode) {
  if ((flags & O_CREAT) && failing(false)) return -1;
  return Disk::openat(dir_fd, name, flags, mode);
}

ssize_t TestDisk::pwrite(int fd, const void* buf, std::size_t n, off_t off) {
  if (failing(false)) return -1;
  const ssize_t w = Disk::pwrite(fd, buf, n, off);
  if (w > 0 && !m_fail_file.empty()) {
    std::lock_guard lock(m_mutex);
    m_dirty.push_back(Range{fd, off, static_cast<std::size_t>(w)});
  }
  return w;
}

// A failed sync: the file's writes since its last good sync are gone (zeros again); a
// good one: they are on the disk for good.
int TestDisk::sync(int fd, bool data_only) {
  before_sync();
  const bool fail = failing(true);
  const int err = errno;
  std::lock_guard lock(m_mutex);
  for (const Range& r : m_dirty) {
    if (r.fd != fd || !fail) continue;
    static const char zeros[4096] = {};
    for (std::size_t done = 0; done < r.len;) {
      const std::size_t n = std::min(sizeof zeros, r.len - done);
      if (Disk::pwrite(fd, zeros, n, r.off + static_cast<off_t>(done)) <= 0) break;
      done += n;
    }
  }
  std::erase_if(m_dirty, [fd](const Range& r) { return r.fd == fd; });
  if (fail) {
    errno = err;
    return -1;
  }
  return data_only ? Disk::fdatasync(fd) : Disk::fsync(fd);
}

int TestDisk::fdatasync(int fd) { return sync(fd, true); }

int TestDisk::fsync(int fd) { return sync(fd, false); }

int TestDisk::fallocate(int fd, off_t len) {
  if (failing(false)) return -1;
  if (!m_no_room_file.empty() && ::access(m_no_room_file.c_str(), F_OK) == 0) {
    errno = ENOSPC;
    return -1;
  }
  return Disk::fallocate(fd, len);
}

int TestDisk::ftruncate(int fd, off_t len) { return failing(false) ? -1 : Disk::ftruncate(fd, len); }

int TestDisk::renameat(int dir_fd, const char* from, const char* to) {
  return failing(false) ? -1 : Disk::renameat(dir_fd, from, to);
}

}  // namespace edgegw::spool
