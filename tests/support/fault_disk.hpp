// FaultDisk: the spool's Disk for fault tests, after RocksDB's FaultInjectionTestFS and
// SQLite's crash-test VFS, written for edgegw. It passes every operation to the real disk
// and numbers it (0, 1, 2, ...), and can:
//  - fail operation N with an errno (EIO, ENOSPC, EROFS, EOPNOTSUPP...), or cut a pwrite
//    short there (half of it written, and the next operation fails with the errno);
//  - crash at operation N: that operation and every later one do nothing and fail with
//    EIO, as for a process that died there. Then either
//      - resume(): the process restarted on the same running kernel, whose page cache still
//        holds what was written (a kill -9), or
//      - power_cut(): the files are put back as a power cut would leave them: writes to a
//        file since its last sync undone (the newest of them torn after `torn_bytes`),
//        creations, renames and deletions since the last sync of the directory undone.
// A failed sync (an injected error) drops the writes it covered at once, as Linux may drop
// dirty pages after a writeback error ("fsyncgate"): a later sync succeeds without them.
// lie_about_syncs() makes it a broken disk, for testing the tests: every sync says it
// succeeded and makes nothing durable, so a power cut takes back everything since the start.
//
// All names are relative to the one directory given (the spool's); the spool opens every
// file there through openat() on that directory. For tests, single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "spool/disk.hpp"

namespace edgegw::test {

class FaultDisk final : public spool::Disk {
 public:
  explicit FaultDisk(std::string dir) : m_dir(std::move(dir)) {}
  ~FaultDisk() override;

  void fail_at(std::uint64_t op, int err, bool short_write = false);
  // Fails the nth operation whose description (as in log()) starts with `what` ("pread
  // 0000000000000001.seg", "fallocate"), or every one of them when nth is 0.
  void fail_on(const std::string& what, int err, int nth = 0) { m_rules.push_back(Rule{what, err, nth, 0}); }
  void crash_at(std::uint64_t op);
  void resume();
  void power_cut(std::size_t torn_bytes = 0);
  void lie_about_syncs() { m_lying = true; }

  std::uint64_t ops() const { return m_ops; }
  bool crashed() const { return m_crashed; }
  // What each operation was, in order ("openat spare", "fdatasync 0000000000000001.seg"...).
  const std::vector<std::string>& log() const { return m_log; }

  int openat(int dir_fd, const char* name, int flags, mode_t mode) override;
  ssize_t pread(int fd, void* buf, std::size_t n, off_t off) override;
  ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t off) override;
  int fdatasync(int fd) override;
  int fsync(int fd) override;
  int fallocate(int fd, off_t len) override;
  int ftruncate(int fd, off_t len) override;
  int renameat(int dir_fd, const char* from, const char* to) override;
  int unlinkat(int dir_fd, const char* name) override;

 private:
  // A change since the last sync that a power cut takes back.
  struct Undo {
    enum class Kind { data, size, create, rename, unlink } kind;
    std::string name;   // the file (data, size), or the name created / renamed to / unlinked
    std::string other;  // rename: the old name; unlink, rename over: the hidden link keeping the file
    std::uint64_t off = 0;
    std::string bytes;       // data: what the range held before; size: what a shrink cut off
    std::uint64_t size = 0;  // data, size: the file's size before
    std::uint64_t len = 0;   // data: how many bytes were written
  };

  // Counts the operation; false if it must fail (errno set), with *short_write for a cut.
  bool admit(const std::string& what, bool* short_write = nullptr);
  std::string name_of(int fd) const;
  std::string path(const std::string& name) const { return m_dir + "/" + name; }
  std::string hide(const std::string& name);  // a hard link to it, for undoing its removal
  void drop_unsynced(const std::string& name);
  void undo_data(const Undo& u);

  std::string m_dir;
  std::uint64_t m_ops = 0;
  std::uint64_t m_fail_op = UINT64_MAX, m_crash_op = UINT64_MAX;
  int m_fail_errno = 0;
  bool m_fail_short = false;
  bool m_crashed = false;
  bool m_lying = false;
  bool m_fail_next = false;  // after a short write
  int m_hidden = 0;
  std::map<int, std::string> m_names;  // open fd -> file name
  std::vector<Undo> m_data;            // per file, in order, since each file's last sync
  std::vector<Undo> m_dir_changes;     // since the last directory sync
  std::vector<std::string> m_log;
  struct Rule {
    std::string what;
    int err, nth, seen;
  };
  std::vector<Rule> m_rules;
};

}  // namespace edgegw::test
