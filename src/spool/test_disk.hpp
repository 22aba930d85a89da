// TestDisk, for test builds only (the edgegw-test-disk binary, unit tests): the real disk,
// made slow, stalled or failing on demand, in-process, so that it works for the static ARM
// binaries under qemu-user too (an LD_PRELOAD shim would not). Described by a spec of
// comma-separated settings, which the edgegw-test-disk build reads from the environment
// variable EDGEGW_TEST_DISK:
//
//   sync_delay=DURATION  every fsync and fdatasync takes this much longer ("20ms")
//   stall_file=PATH      while PATH exists, every fsync and fdatasync waits for it to go
//   no_room_file=PATH    while PATH exists, fallocate says ENOSPC (the disk is full)
//   fail_file=PATH       while PATH exists, the operations of fail_op fail with fail_errno
//   fail_errno=EIO|EROFS the errno they fail with (EIO when not given)
//   fail_op=all|write|sync  which: writes (pwrite, fallocate, ftruncate, renameat, openat
//                        that creates), syncs (fsync, fdatasync), or both (all, the default)
//
// A sync that fails here drops what was written to that file since its last good sync
// (the bytes read back as zeros, the room they overwrote), as Linux may after a failed
// writeback ("fsyncgate"): so a record acknowledged although its sync failed is really
// gone after a restart, and a test can see it.
//
// Thread-safe: the settings are fixed at construction; the dirty ranges have a mutex.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "spool/disk.hpp"

namespace edgegw::spool {

class TestDisk final : public Disk {
 public:
  // nullptr with `error` naming the bad setting.
  static std::unique_ptr<TestDisk> parse(std::string_view spec, std::string& error);

  int openat(int dir_fd, const char* name, int flags, mode_t mode) override;
  ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t off) override;
  int fdatasync(int fd) override;
  int fsync(int fd) override;
  int fallocate(int fd, off_t len) override;
  int ftruncate(int fd, off_t len) override;
  int renameat(int dir_fd, const char* from, const char* to) override;

 private:
  struct Range {
    int fd;
    off_t off;
    std::size_t len;
  };
  void before_sync() const;
  // -1 with errno = fail_errno while fail_file exists and `sync` (or a write) is in fail_op.
  bool failing(bool sync) const;
  int sync(int fd, bool data_only);

  std::chrono::nanoseconds m_sync_delay{0};
  std::string m_stall_file;
  std::string m_no_room_file;
  std::string m_fail_file;
  int m_fail_errno = 0;
  bool m_fail_writes = true, m_fail_syncs = true;
  std::mutex m_mutex;
  std::vector<Range> m_dirty;  // written since the file's last good sync (with fail_file only)
};

}  // namespace edgegw::spool
