#include "support/fault_disk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace edgegw::test {
namespace {

std::uint64_t size_of(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

bool is_directory(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

// [off, off + n) of the file as it is now (shorter where the file ends).
std::string read_range(int fd, std::uint64_t off, std::uint64_t n) {
  const std::uint64_t size = size_of(fd);
  if (off >= size) return {};
  std::string out(static_cast<std::size_t>(std::min(n, size - off)), '\0');
  const ssize_t got = ::pread(fd, out.data(), out.size(), static_cast<off_t>(off));
  out.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return out;
}

}  // namespace

FaultDisk::~FaultDisk() {
  for (const Undo& u : m_dir_changes) {
    if (!u.bytes.empty()) ::unlink(path(u.bytes).c_str());
  }
}

void FaultDisk::fail_at(std::uint64_t op, int err, bool short_write) {
  m_fail_op = op;
  m_fail_errno = err;
  m_fail_short = short_write;
}

void FaultDisk::crash_at(std::uint64_t op) { m_crash_op = op; }

void FaultDisk::resume() {
  m_crashed = false;
  m_crash_op = m_fail_op = UINT64_MAX;
  m_fail_next = false;
}

bool FaultDisk::admit(const std::string& what, bool* short_write) {
  const std::uint64_t op = m_ops++;
  m_log.push_back(what);
  if (m_crashed || op >= m_crash_op) {
    m_crashed = true;
    errno = EIO;
    return false;
  }
  if (m_fail_next) {
    m_fail_next = false;
    errno = m_fail_errno;
    return false;
  }
  for (Rule& r : m_rules) {
    if (what.rfind(r.what, 0) != 0) continue;
    if (r.nth == 0 || ++r.seen == r.nth) {
      errno = r.err;
      return false;
    }
  }
  if (op != m_fail_op) return true;
  if (m_fail_short && short_write) {
    *short_write = true;
    m_fail_next = true;  // the rest of the write then fails
    return true;
  }
  errno = m_fail_errno;
  return false;
}

std::string FaultDisk::name_of(int fd) const {
  const auto it = m_names.find(fd);
  return it == m_names.end() ? "?" : it->second;
}

std::string FaultDisk::hide(const std::string& name) {
  std::string hidden = ".faultdisk-" + std::to_string(m_hidden++);
  if (::link(path(name).c_str(), path(hidden).c_str()) != 0) return {};
  return hidden;
}

int FaultDisk::openat(int dir_fd, const char* name, int flags, mode_t mode) {
  if (!admit(std::string("openat ") + name)) return -1;
  const bool existed = ::faccessat(dir_fd, name, F_OK, 0) == 0;
  if (existed && (flags & O_TRUNC)) {
    const int old = ::openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (old >= 0) {
      const std::uint64_t size = size_of(old);
      m_data.push_back(Undo{Undo::Kind::size, name, {}, 0, read_range(old, 0, size), size});
      ::close(old);
    }
  }
  const int fd = ::openat(dir_fd, name, flags, mode);
  if (fd < 0) return -1;
  if (!existed && (flags & O_CREAT)) m_dir_changes.push_back(Undo{Undo::Kind::create, name});
  m_names[fd] = name;
  return fd;
}

ssize_t FaultDisk::pread(int fd, void* buf, std::size_t n, off_t off) {
  if (!admit("pread " + name_of(fd))) return -1;
  return ::pread(fd, buf, n, off);
}

ssize_t FaultDisk::pwrite(int fd, const void* buf, std::size_t n, off_t off) {
  bool cut = false;
  if (!admit("pwrite " + name_of(fd), &cut)) return -1;
  if (cut) n = std::max<std::size_t>(1, n / 2);
  const auto at = static_cast<std::uint64_t>(off);
  m_data.push_back(Undo{Undo::Kind::data, name_of(fd), {}, at, read_range(fd, at, n), size_of(fd), n});
  return ::pwrite(fd, buf, n, off);
}

int FaultDisk::fdatasync(int fd) { return fsync(fd); }

int FaultDisk::fsync(int fd) {
  if (is_directory(fd)) {
    if (!admit("fsync directory")) return -1;
    if (m_lying) return 0;
    for (const Undo& u : m_dir_changes) {
      if (!u.bytes.empty()) ::unlink(path(u.bytes).c_str());
    }
    m_dir_changes.clear();
    return ::fsync(fd);
  }
  const std::string name = name_of(fd);
  if (!admit("fdatasync " + name)) {
    if (!m_crashed) drop_unsynced(name);  // the kernel forgot the dirty pages (fsyncgate)
    return -1;
  }
  if (m_lying) return 0;
  std::erase_if(m_data, [&](const Undo& u) { return u.name == name; });
  return ::fdatasync(fd);
}

int FaultDisk::fallocate(int fd, off_t len) {
  if (!admit("fallocate " + name_of(fd))) return -1;
  m_data.push_back(Undo{Undo::Kind::size, name_of(fd), {}, 0, {}, size_of(fd)});
  return Disk::fallocate(fd, len);
}

int FaultDisk::ftruncate(int fd, off_t len) {
  if (!admit("ftruncate " + name_of(fd))) return -1;
  const auto to = static_cast<std::uint64_t>(len);
  const std::uint64_t size = size_of(fd);
  m_data.push_back(Undo{Undo::Kind::size, name_of(fd), {}, to, to < size ? read_range(fd, to, size - to) : "", size});
  return ::ftruncate(fd, len);
}

int FaultDisk::renameat(int dir_fd, const char* from, const char* to) {
  if (!admit(std::string("renameat ") + from + " " + to)) return -1;
  const std::string over = ::faccessat(dir_fd, to, F_OK, 0) == 0 ? hide(to) : "";
  std::erase_if(m_data, [&](const Undo& u) { return u.name == to; });  // the file renamed over
  if (::renameat(dir_fd, from, dir_fd, to) != 0) return -1;
  m_dir_changes.push_back(Undo{Undo::Kind::rename, to, from, 0, over});
  for (Undo& u : m_data) {
    if (u.name == from) u.name = to;
  }
  for (auto& [fd, name] : m_names) {
    if (name == from) name = to;
  }
  return 0;
}

int FaultDisk::unlinkat(int dir_fd, const char* name) {
  if (!admit(std::string("unlinkat ") + name)) return -1;
  const std::string kept = ::faccessat(dir_fd, name, F_OK, 0) == 0 ? hide(name) : "";
  if (::unlinkat(dir_fd, name, 0) != 0) return -1;
  m_dir_changes.push_back(Undo{Undo::Kind::unlink, name, {}, 0, kept});
  return 0;
}

void FaultDisk::undo_data(const Undo& u) {
  const int fd = ::open(path(u.name).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;  // gone (its creation is undone too, or it was removed)
  if (u.kind == Undo::Kind::data) {
    if (!u.bytes.empty()) ::pwrite(fd, u.bytes.data(), u.bytes.size(), static_cast<off_t>(u.off));
    if (size_of(fd) > u.size) ::ftruncate(fd, static_cast<off_t>(u.size));
  } else {
    ::ftruncate(fd, static_cast<off_t>(u.size));
    if (!u.bytes.empty()) ::pwrite(fd, u.bytes.data(), u.bytes.size(), static_cast<off_t>(u.off));
  }
  ::close(fd);
}

void FaultDisk::drop_unsynced(const std::string& name) {
  for (auto it = m_data.rbegin(); it != m_data.rend(); ++it) {
    if (it->name == name) undo_data(*it);
  }
  std::erase_if(m_data, [&](const Undo& u) { return u.name == name; });
}

void FaultDisk::power_cut(std::size_t torn_bytes) {
  // The newest write may have reached the disk in part: its first torn_bytes stay.
  if (!m_data.empty() && m_data.back().kind == Undo::Kind::data && torn_bytes > 0) {
    Undo& last = m_data.back();  // (bytes: what was there before; shorter where it appended)
    const std::uint64_t keep = std::min<std::uint64_t>(torn_bytes, last.len);
    last.bytes.erase(0, std::min<std::size_t>(keep, last.bytes.size()));
    last.off += keep;
    last.len -= keep;
    last.size = std::max<std::uint64_t>(last.size, last.off);
  }
  for (auto it = m_data.rbegin(); it != m_data.rend(); ++it) undo_data(*it);
  for (auto it = m_dir_changes.rbegin(); it != m_dir_changes.rend(); ++it) {
    switch (it->kind) {
      case Undo::Kind::create: ::unlink(path(it->name).c_str()); break;
      case Undo::Kind::rename:
        ::rename(path(it->name).c_str(), path(it->other).c_str());
        if (!it->bytes.empty()) ::rename(path(it->bytes).c_str(), path(it->name).c_str());
        break;
      case Undo::Kind::unlink:
        if (!it->bytes.empty()) ::rename(path(it->bytes).c_str(), path(it->name).c_str());
        break;
      default: break;
    }
  }
  m_data.clear();
  m_dir_changes.clear();
  m_names.clear();
  resume();
}

}  // namespace edgegw::test
