// TestDisk, for test builds only (the edgegw-test-disk binary, unit tests): the real disk,
// made slow or stalled on demand, in-process, so that it works for the static ARM binaries
// under qemu-user too (an LD_PRELOAD shim would not). Described by a spec of comma-separated
// settings, which the edgegw-test-disk build reads from the environment variable
// EDGEGW_TEST_DISK:
//
//   sync_delay=DURATION  every fsync and fdatasync takes this much longer ("20ms")
//   stall_file=PATH      while PATH exists, every fsync and fdatasync waits for it to go
//   no_room_file=PATH    while PATH exists, fallocate says ENOSPC (the disk is full)
//
// Thread-safe: the settings are fixed at construction.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "spool/disk.hpp"

namespace edgegw::spool {

class TestDisk final : public Disk {
 public:
  // nullptr with `error` naming the bad setting.
  static std::unique_ptr<TestDisk> parse(std::string_view spec, std::string& error);

  int fdatasync(int fd) override;
  int fsync(int fd) override;
  int fallocate(int fd, off_t len) override;

 private:
  void before_sync() const;

  std::chrono::nanoseconds m_sync_delay{0};
  std::string m_stall_file;
  std::string m_no_room_file;
};

}  // namespace edgegw::spool
