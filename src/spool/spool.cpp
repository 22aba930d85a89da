#include "spool/spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "util/log.hpp"

namespace edgegw::spool {
namespace {

constexpr std::size_t k_read_buffer = std::size_t{64} << 10;
constexpr const char* k_cursor = "ack";
constexpr const char* k_cursor_tmp = "ack.tmp";
constexpr const char* k_spare = "spare";  // the next segment's file, renamed when it is used

// "0000000000000001.seg" -> 1; 0 for any other name.
std::uint64_t parse_segment_name(const char* name) {
  if (std::strlen(name) != 20 || std::strcmp(name + 16, ".seg") != 0) return 0;
  std::uint64_t v = 0;
  for (int i = 0; i < 16; ++i) {
    char c = name[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return 0;
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

bool write_all(Disk& disk, int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off) {
  while (n > 0) {
    ssize_t w = disk.pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return false;
    }
    p += w, n -= static_cast<std::size_t>(w), off += static_cast<std::uint64_t>(w);
  }
  return true;
}

// Reserves [0, len) of fd, so that writes there never find the disk full: fallocate, or
// zeros written where the filesystem has no fallocate. 0, or the errno (ENOSPC and EDQUOT
// mean no room; anything else is an I/O failure).
int reserve(Disk& disk, int fd, std::uint64_t len) {
  if (disk.fallocate(fd, static_cast<off_t>(len)) == 0) return 0;
  if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS) return errno;
  // Never written, so all zeros; not const, so in .bss rather than 16 KiB of the binary.
  static std::uint8_t zeros[16 * 1024];
  for (std::uint64_t off = 0; off < len;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof zeros, len - off));
    if (!write_all(disk, fd, zeros, n, off)) return errno;
    off += n;
  }
  return 0;
}

bool no_room(int err) { return err == ENOSPC || err == EDQUOT; }

// The "ack" file in its two-slot form, both slots holding `acked`: ack.tmp written,
// fdatasynced, renamed over "ack", the directory fsynced. Its fd for in-place writes, or
// -1 with errno.
int write_cursor_file(Disk& disk, int dir_fd, std::uint64_t acked, bool sync, std::uint64_t* fsyncs) {
  std::uint8_t buf[format::k_cursor_file_size] = {};
  format::encode_cursor(buf, acked);
  format::encode_cursor(buf + format::k_cursor_slot_stride, acked);
  util::Fd tmp(disk.openat(dir_fd, k_cursor_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  const bool ok = tmp && write_all(disk, tmp.get(), buf, sizeof buf, 0) && (!sync || disk.fdatasync(tmp.get()) == 0) &&
                  disk.renameat(dir_fd, k_cursor_tmp, k_cursor) == 0 && (!sync || disk.fsync(dir_fd) == 0);
  if (sync) *fsyncs += 2;
  if (!ok) {
    const int err = errno;
    disk.unlinkat(dir_fd, k_cursor_tmp);
    errno = err;
    return -1;
  }
  return disk.openat(dir_fd, k_cursor, O_RDWR | O_CLOEXEC, 0);
}

// fsyncs the directory `path` (after an entry was made in it).
bool sync_directory(Disk& disk, const std::string& path) {
  util::Fd fd(::open(path.empty() ? "/" : path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd && disk.fsync(fd.get()) == 0;
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace

Spool::SegmentName::SegmentName(std::uint64_t first_seq) {
  std::snprintf(text, sizeof text, "%016" PRIx64 ".seg", first_seq);
}

// ---- the job: runs on the sync thread ---------------------------------------------------

void Job::reset() {
  m_len = 0;
  m_n_extents = 0;
  m_rotate = false;
  m_last_seq = 0;
  m_mark_seq = 0;
  m_make_spare = false;
  m_write_cursor = false;
  m_unlinks.clear();
  m_spare_fd = -1;
  m_spare_no_space = false;
  m_new_cursor_fd = -1;
  m_cursor_done = false;
  m_failed_what = nullptr;
  m_failed_errno = 0;
  m_fsyncs = m_bytes_written = 0;
}

void Job::fail(const char* what, const char* file) {
  m_failed_what = what;
  m_failed_errno = errno;
  std::snprintf(m_failed_file, sizeof m_failed_file, "%s", file);
}

bool Job::write(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off) {
  if (!write_all(*m_disk, fd, p, n, off)) return false;
  m_bytes_written += n;
  return true;
}

bool Job::sync(int fd, bool data_only) {
  ++m_fsyncs;
  return (data_only ? m_disk->fdatasync(fd) : m_disk->fsync(fd)) == 0;
}

// Records first (their local acknowledgements wait for them), then the housekeeping.
// Stops at the first error: nothing after it is trusted.
void Job::run() {
  for (int i = 0; i < m_n_extents; ++i) {
    const Extent& e = m_extents[i];
    if (!write(e.fd, m_buf.get() + e.buf_off, e.len, e.file_off)) {
      return fail("writing records", Spool::SegmentName(e.segment).text);
    }
  }
  if (m_rotate) {
    const Spool::SegmentName name(m_extents[m_n_extents - 1].segment);
    if (m_disk->renameat(m_dir_fd, k_spare, name.text) != 0) return fail("renaming \"spare\" to it", name.text);
  }
  if (m_sync) {
    for (int i = 0; i < m_n_extents; ++i) {
      if (!sync(m_extents[i].fd, true))
        return fail("fdatasync of records", Spool::SegmentName(m_extents[i].segment).text);
    }
    // A new segment's name must survive a crash before anything in it is acknowledged.
    if (m_rotate && !sync(m_dir_fd, false)) return fail("fsync of the directory", ".");
  }
  // A segment whose deletion is lost to a crash is found, and deleted, by recovery.
  for (std::uint64_t first : m_unlinks) m_disk->unlinkat(m_dir_fd, Spool::SegmentName(first).text);
  if (m_write_cursor && m_cursor_fd < 0) {  // the file could not be made at start: now
    const int made = write_cursor_file(*m_disk, m_dir_fd, m_cursor_seq, m_sync, &m_fsyncs);
    if (made < 0 && !no_room(errno)) return fail("making the file (ack.tmp written, synced, renamed)", k_cursor);
    m_new_cursor_fd = made;  // (no room yet: tried again next time)
    m_cursor_done = made >= 0;
  } else if (m_write_cursor) {
    std::uint8_t slot[format::k_cursor_size];
    format::encode_cursor(slot, m_cursor_seq);
    if (!write(m_cursor_fd, slot, sizeof slot, m_cursor_off))
      return fail("writing the acknowledged position", k_cursor);
    if (m_sync && !sync(m_cursor_fd, true)) return fail("fdatasync of the acknowledged position", k_cursor);
    m_cursor_done = true;
  }
  if (m_make_spare) {
    const int fd = m_disk->openat(m_dir_fd, k_spare, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return fail("creating the next segment's file", k_spare);
    // Its blocks are reserved now, so that a full disk shows here (as a full spool) and
    // not as a failed write of records later.
    const int err = reserve(*m_disk, fd, m_spare_bytes);
    if (err == 0) {
      m_spare_fd = fd;
    } else {
      ::close(fd);
      m_disk->unlinkat(m_dir_fd, k_spare);
      errno = err;
      if (!no_room(err)) return fail("reserving the next segment's room (fallocate)", k_spare);
      m_spare_no_space = true;
    }
  }
}

// ---- the spool: the loop thread ------------------------------------------------------

Spool::Spool(Options options)
    : m_options(std::move(options)), m_disk(m_options.disk ? *m_options.disk : system_disk()) {
  m_segment_bytes = m_options.segment_bytes;
  if (m_segment_bytes == 0)
    m_segment_bytes =
        std::clamp<std::uint64_t>(m_options.max_bytes / 16, std::uint64_t{64} << 10, std::uint64_t{16} << 20);
  m_segment_bytes = std::min(m_segment_bytes, m_options.max_bytes);
}

Spool::~Spool() = default;

// `what` names the file and the operation; the errno is given by its text and its name
// ("Input/output error (EIO)"), so that the operator can tell EIO from EROFS at a glance.
bool Spool::fail(const std::string& what, int err) {
  if (!m_failed) {
    m_failed = true;
    const char* name = ::strerrorname_np(err);
    m_error = what + ": " + std::strerror(err) + " (" + (name ? name : std::to_string(err)) + ")";
    EGW_LOG(error, "spool: %s; nothing more is acknowledged", m_error.c_str());
  }
  return false;
}

std::string Spool::segment_path(std::uint64_t first_seq) const {
  return m_options.dir + "/" + SegmentName(first_seq).text;
}

std::uint64_t Spool::segment_end_seq(std::size_t index) const {
  return index + 1 < m_segments.size() ? m_segments[index + 1].first_seq : m_next_seq;
}

Spool::Segment* Spool::find_segment(std::uint64_t first_seq) {
  for (std::size_t i = m_segments.size(); i-- > 0;) {
    if (m_segments[i].first_seq == first_seq) return &m_segments[i];
  }
  return nullptr;
}

bool Spool::open(std::string& error) {
  const auto started = now_ns();
  const std::string& dir = m_options.dir;
  // The state directory and the spool directory under it (mkdir -p for the last two
  // levels), each made durable in its parent.
  const auto parent_of = [](const std::string& path) { return path.substr(0, path.find_last_of('/')); };
  const std::string parent = parent_of(dir);
  for (const std::string& d : {parent, dir}) {
    if (d.empty()) continue;
    if (::mkdir(d.c_str(), 0750) == 0) {
      if (m_options.sync && !sync_directory(m_disk, parent_of(d))) {
        error = parent_of(d) + ": cannot sync after creating " + d + ": " + std::strerror(errno);
        return false;
      }
    } else if (errno != EEXIST) {
      error = d + ": cannot create the " + (d == dir ? "spool" : "state") + " directory: " + std::strerror(errno);
      return false;
    }
  }
  m_dir_fd.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!m_dir_fd) {
    error = dir + ": cannot open: " + std::strerror(errno);
    return false;
  }
  if (::faccessat(m_dir_fd.get(), ".", W_OK, AT_EACCESS) != 0) {
    error = dir + ": not writable: " + std::strerror(errno);
    return false;
  }
  m_lock_fd.reset(m_disk.openat(m_dir_fd.get(), "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (!m_lock_fd) {
    error = dir + "/lock: cannot create: " + std::strerror(errno);
    return false;
  }
  if (::flock(m_lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    error = dir + ": in use by another edgegw process (" + std::strerror(errno) + ")";
    return false;
  }
  m_rbuf_cap = k_read_buffer;
  m_rbuf = std::make_unique<std::uint8_t[]>(m_rbuf_cap);
  if (!recover(error) || !make_cursor_file(error) || !make_spare(error)) return false;
  setup_jobs();
  m_stats.recovery_ns = now_ns() - started;
  m_stats.recovery_bytes_read = m_stats.bytes_read;
  return true;
}

void Spool::setup_jobs() {
  m_unlinks.reserve(m_segments.capacity());
  for (Job& job : m_jobs) {
    job.m_disk = &m_disk;
    job.m_dir_fd = m_dir_fd.get();
    job.m_cursor_fd = m_cursor_fd.get();
    job.m_sync = m_options.sync;
    job.m_spare_bytes = m_segment_bytes;
    job.m_cap = m_options.batch_bytes;
    job.m_buf = std::make_unique<std::uint8_t[]>(job.m_cap);
    job.m_unlinks.reserve(m_segments.capacity());
    job.reset();
  }
}

bool Spool::open_segment_files(std::string& error) {
  DIR* d = ::fdopendir(::dup(m_dir_fd.get()));
  if (!d) {
    error = m_options.dir + ": cannot list: " + std::strerror(errno);
    return false;
  }
  std::vector<std::uint64_t> firsts;
  // readdir() returns nullptr both at the end and on an error: only errno tells them
  // apart. Taking an error for the end would hide the whole spool.
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    if (std::uint64_t first = parse_segment_name(e->d_name)) firsts.push_back(first);
    errno = 0;
  }
  const int list_errno = errno;
  ::closedir(d);
  if (list_errno != 0) {
    error = m_options.dir + ": cannot list: " + std::strerror(list_errno);
    return false;
  }
  std::sort(firsts.begin(), firsts.end());
  m_segments.reserve(firsts.size() + 2 * (m_options.max_bytes / m_segment_bytes) + 8);
  for (std::uint64_t first : firsts) {
    Segment seg;
    seg.first_seq = first;
    seg.fd.reset(m_disk.openat(m_dir_fd.get(), SegmentName(first).text, O_RDWR | O_CLOEXEC, 0));
    struct stat st;
    if (!seg.fd || ::fstat(seg.fd.get(), &st) != 0) {
      error = segment_path(first) + ": cannot open: " + std::strerror(errno);
      return false;
    }
    seg.size = static_cast<std::uint64_t>(st.st_size);
    std::uint8_t header[format::k_segment_header];
    const ssize_t got = seg.size >= sizeof header ? m_disk.pread(seg.fd.get(), header, sizeof header, 0) : 0;
    if (got < 0) {
      error = segment_path(first) + ": cannot read: " + std::strerror(errno);
      return false;
    }
    const std::uint64_t said = got == sizeof header ? format::decode_segment_header(header) : 0;
    // The header, not the name, says which records the file holds (a file renamed by
    // hand would otherwise be deleted as acknowledged, or read in the wrong place).
    if (said != 0 && said != first) {
      const SegmentName right(said);
      if (::faccessat(m_dir_fd.get(), right.text, F_OK, 0) == 0 ||
          m_disk.renameat(m_dir_fd.get(), SegmentName(first).text, right.text) != 0) {
        error = segment_path(first) + ": its header says it starts at " + std::to_string(said) +
                ", and it cannot be renamed to " + right.text;
        return false;
      }
      EGW_LOG(warning, "spool: %s: its header says it starts at %" PRIu64 "; renamed to %s",
              segment_path(first).c_str(), said, right.text);
      seg.first_seq = said;
      m_renamed = true;
    }
    seg.header_ok = said != 0;
    if (!seg.header_ok) {
      EGW_LOG(warning, "spool: %s: damaged segment header; its records are checked one by one",
              segment_path(first).c_str());
      seg.size = std::max<std::uint64_t>(seg.size, format::k_segment_header);
    }
    seg.written = seg.size;
    m_bytes += seg.size;
    m_segments.push_back(std::move(seg));
  }
  std::sort(m_segments.begin(), m_segments.end(),
            [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });
  return true;
}

// The acknowledged position. Missing: nothing acknowledged yet. Damaged: resend it all
// (duplicates, never losses).
bool Spool::read_cursor(std::string& error) {
  util::Fd cursor(m_disk.openat(m_dir_fd.get(), k_cursor, O_RDONLY | O_CLOEXEC, 0));
  if (!cursor) {
    if (errno == ENOENT) return true;
    error = m_options.dir + "/" + k_cursor + ": cannot read: " + std::strerror(errno);
    return false;
  }
  std::uint8_t buf[format::k_cursor_file_size + 1];
  const ssize_t n = m_disk.pread(cursor.get(), buf, sizeof buf, 0);
  const std::span<const std::uint8_t> got(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  std::uint64_t slot[2] = {0, 0};
  bool valid[2] = {false, false};
  if (got.size() == format::k_cursor_size) {  // the one-slot form of earlier versions
    valid[0] = format::decode_cursor(got, slot[0]);
  } else if (got.size() == format::k_cursor_file_size) {
    valid[0] = format::decode_cursor(got.first(format::k_cursor_size), slot[0]);
    valid[1] = format::decode_cursor(got.subspan(format::k_cursor_slot_stride), slot[1]);
  }
  if (!valid[0] && !valid[1]) {
    EGW_LOG(warning, "spool: %s/%s is damaged; every record in the spool will be sent again", m_options.dir.c_str(),
            k_cursor);
    return true;
  }
  const int newer = valid[1] && (!valid[0] || slot[1] > slot[0]) ? 1 : 0;
  m_acked = slot[newer];
  // In place from now on, always over the older slot (a torn write leaves the newer one).
  m_cursor_current = got.size() == format::k_cursor_file_size && valid[newer];
  m_cursor_off = newer == 0 ? format::k_cursor_slot_stride : 0;
  return true;
}

// The "ack" file in its two-slot form, both slots holding the recovered position; made once
// (write ack.tmp, fdatasync, rename, fsync the directory) when it is missing, damaged or
// of the one-slot form. Its fd stays open for the in-place writes.
// A full disk is no reason not to start (the records say the rest): without a file, the
// position waits for ack marks, and the file is made by a later job.
bool Spool::make_cursor_file(std::string& error) {
  if (m_cursor_current) {
    m_cursor_fd.reset(m_disk.openat(m_dir_fd.get(), k_cursor, O_RDWR | O_CLOEXEC, 0));
  } else {
    m_cursor_fd.reset(write_cursor_file(m_disk, m_dir_fd.get(), m_acked, m_options.sync, &m_stats.fsyncs));
    m_cursor_off = format::k_cursor_slot_stride;
  }
  if (!m_cursor_fd && no_room(errno)) {
    EGW_LOG(warning, "spool: %s/%s: no room to write it (%s); made when there is", m_options.dir.c_str(), k_cursor,
            std::strerror(errno));
    return true;
  }
  if (!m_cursor_fd) {
    error = m_options.dir + "/" + k_cursor + ": cannot write: " + std::strerror(errno);
    return false;
  }
  m_cursor_current = true;
  return true;
}

// The file the next segment will be: created now, its blocks reserved. A full disk is
// not an error here: appends that need a new segment answer full until space returns.
bool Spool::make_spare(std::string& error) {
  m_disk.unlinkat(m_dir_fd.get(), k_spare);
  m_spare.reset(m_disk.openat(m_dir_fd.get(), k_spare, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!m_spare) {
    error = m_options.dir + "/" + k_spare + ": cannot create: " + std::strerror(errno);
    return false;
  }
  const int err = reserve(m_disk, m_spare.get(), m_segment_bytes);
  if (err != 0 && !no_room(err)) {
    error = m_options.dir + "/" + k_spare + ": cannot reserve " + std::to_string(m_segment_bytes) +
            " bytes: " + std::strerror(err);
    return false;
  }
  if (err != 0) {
    EGW_LOG(warning, "spool: %s: the disk is full; no new segment can start until space returns",
            m_options.dir.c_str());
    m_spare.reset();
    m_disk.unlinkat(m_dir_fd.get(), k_spare);
    m_spare_no_space = true;
  }
  return true;
}

bool Spool::recover(std::string& error) {
  m_disk.unlinkat(m_dir_fd.get(), k_cursor_tmp);
  if (!read_cursor(error)) return false;
  if (!open_segment_files(error)) return false;
  if (!m_segments.empty()) {
    Segment& last = m_segments.back();
    if (!recover_tail(last)) {
      error = m_error;
      return false;
    }
    if (!last.header_ok && last.size == format::k_segment_header) {
      // Nothing in it but a damaged header (a crash as it was started): a new header.
      std::uint8_t header[format::k_segment_header];
      format::encode_segment_header(header, last.first_seq);
      last.header_ok = write_all(m_disk, last.fd.get(), header, sizeof header, 0);
    }
    // What recovery keeps is built on from now on (forwarded, its seqs counted on): it is
    // made durable first, in case a crashed run wrote it and never synced it. A job writes
    // to at most the last two segments (one rotation), so only they can hold such records.
    for (std::size_t i = m_segments.size() >= 2 ? m_segments.size() - 2 : 0; m_options.sync && i < m_segments.size();
         ++i) {
      ++m_stats.fsyncs;
      if (m_disk.fdatasync(m_segments[i].fd.get()) != 0) {
        error = segment_path(m_segments[i].first_seq) + ": cannot sync what recovery found: " + std::strerror(errno);
        return false;
      }
    }
    if (m_options.sync && m_disk.fsync(m_dir_fd.get()) != 0) {
      error = m_options.dir + ": cannot sync what recovery found: " + std::strerror(errno);
      return false;
    }
    m_stats.fsyncs += m_options.sync ? 1 : 0;
    // A segment whose header is damaged takes no more records: they go to a new one.
    m_active_open = last.size < m_segment_bytes && last.header_ok;
    // Its ack marks are newer than the "ack" file unless no records were written since.
    m_acked = std::max(m_acked, last.mark);
    m_next_seq = std::max({m_next_seq, m_acked + 1, last.first_seq});
  } else {
    m_next_seq = m_acked + 1;
  }
  m_cursor_written = m_active_mark = m_acked;
  // Segments wholly acknowledged (left by a crash between cursor and unlink) go now.
  while (m_segments.size() > 1 && m_segments[1].first_seq <= m_acked + 1) {
    m_disk.unlinkat(m_dir_fd.get(), SegmentName(m_segments.front().first_seq).text);
    m_bytes -= m_segments.front().size;
    m_segments.erase(m_segments.begin());
  }
  m_durable_seq = m_next_seq - 1;
  m_sent = m_acked + 1;
  m_stats.recovered_records = m_next_seq - 1 - m_acked;
  m_read_index = 0;
  m_read_off = format::k_segment_header;
  if (m_stats.recovered_records > 0 || !m_segments.empty()) {
    EGW_LOG(notice,
            "spool: recovered %" PRIu64 " unacknowledged records in %zu segments (%" PRIu64
            " bytes); next sequence %" PRIu64,
            m_stats.recovered_records, m_segments.size(), m_bytes, m_next_seq);
  }
  return true;
}

// Scans the last segment record by record, checksums included. Damage followed by valid
// records is skipped and counted; damage at the very end is a torn write and is cut off.
// Zeros after the last record are the room preallocated for more: the segment's size
// becomes the end of its last record, and appends go on from there.
bool Spool::recover_tail(Segment& seg) {
  std::uint64_t off = format::k_segment_header, good_end = off;
  format::RecordHeader h;
  std::uint64_t at = 0, skipped = 0;
  const char* damage = nullptr;  // what lies between good_end and the next good record
  std::uint64_t last_seq = 0;
  while (find_record(seg, off, seg.size, h, at, skipped)) {
    // Whatever the body says, a header that checks out proves its seq was given out.
    if (!h.mark) m_next_seq = std::max(m_next_seq, h.seq + 1);
    std::uint8_t mark[8];
    if (h.mark ? !body_ok(seg, at, h, mark) || format::get64(mark) >= format::k_position_limit
               : h.seq <= last_seq || !body_ok(seg, at, h, nullptr)) {
      if (m_read_errno) break;
      // A length is trusted only with its body: a good record may start inside the
      // bytes this one claims, so the search goes on from the next byte.
      damage = at == good_end && !damage ? "record failing its checksum" : "damaged records";
      off = at + 1;
      continue;
    }
    off = at + format::k_record_header + h.body_len;
    if (at > good_end) note_corrupt(seg, good_end, at - good_end, damage ? damage : "damaged bytes");
    damage = nullptr;
    good_end = off;
    if (h.mark) {
      seg.mark = std::max(seg.mark, format::get64(mark));
      continue;
    }
    last_seq = h.seq;
    m_next_seq = std::max(m_next_seq, h.seq + 1);
  }
  // An unreadable segment is not damage: nothing of it is cut, the start fails instead
  // (systemd tries again; the log names the file).
  if (m_read_errno) return fail(segment_path(seg.first_seq) + ": reading at recovery", m_read_errno);
  // Replay passes this ground again: what was reported here is not counted twice.
  m_scanned_seq = seg.first_seq;
  m_scanned_end = good_end;
  const std::uint64_t data_end = std::max(good_end, off + skipped);  // the last search's non-zero bytes
  if (data_end > good_end) {
    EGW_LOG(warning, "spool: %s/%s: cutting a torn tail of %" PRIu64 " bytes at offset %" PRIu64, m_options.dir.c_str(),
            SegmentName(seg.first_seq).text, data_end - good_end, good_end);
    m_stats.torn_bytes += data_end - good_end;
    if (m_disk.ftruncate(seg.fd.get(), static_cast<off_t>(good_end)) != 0)
      return fail(segment_path(seg.first_seq) + ": truncating a torn tail", errno);
    m_disk.fallocate(seg.fd.get(), static_cast<off_t>(m_segment_bytes));  // the room again (if not: appends)
    ++m_stats.fsyncs;
    if (m_disk.fdatasync(seg.fd.get()) != 0)
      return fail(segment_path(seg.first_seq) + ": fsync after truncating a torn tail", errno);
  }
  m_bytes -= seg.size - good_end;
  seg.size = seg.written = good_end;
  m_rbuf_len = 0;  // the window may hold the room past good_end, where records go next
  return true;
}

void Spool::note_corrupt(const Segment& seg, std::uint64_t at, std::uint64_t bytes, const char* why) {
  ++m_stats.corrupt;
  m_stats.corrupt_bytes += bytes;
  EGW_LOG_LIMITED(error, "spool: %s/%s: %s at offset %" PRIu64 " (%" PRIu64 " bytes) skipped", m_options.dir.c_str(),
                  SegmentName(seg.first_seq).text, why, at, bytes);
}

bool Spool::read_at(const Segment& seg, std::uint64_t off, std::uint8_t* dst, std::size_t len) {
  if (m_rbuf_len > 0 && m_rbuf_seg == seg.first_seq && off >= m_rbuf_off && off + len <= m_rbuf_off + m_rbuf_len) {
    std::memcpy(dst, m_rbuf.get() + (off - m_rbuf_off), len);
    return true;
  }
  // Never past what is written: the sync thread may be writing beyond it right now, and
  // the window would keep those bytes half-written.
  if (off + len > seg.written) return false;
  if (len > m_rbuf_cap) {  // larger than the window: straight into the destination
    ssize_t n = m_disk.pread(seg.fd.get(), dst, len, static_cast<off_t>(off));
    if (n < 0) m_read_errno = errno;
    m_stats.bytes_read += n > 0 ? static_cast<std::uint64_t>(n) : 0;
    return n == static_cast<ssize_t>(len);
  }
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(m_rbuf_cap, seg.written - off));
  ssize_t n = m_disk.pread(seg.fd.get(), m_rbuf.get(), want, static_cast<off_t>(off));
  if (n < 0) m_read_errno = errno;
  m_rbuf_len = n > 0 ? static_cast<std::size_t>(n) : 0;
  m_rbuf_seg = seg.first_seq;
  m_rbuf_off = off;
  m_stats.bytes_read += m_rbuf_len;
  if (m_rbuf_len < len) return false;
  std::memcpy(dst, m_rbuf.get(), len);
  return true;
}

bool Spool::find_record(const Segment& seg, std::uint64_t off, std::uint64_t end, format::RecordHeader& h,
                        std::uint64_t& at, std::uint64_t& skipped) {
  std::uint64_t data_end = off;  // past the last non-zero byte looked at
  std::uint8_t header[format::k_record_header];
  for (std::uint64_t pos = off; pos < end;) {
    std::uint8_t first;
    if (!read_at(seg, pos, &first, 1)) {  // (puts the window at pos if it was elsewhere)
      data_end = end;                     // unreadable: nothing valid, and not free room either
      break;                              // (an I/O error is the caller's to see: m_read_errno)
    }
    // Search what the window holds, in place.
    const std::uint64_t window_off = m_rbuf_off;
    const std::uint8_t* w = m_rbuf.get() + (pos - window_off);
    const std::size_t n = static_cast<std::size_t>(std::min(end, window_off + m_rbuf_len) - pos);
    std::uint64_t next = pos + n;  // where the search goes on
    std::size_t i = 0;
    while (i < n) {
      if (w[i] == 0) {  // room after the last record, most likely: a word at a time
        std::uint64_t word;
        if (i + 8 <= n && (std::memcpy(&word, w + i, 8), word == 0)) i += 8;
        else ++i;
        continue;
      }
      const std::uint64_t p = pos + i++;
      data_end = p + 1;
      if (w[i - 1] != format::k_record_magic[0] || p + format::k_record_header > end) continue;
      if (read_at(seg, p, header, sizeof header) && format::decode_record_header(header, h) &&
          (h.mark || h.seq >= seg.first_seq) && p + format::k_record_header + h.body_len <= end) {
        at = p;
        skipped = p - off;
        return true;
      }
      if (m_rbuf_off != window_off) {  // that header reached past the window, which moved
        next = p + 1;
        break;
      }
    }
    pos = next;
  }
  // Zeros after the last record are the segment's preallocated, unused room.
  skipped = data_end - off;
  return false;
}

bool Spool::body_ok(const Segment& seg, std::uint64_t at, const format::RecordHeader& h, std::uint8_t* dst) {
  std::uint64_t off = at + format::k_record_header;
  if (dst) return read_at(seg, off, dst, h.body_len) && crc32c({dst, h.body_len}) == h.body_crc;
  std::uint32_t crc = 0;  // no destination: checksum the window piece by piece
  std::uint8_t chunk[4096];
  for (std::uint32_t done = 0; done < h.body_len;) {
    std::size_t n = std::min<std::size_t>(sizeof chunk, h.body_len - done);
    if (!read_at(seg, off + done, chunk, n)) return false;
    crc = crc32c({chunk, n}, crc);
    done += static_cast<std::uint32_t>(n);
  }
  return crc == h.body_crc;
}

// ---- appending and committing --------------------------------------------------------

// The spare becomes the next segment: its header opens the job's second extent.
void Spool::start_segment(Job& job) {
  Segment seg;
  seg.first_seq = m_next_seq;
  seg.size = format::k_segment_header;
  seg.fd = std::move(m_spare);
  format::encode_segment_header(job.m_buf.get() + job.m_len, seg.first_seq);
  job.m_extents[job.m_n_extents++] = Job::Extent{seg.fd.get(), seg.first_seq, 0, job.m_len, format::k_segment_header};
  job.m_len += format::k_segment_header;
  job.m_rotate = true;
  m_bytes += seg.size;
  m_segments.push_back(std::move(seg));
  m_active_open = true;
  m_active_mark = m_cursor_written;  // marks in older segments are not read at recovery
}

// The acknowledged position, after the job's records in the active segment: made durable
// by the same fdatasync. Left out when it does not fit (the "ack" file covers it then).
void Spool::add_mark(Job& job) {
  Segment& seg = m_segments.back();
  if (job.m_len + format::k_mark_bytes > job.m_cap || seg.size + format::k_mark_bytes > m_segment_bytes ||
      m_bytes + format::k_mark_bytes > m_options.max_bytes) {
    return;
  }
  format::encode_mark(job.m_buf.get() + job.m_len, m_acked);
  add_to_extent(job, seg, format::k_mark_bytes);
  seg.size += format::k_mark_bytes;
  m_bytes += format::k_mark_bytes;
  job.m_mark_seq = m_acked;
  m_active_mark = m_acked;
}

std::uint64_t Spool::unpersisted_acks() const {
  const std::uint64_t marked = m_segments.empty() ? 0 : m_segments.back().mark;
  return m_acked - std::min(m_acked, std::max(m_cursor_written, marked));
}

void Spool::add_to_extent(Job& job, Segment& seg, std::size_t bytes) {
  Job::Extent* e = job.m_n_extents > 0 ? &job.m_extents[job.m_n_extents - 1] : nullptr;
  if (!e || e->segment != seg.first_seq) {
    e = &job.m_extents[job.m_n_extents++];  // at most two: one rotation per job
    *e = Job::Extent{seg.fd.get(), seg.first_seq, seg.size, job.m_len, 0};
  }
  e->len += bytes;
  job.m_len += bytes;
}

// Every record of the oldest segment is on disk (so no job writes to it any more).
bool Spool::front_is_durable() const { return segment_end_seq(0) - 1 <= m_durable_seq; }

void Spool::drop_front(bool counted) {
  Segment& seg = m_segments.front();
  if (counted) {
    std::uint64_t from = std::max({seg.first_seq, m_acked + 1, m_sent});
    std::uint64_t end = segment_end_seq(0);
    std::uint64_t lost = end > from ? end - from : 0;
    m_stats.dropped_records += lost;
    ++m_stats.dropped_segments;
    EGW_LOG(warning, "spool: full; dropped the oldest segment %s/%s with %" PRIu64 " unsent records",
            m_options.dir.c_str(), SegmentName(seg.first_seq).text, lost);
  }
  m_unlinks.push_back(seg.first_seq);
  m_spare_no_space = false;  // room again
  m_bytes -= seg.size;
  m_segments.erase(m_segments.begin());
  if (m_read_index > 0) {
    --m_read_index;
  } else {
    m_read_off = format::k_segment_header;
    m_read_last_seq = 0;
  }
}

Append Spool::append(std::string_view topic, std::span<const std::uint8_t> payload, std::uint8_t qos, bool retain,
                     std::uint64_t received_ns, std::uint64_t& seq, const format::RecordExt* ext) {
  if (m_failed) return Append::failed;
  Job& job = m_jobs[m_filling];
  const std::size_t ext_len = ext ? format::k_ext_bytes : 0;
  const std::size_t body = ext_len + topic.size() + payload.size();
  const std::uint64_t need = format::k_record_header + body;
  if (need + format::k_segment_header > job.m_cap) {
    errno = EFBIG;
    fail(m_options.dir + ": a record larger than the batch buffer", errno);
    return Append::failed;
  }
  const bool rotate = !m_active_open || m_segments.back().size + need > m_segment_bytes;
  // A last segment wholly acknowledged goes as soon as the next one starts: its bytes are
  // room (else a spool.max_bytes lowered below its size would be full for ever).
  const std::uint64_t reclaim =
      rotate && m_segments.size() == 1 && segment_end_seq(0) - 1 <= m_acked ? m_segments[0].size : 0;
  for (;;) {
    std::uint64_t total = m_bytes - reclaim + need + (rotate ? format::k_segment_header : 0);
    if (total <= m_options.max_bytes) break;
    // drop-oldest never deletes the segment being written, nor records not yet on disk
    if (!m_options.drop_oldest || m_segments.size() < 2) {
      ++m_stats.full_refusals;
      return Append::full;
    }
    if (!front_is_durable()) return Append::busy;
    drop_front(true);
  }
  if (rotate && !m_spare) {
    if (!m_spare_no_space) return Append::busy;  // being made by the job out now
    ++m_stats.full_refusals;
    return Append::full;
  }
  if ((rotate && job.m_rotate) || job.m_len + need + (rotate ? format::k_segment_header : 0) > job.m_cap) {
    return Append::busy;
  }
  if (rotate) {
    start_segment(job);
    while (m_segments.size() > 1 && m_segments[1].first_seq <= m_acked + 1) drop_front(false);
  }
  Segment& seg = m_segments.back();
  format::RecordHeader h;
  h.body_len = static_cast<std::uint32_t>(body);
  h.seq = m_next_seq;
  h.received_ns = received_ns;
  h.topic_len = static_cast<std::uint16_t>(topic.size());
  h.qos = qos;
  h.retain = retain;
  h.ext_len = static_cast<std::uint8_t>(ext_len);
  if (ext) h.ext = *ext;
  std::uint8_t* out = job.m_buf.get() + job.m_len;
  std::uint8_t* body_out = out + format::k_record_header;
  if (ext) format::encode_ext(body_out, *ext);
  auto t = std::span(reinterpret_cast<const std::uint8_t*>(topic.data()), topic.size());
  std::memcpy(body_out + ext_len, t.data(), t.size());
  std::memcpy(body_out + ext_len + t.size(), payload.data(), payload.size());
  h.body_crc = crc32c(payload, crc32c(t, crc32c({body_out, ext_len})));
  format::encode_record_header(out, h);
  add_to_extent(job, seg, need);
  seg.size += need;
  m_bytes += need;
  seq = m_next_seq++;
  job.m_last_seq = seq;
  ++m_stats.appended;
  return Append::ok;
}

bool Spool::cursor_due(std::uint64_t now_ns) const {
  const std::uint64_t waiting = unpersisted_acks();
  if (waiting == 0) return false;
  const bool long_enough = m_waiting_since_ns != 0 && now_ns >= m_waiting_since_ns + k_cursor_interval_ns;
  return m_cursor_forced || long_enough || waiting >= k_cursor_records;
}

Job* Spool::prepare(std::uint64_t now_ns) {
  if (m_failed || m_out) return nullptr;
  Job& job = m_jobs[m_filling];
  if (unpersisted_acks() == 0) m_waiting_since_ns = 0;
  else if (m_waiting_since_ns == 0) m_waiting_since_ns = now_ns;
  m_prepared_ns = now_ns;
  if (job.m_len > 0 && m_acked > m_active_mark) add_mark(job);
  job.m_make_spare = !m_spare && !m_spare_no_space;
  if (!job.m_mark_seq && cursor_due(now_ns)) {
    job.m_write_cursor = true;
    job.m_cursor_seq = m_acked;
    job.m_cursor_off = m_cursor_off;
  }
  job.m_unlinks.swap(m_unlinks);  // both reserved alike: no allocation
  if (job.empty()) return nullptr;
  m_out = &job;
  m_filling ^= 1;
  return &job;
}

bool Spool::complete(Job& job) {
  m_out = nullptr;
  m_stats.fsyncs += job.m_fsyncs;
  m_stats.bytes_written += job.m_bytes_written;
  if (job.m_spare_fd >= 0) m_spare.reset(job.m_spare_fd);
  if (job.m_spare_no_space) {
    m_spare_no_space = true;
    EGW_LOG_LIMITED(warning, "spool: %s: the disk is full; no new segment can start until space returns",
                    m_options.dir.c_str());
  }
  if (job.m_failed_what) {
    if (job.m_new_cursor_fd >= 0) ::close(job.m_new_cursor_fd);
    errno = job.m_failed_errno;
    fail(m_options.dir + "/" + job.m_failed_file + ": " + job.m_failed_what, job.m_failed_errno);
    job.reset();
    return false;
  }
  if (job.m_last_seq) {
    m_durable_seq = job.m_last_seq;
    ++m_stats.commits;
    for (int i = 0; i < job.m_n_extents; ++i) {
      const Job::Extent& e = job.m_extents[i];
      if (Segment* seg = find_segment(e.segment)) seg->written = e.file_off + e.len;
    }
    if (job.m_mark_seq && job.m_n_extents > 0) {
      if (Segment* seg = find_segment(job.m_extents[job.m_n_extents - 1].segment)) seg->mark = job.m_mark_seq;
      m_cursor_forced = false;
    }
  }
  if (job.m_new_cursor_fd >= 0) {  // made now, at last
    m_cursor_fd.reset(job.m_new_cursor_fd);
    for (Job& j : m_jobs) j.m_cursor_fd = m_cursor_fd.get();
    m_cursor_current = true;
    job.m_cursor_off = 0;  // both slots hold it: the next write may take either
  }
  if (job.m_cursor_done) {
    m_cursor_written = std::max(m_cursor_written, job.m_cursor_seq);
    m_cursor_off = job.m_cursor_off == 0 ? format::k_cursor_slot_stride : 0;
    m_cursor_forced = false;
    ++m_stats.cursor_writes;
  }
  // What waits now was acknowledged after this job was prepared, at the earliest.
  if (job.m_write_cursor || job.m_mark_seq) m_waiting_since_ns = unpersisted_acks() == 0 ? 0 : m_prepared_ns;
  job.reset();
  return true;
}

// The loop set these fields before it submitted the job; the sync thread only reads them.
void Spool::describe_job(char* buf, std::size_t cap) const {
  const char* dir = m_options.dir.c_str();
  if (m_out && m_out->m_n_extents > 0) {
    std::snprintf(buf, cap, "%s/%s", dir, SegmentName(m_out->m_extents[m_out->m_n_extents - 1].segment).text);
  } else if (m_out && (m_out->m_write_cursor || m_out->m_make_spare)) {
    std::snprintf(buf, cap, "%s/%s", dir, m_out->m_write_cursor ? k_cursor : k_spare);
  } else {
    std::snprintf(buf, cap, "%s", dir);
  }
}

bool Spool::commit() {
  if (m_out) return false;
  while (Job* job = prepare(0)) {
    job->run();
    if (!complete(*job)) return false;
  }
  return !m_failed;
}

void Spool::ack(std::uint64_t seq) {
  if (seq <= m_acked) return;
  m_acked = seq;
  m_sent = std::max(m_sent, seq + 1);
  while (m_segments.size() > 1 && m_segments[1].first_seq <= m_acked + 1) drop_front(false);
}

void Spool::sent_up_to(std::uint64_t seq) { m_sent = std::max(m_sent, seq); }

bool Spool::persist_cursor() {
  if (m_failed) return false;
  m_cursor_forced = true;
  return commit();
}

Read Spool::read_next(std::uint64_t from, std::uint64_t limit, std::span<std::uint8_t> buf, Record& out) {
  if (m_failed) return Read::failed;
  while (m_read_index < m_segments.size()) {
    // whole segments below `from` are skipped without reading them
    if (m_read_index + 1 < m_segments.size() && m_segments[m_read_index + 1].first_seq <= from) {
      ++m_read_index;
      m_read_off = format::k_segment_header;
      m_read_last_seq = 0;
      continue;
    }
    const Segment& seg = m_segments[m_read_index];
    if (seg.first_seq >= limit) return Read::end;
    const std::uint64_t end = seg.written;
    format::RecordHeader h;
    std::uint64_t at = 0, skipped = 0;
    bool found = find_record(seg, m_read_off, end, h, at, skipped);
    if (m_read_errno) return fail(segment_path(seg.first_seq) + ": reading", m_read_errno), Read::failed;
    // Reported already: by open() for the ground it scanned, or as the record whose
    // checksum failed just before these bytes.
    const bool reported = (seg.first_seq == m_scanned_seq && m_read_off < m_scanned_end) || m_after_bad_record;
    if (skipped > 0 && !reported) note_corrupt(seg, m_read_off, skipped, "damaged bytes");
    if (skipped > 0) m_read_damage = true;
    m_after_bad_record = false;
    if (!found) {
      if (m_read_index + 1 == m_segments.size()) {
        m_read_off = end;
        return Read::end;
      }
      // Segments are only ever deleted oldest first: records missing between two of them
      // mean a segment file went missing.
      const Segment& next = m_segments[m_read_index + 1];
      if (m_read_last_seq != 0 && !m_read_damage && next.first_seq > m_read_last_seq + 1) {
        ++m_stats.corrupt;
        EGW_LOG_LIMITED(error, "spool: %s: records %" PRIu64 " to %" PRIu64 " are missing (no segment file holds them)",
                        m_options.dir.c_str(), m_read_last_seq + 1, next.first_seq - 1);
      }
      ++m_read_index;
      m_read_off = format::k_segment_header;
      m_read_last_seq = 0;
      m_read_damage = false;
      continue;
    }
    if (h.seq >= limit) {
      m_read_off = at;
      return Read::end;
    }
    const bool fits = h.body_len <= buf.size();
    if (!body_ok(seg, at, h, fits ? buf.data() : nullptr)) {
      if (m_read_errno) return fail(segment_path(seg.first_seq) + ": reading", m_read_errno), Read::failed;
      m_read_damage = true;
      if (!reported && h.seq >= from) {
        note_corrupt(seg, at, format::k_record_header + h.body_len, "record failing its checksum");
      }
      m_read_off = at + 1;  // its length is not trusted (see recover_tail)
      m_after_bad_record = true;
      continue;
    }
    m_read_off = at + format::k_record_header + h.body_len;
    if (!h.mark) m_read_last_seq = h.seq;
    if (h.mark || h.seq < from) continue;
    if (!fits) {  // pool.slot_bytes was lowered since it was spooled
      note_corrupt(seg, at, format::k_record_header + h.body_len, "record larger than a pool slot");
      continue;
    }
    out.header = h;
    if (h.ext_len) format::decode_ext(buf.data(), out.header.ext);
    out.topic = std::string_view(reinterpret_cast<const char*>(buf.data() + h.ext_len), h.topic_len);
    out.payload = buf.subspan(h.ext_len + h.topic_len, h.body_len - h.ext_len - h.topic_len);
    return Read::ok;
  }
  return Read::end;
}

}  // namespace edgegw::spool
