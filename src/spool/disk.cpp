#include "spool/disk.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

namespace edgegw::spool {

int Disk::openat(int dir_fd, const char* name, int flags, mode_t mode) { return ::openat(dir_fd, name, flags, mode); }
ssize_t Disk::pread(int fd, void* buf, std::size_t n, off_t off) { return ::pread(fd, buf, n, off); }
ssize_t Disk::pwrite(int fd, const void* buf, std::size_t n, off_t off) { return ::pwrite(fd, buf, n, off); }
int Disk::fdatasync(int fd) { return ::fdatasync(fd); }
int Disk::fsync(int fd) { return ::fsync(fd); }
int Disk::fallocate(int fd, off_t len) { return ::fallocate(fd, 0, 0, len); }
int Disk::ftruncate(int fd, off_t len) { return ::ftruncate(fd, len); }
int Disk::renameat(int dir_fd, const char* from, const char* to) { return ::renameat(dir_fd, from, dir_fd, to); }
int Disk::unlinkat(int dir_fd, const char* name) { return ::unlinkat(dir_fd, name, 0); }

Disk& system_disk() {
  static Disk disk;
  return disk;
}

}  // namespace edgegw::spool
