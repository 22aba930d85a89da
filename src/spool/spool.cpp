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

constexpr std::size_t k_read_buffer = 64 * 1024;
constexpr std::size_t k_write_buffer = 64 * 1024;
constexpr const char* k_cursor = "ack";
constexpr const char* k_cursor_tmp = "ack.tmp";

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

bool write_all(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return false;
    }
    p += w, n -= static_cast<std::size_t>(w), off += static_cast<std::uint64_t>(w);
  }
  return true;
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

}  // namespace

Spool::Spool(Options options) : m_options(std::move(options)) {
  m_segment_bytes = m_options.segment_bytes;
  if (m_segment_bytes == 0) m_segment_bytes = std::clamp<std::uint64_t>(m_options.max_bytes / 16, 64 * 1024, 16 << 20);
  m_segment_bytes = std::min(m_segment_bytes, m_options.max_bytes);
}

Spool::~Spool() = default;

bool Spool::fail(const char* what, int err) {
  if (!m_failed) {
    m_failed = true;
    m_error = std::string(what) + ": " + std::strerror(err);
    EGW_LOG(error, "spool: %s (%s); nothing more is acknowledged", m_error.c_str(), m_options.dir.c_str());
  }
  return false;
}

std::string Spool::segment_path(std::uint64_t first_seq) const { return m_options.dir + "/" + SegmentName(first_seq).text; }

Spool::SegmentName::SegmentName(std::uint64_t first_seq) { std::snprintf(text, sizeof text, "%016" PRIx64 ".seg", first_seq); }

std::uint64_t Spool::segment_end_seq(std::size_t index) const {
  return index + 1 < m_segments.size() ? m_segments[index + 1].first_seq : m_next_seq;
}

std::uint64_t Spool::readable_end(std::size_t index) const {
  const Segment& s = m_segments[index];
  return index + 1 == m_segments.size() && m_active_open ? s.size - m_wbuf_len : s.size;
}

bool Spool::open(std::string& error) {
  const auto started = now_ns();
  const std::string& dir = m_options.dir;
  // The state directory and the spool directory under it (mkdir -p for the last two levels).
  std::string parent = dir.substr(0, dir.find_last_of('/'));
  if (!parent.empty() && ::mkdir(parent.c_str(), 0750) != 0 && errno != EEXIST) {
    error = parent + ": cannot create the state directory: " + std::strerror(errno);
    return false;
  }
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    error = dir + ": cannot create the spool directory: " + std::strerror(errno);
    return false;
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
  m_lock_fd.reset(::openat(m_dir_fd.get(), "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (!m_lock_fd) {
    error = dir + "/lock: cannot create: " + std::strerror(errno);
    return false;
  }
  if (::flock(m_lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    error = dir + ": in use by another edgegw process (" + std::strerror(errno) + ")";
    return false;
  }
  m_wbuf_cap = k_write_buffer;
  m_wbuf = std::make_unique<std::uint8_t[]>(m_wbuf_cap);
  m_rbuf_cap = k_read_buffer;
  m_rbuf = std::make_unique<std::uint8_t[]>(m_rbuf_cap);
  if (!recover(error)) return false;
  m_stats.recovery_ns = now_ns() - started;
  m_stats.recovery_bytes_read = m_stats.bytes_read;
  return true;
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
    seg.fd.reset(::openat(m_dir_fd.get(), SegmentName(first).text, O_RDWR | O_CLOEXEC));
    struct stat st;
    if (!seg.fd || ::fstat(seg.fd.get(), &st) != 0) {
      error = segment_path(first) + ": cannot open: " + std::strerror(errno);
      return false;
    }
    seg.size = static_cast<std::uint64_t>(st.st_size);
    std::uint8_t header[format::k_segment_header];
    if (seg.size < sizeof header || ::pread(seg.fd.get(), header, sizeof header, 0) != sizeof header ||
        format::decode_segment_header(header) != first) {
      EGW_LOG(warning, "spool: %s: damaged segment header; its records are checked one by one",
              segment_path(first).c_str());
      seg.size = std::max<std::uint64_t>(seg.size, format::k_segment_header);
    }
    m_bytes += seg.size;
    m_segments.push_back(std::move(seg));
  }
  return true;
}

bool Spool::recover(std::string& error) {
  ::unlinkat(m_dir_fd.get(), k_cursor_tmp, 0);
  // The acknowledged position. Missing: nothing acknowledged yet. Damaged: resend it all
  // (duplicates, never losses).
  util::Fd cursor(::openat(m_dir_fd.get(), k_cursor, O_RDONLY | O_CLOEXEC));
  if (cursor) {
    std::uint8_t buf[format::k_cursor_size + 1];
    ssize_t n = ::read(cursor.get(), buf, sizeof buf);
    if (n < 0 || !format::decode_cursor({buf, static_cast<std::size_t>(n)}, m_acked)) {
      EGW_LOG(warning, "spool: %s/%s is damaged; every record in the spool will be sent again",
              m_options.dir.c_str(), k_cursor);
      m_acked = 0;
    }
  } else if (errno != ENOENT) {
    error = m_options.dir + "/" + k_cursor + ": cannot read: " + std::strerror(errno);
    return false;
  }
  m_cursor_written = m_acked;
  if (!open_segment_files(error)) return false;

  // Segments wholly acknowledged (left by a crash between cursor and unlink) go now.
  m_next_seq = m_segments.empty() ? m_acked + 1 : std::max(m_acked + 1, m_segments.back().first_seq);
  while (m_segments.size() > 1 && m_segments[1].first_seq <= m_acked + 1) drop_front(false);

  if (!m_segments.empty()) {
    if (!recover_tail(m_segments.back())) {
      error = m_error;
      return false;
    }
    m_active_open = m_segments.back().size < m_segment_bytes;
  }
  m_durable_seq = m_next_seq - 1;
  m_sent = m_acked + 1;
  m_stats.recovered_records = m_next_seq - 1 - m_acked;
  m_read_index = 0;
  m_read_off = format::k_segment_header;
  if (m_stats.recovered_records > 0 || !m_segments.empty()) {
    EGW_LOG(notice, "spool: recovered %" PRIu64 " unacknowledged records in %zu segments (%" PRIu64
                    " bytes); next sequence %" PRIu64,
            m_stats.recovered_records, m_segments.size(), m_bytes, m_next_seq);
  }
  return true;
}

// Scans the last segment record by record, checksums included. Damage followed by valid
// records is skipped and counted; damage at the very end is a torn write and is cut off.
bool Spool::recover_tail(Segment& seg) {
  std::uint64_t off = format::k_segment_header, good_end = off;
  format::RecordHeader h;
  std::uint64_t at = 0, skipped = 0;
  const char* damage = nullptr;  // what lies between good_end and the next good record
  std::uint64_t last_seq = 0;
  while (find_record(seg, off, seg.size, h, at, skipped)) {
    if (h.seq <= last_seq || !body_ok(seg, at, h, nullptr)) {
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
    last_seq = h.seq;
    m_next_seq = std::max(m_next_seq, h.seq + 1);
  }
  // Replay passes this ground again: what was reported here is not counted twice.
  m_scanned_seq = seg.first_seq;
  m_scanned_end = good_end;
  if (seg.size > good_end) {
    EGW_LOG(warning, "spool: %s/%s: cutting a torn tail of %" PRIu64 " bytes at offset %" PRIu64,
            m_options.dir.c_str(), SegmentName(seg.first_seq).text, seg.size - good_end, good_end);
    m_stats.torn_bytes += seg.size - good_end;
    if (::ftruncate(seg.fd.get(), static_cast<off_t>(good_end)) != 0) return fail("truncating a torn tail", errno);
    if (!sync_fd(seg.fd.get(), "fsync after truncating a torn tail")) return false;
    m_bytes -= seg.size - good_end;
    seg.size = good_end;
    m_rbuf_len = 0;
  }
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
  if (len > m_rbuf_cap) {  // larger than the window: straight into the destination
    ssize_t n = ::pread(seg.fd.get(), dst, len, static_cast<off_t>(off));
    m_stats.bytes_read += n > 0 ? static_cast<std::uint64_t>(n) : 0;
    return n == static_cast<ssize_t>(len);
  }
  ssize_t n = ::pread(seg.fd.get(), m_rbuf.get(), m_rbuf_cap, static_cast<off_t>(off));
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
  skipped = 0;
  std::uint8_t header[format::k_record_header];
  for (std::uint64_t pos = off; pos + format::k_record_header <= end; ++pos) {
    if (!read_at(seg, pos, header, 1) || header[0] != format::k_record_magic[0]) continue;
    if (read_at(seg, pos, header, sizeof header) && format::decode_record_header(header, h) &&
        h.seq >= seg.first_seq && pos + format::k_record_header + h.body_len <= end) {
      at = pos;
      skipped = pos - off;
      return true;
    }
  }
  skipped = end > off ? end - off : 0;
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

bool Spool::sync_fd(int fd, const char* what) {
  ++m_stats.fsyncs;
  if (::fdatasync(fd) != 0) return fail(what, errno);
  return true;
}

bool Spool::sync_dir() {
  ++m_stats.fsyncs;
  if (::fsync(m_dir_fd.get()) != 0) return fail("fsync of the spool directory", errno);
  return true;
}

bool Spool::start_segment() {
  if (m_active_open && !commit()) return false;
  Segment seg;
  seg.first_seq = m_next_seq;
  const SegmentName name(seg.first_seq);
  seg.fd.reset(::openat(m_dir_fd.get(), name.text, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (!seg.fd) return fail("creating a segment", errno);
  // Reserve the blocks now, so that a full disk shows here (as a full spool) and not as a
  // failed write of acknowledged-to-be data later.
  if (::fallocate(seg.fd.get(), FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(m_segment_bytes)) != 0 &&
      errno == ENOSPC) {
    ::unlinkat(m_dir_fd.get(), name.text, 0);
    return false;
  }
  std::uint8_t header[format::k_segment_header];
  format::encode_segment_header(header, seg.first_seq);
  if (!write_all(seg.fd.get(), header, sizeof header, 0)) return fail("writing a segment header", errno);
  if (m_options.sync && (!sync_fd(seg.fd.get(), "fsync of a new segment") || !sync_dir())) return false;
  seg.size = sizeof header;
  m_bytes += seg.size;
  m_segments.push_back(std::move(seg));
  m_active_open = true;
  return true;
}

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
  ::unlinkat(m_dir_fd.get(), SegmentName(seg.first_seq).text, 0);
  m_bytes -= seg.size;
  m_segments.erase(m_segments.begin());
  if (m_read_index > 0) --m_read_index;
  else m_read_off = format::k_segment_header;
}

Append Spool::append(std::string_view topic, std::span<const std::uint8_t> payload, std::uint8_t qos, bool retain,
                     std::uint64_t received_ns, std::uint64_t& seq) {
  if (m_failed) return Append::failed;
  const std::size_t body = topic.size() + payload.size();
  const std::uint64_t need = format::k_record_header + body;
  bool rotate = !m_active_open || m_segments.back().size + need > m_segment_bytes;
  for (;;) {
    std::uint64_t total = m_bytes + need + (rotate ? format::k_segment_header : 0);
    if (total <= m_options.max_bytes) break;
    // drop-oldest never deletes the segment being written
    if (!m_options.drop_oldest || m_segments.size() < 2) {
      ++m_stats.full_refusals;
      return Append::full;
    }
    drop_front(true);
  }
  if (rotate && !start_segment()) {
    ++m_stats.full_refusals;
    return m_failed ? Append::failed : Append::full;
  }
  format::RecordHeader h;
  h.body_len = static_cast<std::uint32_t>(body);
  h.seq = m_next_seq;
  h.received_ns = received_ns;
  h.topic_len = static_cast<std::uint16_t>(topic.size());
  h.qos = qos;
  h.retain = retain;
  auto t = std::span(reinterpret_cast<const std::uint8_t*>(topic.data()), topic.size());
  h.body_crc = crc32c(payload, crc32c(t));
  if (m_wbuf_len + need > m_wbuf_cap && !flush()) return Append::failed;
  std::uint8_t* out = m_wbuf.get() + m_wbuf_len;
  std::uint8_t big_header[format::k_record_header];
  if (need > m_wbuf_cap) out = big_header;  // only the header is staged; flush below writes directly
  format::encode_record_header(out, h);
  Segment& seg = m_segments.back();
  if (need > m_wbuf_cap) {
    std::uint64_t off = seg.size;
    if (!write_all(seg.fd.get(), big_header, sizeof big_header, off) ||
        !write_all(seg.fd.get(), t.data(), t.size(), off + sizeof big_header) ||
        !write_all(seg.fd.get(), payload.data(), payload.size(), off + sizeof big_header + t.size())) {
      fail("writing a record", errno);
      return Append::failed;
    }
  } else {
    std::memcpy(out + format::k_record_header, t.data(), t.size());
    std::memcpy(out + format::k_record_header + t.size(), payload.data(), payload.size());
    m_wbuf_len += need;
  }
  seg.size += need;
  m_bytes += need;
  seq = m_next_seq++;
  ++m_stats.appended;
  return Append::ok;
}

bool Spool::flush() {
  if (m_wbuf_len == 0) return true;
  Segment& seg = m_segments.back();
  if (!write_all(seg.fd.get(), m_wbuf.get(), m_wbuf_len, seg.size - m_wbuf_len)) return fail("writing records", errno);
  m_wbuf_len = 0;
  return true;
}

bool Spool::commit() {
  if (m_failed) return false;
  if (!has_uncommitted()) return true;
  if (!flush()) return false;
  if (m_options.sync && !sync_fd(m_segments.back().fd.get(), "fdatasync of records")) return false;
  ++m_stats.commits;
  m_durable_seq = m_next_seq - 1;
  return true;
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
  if (m_acked == m_cursor_written) return true;
  std::uint8_t buf[format::k_cursor_size];
  format::encode_cursor(buf, m_acked);
  util::Fd fd(::openat(m_dir_fd.get(), k_cursor_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd) return fail("creating ack.tmp", errno);
  if (!write_all(fd.get(), buf, sizeof buf, 0)) return fail("writing ack.tmp", errno);
  if (m_options.sync && !sync_fd(fd.get(), "fdatasync of ack.tmp")) return false;
  if (::renameat(m_dir_fd.get(), k_cursor_tmp, m_dir_fd.get(), k_cursor) != 0) return fail("renaming ack.tmp", errno);
  if (m_options.sync && !sync_dir()) return false;
  m_cursor_written = m_acked;
  ++m_stats.cursor_writes;
  return true;
}

Read Spool::read_next(std::uint64_t from, std::uint64_t limit, std::span<std::uint8_t> buf, Record& out) {
  if (m_failed) return Read::failed;
  while (m_read_index < m_segments.size()) {
    // whole segments below `from` are skipped without reading them
    if (m_read_index + 1 < m_segments.size() && m_segments[m_read_index + 1].first_seq <= from) {
      ++m_read_index;
      m_read_off = format::k_segment_header;
      continue;
    }
    const Segment& seg = m_segments[m_read_index];
    if (seg.first_seq >= limit) return Read::end;
    const std::uint64_t end = readable_end(m_read_index);
    format::RecordHeader h;
    std::uint64_t at = 0, skipped = 0;
    bool found = find_record(seg, m_read_off, end, h, at, skipped);
    // Reported already: by open() for the ground it scanned, or as the record whose
    // checksum failed just before these bytes.
    const bool reported = (seg.first_seq == m_scanned_seq && m_read_off < m_scanned_end) || m_after_bad_record;
    if (skipped > 0 && !reported) note_corrupt(seg, m_read_off, skipped, "damaged bytes");
    m_after_bad_record = false;
    if (!found) {
      if (m_read_index + 1 == m_segments.size()) {
        m_read_off = end;
        return Read::end;
      }
      ++m_read_index;
      m_read_off = format::k_segment_header;
      continue;
    }
    if (h.seq >= limit) {
      m_read_off = at;
      return Read::end;
    }
    const bool fits = h.body_len <= buf.size();
    if (!body_ok(seg, at, h, fits ? buf.data() : nullptr)) {
      if (!reported && h.seq >= from) {
        note_corrupt(seg, at, format::k_record_header + h.body_len, "record failing its checksum");
      }
      m_read_off = at + 1;  // its length is not trusted (see recover_tail)
      m_after_bad_record = true;
      continue;
    }
    m_read_off = at + format::k_record_header + h.body_len;
    if (h.seq < from) continue;
    if (!fits) {  // pool.slot_bytes was lowered since it was spooled
      note_corrupt(seg, at, format::k_record_header + h.body_len, "record larger than a pool slot");
      continue;
    }
    out.header = h;
    out.topic = std::string_view(reinterpret_cast<const char*>(buf.data()), h.topic_len);
    out.payload = buf.subspan(h.topic_len, h.body_len - h.topic_len);
    return Read::ok;
  }
  return Read::end;
}

}  // namespace edgegw::spool
