// FaultDisk's own rules (tests/support/fault_disk.hpp), which the crash and error sweeps
// stand on: a power cut keeps what was synced and nothing else, tears the last write, and
// takes back the directory changes since the directory's last sync; a failed sync forgets
// what it covered; a disk that lies about syncs keeps nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "support/fault_disk.hpp"
#include "support/temp_dir.hpp"

namespace edgegw::test {
namespace {

class FaultDiskTest : public ::testing::Test {
 protected:
  FaultDiskTest() : m_dir_fd(::open(m_tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}
  ~FaultDiskTest() override {
    for (const int fd : m_fds) ::close(fd);
    ::close(m_dir_fd);
  }

  int open(const char* name) {
    const int fd = m_disk.openat(m_dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << name;
    m_fds.push_back(fd);
    return fd;
  }
  void write(int fd, const std::string& s, off_t at) {
    EXPECT_EQ(m_disk.pwrite(fd, s.data(), s.size(), at), static_cast<ssize_t>(s.size()));
  }
  void sync_dir() { EXPECT_EQ(m_disk.fsync(m_dir_fd), 0); }
  // A file named `name` holding `s`, synced, its name synced into the directory.
  int durable(const char* name, const std::string& s) {
    const int fd = open(name);
    write(fd, s, 0);
    EXPECT_EQ(m_disk.fdatasync(fd), 0);
    sync_dir();
    return fd;
  }
  bool exists(const char* name) const { return ::access(m_tmp.file(name).c_str(), F_OK) == 0; }
  std::string content(const char* name) const { return exists(name) ? read_file(m_tmp.file(name)) : "(none)"; }

  TempDir m_tmp;
  FaultDisk m_disk{m_tmp.path()};
  int m_dir_fd;
  std::vector<int> m_fds;
};

TEST_F(FaultDiskTest, a_power_cut_keeps_what_was_synced_and_drops_every_write_since) {
  const int fd = durable("a", "hello");
  write(fd, "world", 5);
  write(fd, "HE", 0);
  m_disk.power_cut();
  EXPECT_EQ(content("a"), "hello");
}

TEST_F(FaultDiskTest, a_power_cut_tears_the_last_write_after_the_bytes_asked_for) {
  const int fd = durable("a", "hello");
  write(fd, "world", 5);  // an append
  m_disk.power_cut(2);
  EXPECT_EQ(content("a"), "hellowo");

  const int again = open("a");  // (the process that had `fd` died with the power)
  write(again, "HELLO", 0);     // an overwrite
  m_disk.power_cut(3);
  EXPECT_EQ(content("a"), "HELlowo");
}

TEST_F(FaultDiskTest, a_power_cut_undoes_creations_renames_and_removals_the_directory_never_synced) {
  const int a = durable("a", "A");
  durable("b", "B");
  durable("c", "C");
  open("new");                                        // created
  EXPECT_EQ(m_disk.renameat(m_dir_fd, "a", "b"), 0);  // renamed over another
  EXPECT_EQ(m_disk.unlinkat(m_dir_fd, "c"), 0);       // removed
  EXPECT_EQ(m_disk.fdatasync(a), 0);                  // (a file sync is no directory sync)
  m_disk.power_cut();
  EXPECT_FALSE(exists("new"));
  EXPECT_EQ(content("a"), "A");
  EXPECT_EQ(content("b"), "B");
  EXPECT_EQ(content("c"), "C");
}

TEST_F(FaultDiskTest, a_power_cut_keeps_the_directory_changes_a_directory_sync_covered) {
  durable("a", "A");
  durable("c", "C");
  open("new");
  EXPECT_EQ(m_disk.renameat(m_dir_fd, "a", "b"), 0);
  EXPECT_EQ(m_disk.unlinkat(m_dir_fd, "c"), 0);
  sync_dir();
  m_disk.power_cut();
  EXPECT_TRUE(exists("new"));
  EXPECT_FALSE(exists("a"));
  EXPECT_EQ(content("b"), "A");
  EXPECT_FALSE(exists("c"));
}

TEST_F(FaultDiskTest, a_failed_sync_forgets_the_writes_it_covered_and_the_next_sync_succeeds_without_them) {
  const int fd = durable("a", "hello");
  write(fd, "world", 5);
  m_disk.fail_at(m_disk.ops(), EIO);
  EXPECT_EQ(m_disk.fdatasync(fd), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(content("a"), "hello");  // at once, not only after a power cut
  EXPECT_EQ(m_disk.fdatasync(fd), 0);
  m_disk.power_cut();
  EXPECT_EQ(content("a"), "hello");
}

TEST_F(FaultDiskTest, a_disk_that_lies_about_syncs_keeps_nothing_through_a_power_cut) {
  m_disk.lie_about_syncs();
  durable("a", "hello");
  m_disk.power_cut();
  EXPECT_FALSE(exists("a"));
}

}  // namespace
}  // namespace edgegw::test
