// The spool: a bounded, crash-safe, append-only log of messages under
// <state_dir>/spool (format in docs/SPOOL.md).
//
//  - append() frames a record into a write buffer and gives it the next sequence number;
//    commit() writes the buffer and, with sync on, fdatasyncs it: one fsync covers every
//    record appended since the last (group commit). durable_seq() says how far that got.
//  - ack(seq) records that upstream holds everything up to seq; wholly acknowledged
//    segments are deleted at once, and persist_cursor() replaces the "ack" file atomically
//    (write, fsync, rename, fsync the directory).
//  - read_next() replays records in order (the backlog after an outage or a restart),
//    skipping, counting and logging any record that fails its checksum.
//  - open() recovers: it reads the cursor, lists the segments and scans only the last one,
//    truncating a torn tail. Earlier segments are checked as they are replayed, so recovery
//    work is bounded by one segment whatever the spool holds.
//
// Any write or fsync error makes the spool failed() for good: nothing more is written or
// acknowledged, and fsync is never retried on a file whose fsync failed (after such a
// failure the kernel may have dropped the dirty pages while clearing the error).
// Buffers and the segment table are sized in open(); append/commit/read do not allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "spool/format.hpp"
#include "util/fd.hpp"

namespace edgegw::spool {

struct Options {
  std::string dir;                  // created if missing
  std::uint64_t max_bytes = 256ull << 20;
  std::uint64_t segment_bytes = 0;  // 0: max_bytes / 16, within [64 KiB, 16 MiB]
  bool sync = true;                 // fdatasync at commit (false: tmpfs, tests)
  bool drop_oldest = false;         // when full: delete the oldest segment (else refuse)
};

struct Stats {
  std::uint64_t appended = 0;
  std::uint64_t commits = 0;         // commit() calls that had records to make durable
  std::uint64_t fsyncs = 0;          // fsync/fdatasync calls of any kind
  std::uint64_t cursor_writes = 0;
  std::uint64_t corrupt = 0;         // damaged places skipped (records or runs of bytes)
  std::uint64_t corrupt_bytes = 0;
  std::uint64_t torn_bytes = 0;      // cut from the end of the last segment at recovery
  std::uint64_t full_refusals = 0;   // append() answered full
  std::uint64_t dropped_segments = 0;
  std::uint64_t dropped_records = 0;  // unsent records deleted by drop-oldest
  std::uint64_t recovery_ns = 0;
  std::uint64_t recovery_bytes_read = 0;  // by open(): bounded by about one segment
  std::uint64_t bytes_read = 0;           // by anything, replay included
  std::uint64_t recovered_records = 0;  // unacknowledged records found at open
};

struct Record {
  format::RecordHeader header;
  std::string_view topic;              // views into the caller's buffer
  std::span<const std::uint8_t> payload;
};

enum class Append { ok, full, failed };
enum class Read { ok, end, failed };

class Spool {
 public:
  explicit Spool(Options options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Creates and locks the directory and recovers what is there. On failure `error` says
  // which path and why.
  bool open(std::string& error);

  Append append(std::string_view topic, std::span<const std::uint8_t> payload, std::uint8_t qos, bool retain,
                std::uint64_t received_ns, std::uint64_t& seq);
  // Makes every appended record durable (written; fdatasynced when sync is on).
  bool commit();
  bool has_uncommitted() const { return m_next_seq - 1 > m_durable_seq; }

  // Upstream holds every record up to `seq`.
  void ack(std::uint64_t seq);
  // Replaces the "ack" file if the acknowledged position moved since the last time.
  bool persist_cursor();
  // Records below `seq` have been sent from memory: read_next() and drop-oldest's count
  // start there.
  void sent_up_to(std::uint64_t seq);

  // The next record with from <= seq < limit, its topic and payload read into `buf`.
  // end: nothing more below `limit` on disk.
  Read read_next(std::uint64_t from, std::uint64_t limit, std::span<std::uint8_t> buf, Record& out);

  bool failed() const { return m_failed; }
  const std::string& error() const { return m_error; }
  std::uint64_t next_seq() const { return m_next_seq; }
  std::uint64_t durable_seq() const { return m_durable_seq; }
  std::uint64_t acked_seq() const { return m_acked; }
  // Acknowledged records the "ack" file does not cover yet (resent after a crash).
  std::uint64_t unpersisted_acks() const { return m_acked - m_cursor_written; }
  std::uint64_t bytes() const { return m_bytes; }
  std::uint64_t max_bytes() const { return m_options.max_bytes; }
  std::uint64_t segment_bytes() const { return m_segment_bytes; }
  std::size_t segments() const { return m_segments.size(); }
  const Stats& stats() const { return m_stats; }
  const std::string& dir() const { return m_options.dir; }

 private:
  struct Segment {
    std::uint64_t first_seq = 0;
    std::uint64_t size = 0;  // bytes on disk, plus the write buffer for the active one
    util::Fd fd;
  };

  bool recover(std::string& error);
  bool recover_tail(Segment& seg);
  bool open_segment_files(std::string& error);
  bool start_segment();
  bool flush();
  bool sync_fd(int fd, const char* what);
  bool sync_dir();
  void drop_front(bool counted);
  bool fail(const char* what, int err);
  // "NNNNNNNNNNNNNNNN.seg" in a fixed buffer: files are opened relative to m_dir_fd, so
  // rotating segments allocates nothing.
  struct SegmentName {
    explicit SegmentName(std::uint64_t first_seq);
    char text[24];
  };
  std::string segment_path(std::uint64_t first_seq) const;  // for startup errors
  std::uint64_t segment_end_seq(std::size_t index) const;  // one past its last sequence
  std::uint64_t readable_end(std::size_t index) const;

  // Reads [off, off+len) of a segment through the read buffer; false on a short read.
  bool read_at(const Segment& seg, std::uint64_t off, std::uint8_t* dst, std::size_t len);
  // The first record at or after `off` with a valid header that ends by `end`; `skipped`
  // gets the bytes passed over. False if there is none.
  bool find_record(const Segment& seg, std::uint64_t off, std::uint64_t end, format::RecordHeader& h,
                   std::uint64_t& at, std::uint64_t& skipped);
  bool body_ok(const Segment& seg, std::uint64_t at, const format::RecordHeader& h, std::uint8_t* dst);
  void note_corrupt(const Segment& seg, std::uint64_t at, std::uint64_t bytes, const char* why);

  Options m_options;
  std::uint64_t m_segment_bytes = 0;
  util::Fd m_dir_fd;
  util::Fd m_lock_fd;
  std::vector<Segment> m_segments;  // oldest first; the last is the active one
  bool m_active_open = false;       // the last segment takes appends

  std::uint64_t m_next_seq = 1;
  std::uint64_t m_durable_seq = 0;
  std::uint64_t m_acked = 0;
  std::uint64_t m_cursor_written = 0;
  std::uint64_t m_sent = 0;  // records below this were sent from memory
  std::uint64_t m_bytes = 0;

  std::unique_ptr<std::uint8_t[]> m_wbuf;  // records not yet written to the active segment
  std::size_t m_wbuf_cap = 0, m_wbuf_len = 0;

  std::unique_ptr<std::uint8_t[]> m_rbuf;  // a window of one segment, for replay and scans
  std::size_t m_rbuf_cap = 0, m_rbuf_len = 0;
  std::uint64_t m_rbuf_seg = 0, m_rbuf_off = 0;  // which segment (first_seq) and where
  std::size_t m_read_index = 0;                  // replay position: segment and offset
  std::uint64_t m_read_off = format::k_segment_header;
  std::uint64_t m_scanned_seq = 0, m_scanned_end = 0;  // the part open() checked (and reported)
  bool m_after_bad_record = false;  // replay is searching past a record that failed its checksum

  bool m_failed = false;
  std::string m_error;
  Stats m_stats;
};

}  // namespace edgegw::spool
