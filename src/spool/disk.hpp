// Disk: every file operation the spool makes, behind one small interface, so that a test
// can slow the disk down or stall it (test_disk.hpp) and the faults work can fail the Nth
// call. The base class is the real thing: each method is the syscall of the same name
// (fallocate reserves [0, len), which then reads as zeros, and makes the file that long).
// Errors come back as the syscall's: -1 with errno set.
//
// Thread-safety: the spool calls it from the loop thread (recovery, replay reads) and
// from the sync thread (writes, syncs, renames) at once; implementations must allow that.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace edgegw::spool {

class Disk {
 public:
  virtual ~Disk() = default;

  virtual int openat(int dir_fd, const char* name, int flags, mode_t mode);
  virtual ssize_t pread(int fd, void* buf, std::size_t n, off_t off);
  virtual ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t off);
  virtual int fdatasync(int fd);
  virtual int fsync(int fd);
  virtual int fallocate(int fd, off_t len);
  virtual int ftruncate(int fd, off_t len);
  virtual int renameat(int dir_fd, const char* from, const char* to);
  virtual int unlinkat(int dir_fd, const char* name);
};

// The real disk (a process-wide instance; it has no state).
Disk& system_disk();

}  // namespace edgegw::spool
