// The spool: a bounded, crash-safe, append-only log of messages under
// <state_dir>/spool (format in docs/SPOOL.md).
//
//  - append() frames a record into the batch being filled and gives it the next sequence
//    number. Nothing touches the disk there.
//  - prepare() hands that batch over as a Job; Job::run() writes it and fdatasyncs it (one
//    sync covers every record in it: group commit), on the sync thread (sync_thread.hpp);
//    complete() takes the outcome back. durable_seq() says how far that got. While one
//    job is on the disk, append() fills the other: nothing here waits for the disk.
//    commit() does all three at once, on the caller's thread (tests, tools, shutdown).
//  - ack(seq) records that upstream holds everything up to seq; wholly acknowledged
//    segments are deleted (by the next job). The acknowledged position rides along with
//    the records as an ack mark at the end of each job that has records (no sync of its
//    own); while no records flow it goes to the "ack" file lazily (see cursor_due()). A
//    crash resends what was acknowledged since.
//  - read_next() replays durable records in order (the backlog after an outage or a
//    restart), skipping, counting and logging any record that fails its checksum.
//  - open() recovers: it reads the cursor, lists the segments and scans only the last one,
//    truncating a torn tail. Earlier segments are checked as they are replayed, so recovery
//    work is bounded by one segment whatever the spool holds.
//
// Any write or fsync error makes the spool failed() for good: nothing more is written or
// acknowledged, and fsync is never retried on a file whose fsync failed (after such a
// failure the kernel may have dropped the dirty pages while clearing the error).
//
// Threads: the Spool belongs to one thread (the event loop's); only Job::run() may run on
// another, between prepare() and complete(). Buffers, jobs and the segment table are sized
// in open(); append/prepare/complete/read do not allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "spool/disk.hpp"
#include "spool/format.hpp"
#include "util/fd.hpp"

namespace edgegw::spool {

struct Options {
  std::string dir;  // created if missing
  std::uint64_t max_bytes = 256ull << 20;
  std::uint64_t segment_bytes = 0;  // 0: max_bytes / 16, within [64 KiB, 16 MiB]
  bool sync = true;                 // fdatasync at commit (false: tmpfs, tests)
  bool drop_oldest = false;         // when full: delete the oldest segment (else refuse)
  // Bytes of records one job carries; must hold the largest record (36 + topic + payload).
  // Two such buffers are allocated: one fills while the other is written.
  std::size_t batch_bytes = 1 << 20;
  Disk* disk = nullptr;  // nullptr: the real one
};

struct Stats {
  std::uint64_t appended = 0;
  std::uint64_t commits = 0;  // jobs that made records durable
  std::uint64_t fsyncs = 0;   // fsync/fdatasync calls of any kind
  std::uint64_t cursor_writes = 0;
  std::uint64_t bytes_written = 0;  // by the spool's own writes (records, headers, cursor)
  std::uint64_t corrupt = 0;        // damaged places skipped (records or runs of bytes)
  std::uint64_t corrupt_bytes = 0;
  std::uint64_t torn_bytes = 0;     // cut from the end of the last segment at recovery
  std::uint64_t full_refusals = 0;  // append() answered full
  std::uint64_t dropped_segments = 0;
  std::uint64_t dropped_records = 0;  // unsent records deleted by drop-oldest
  std::uint64_t recovery_ns = 0;
  std::uint64_t recovery_bytes_read = 0;  // by open(): bounded by about one segment
  std::uint64_t bytes_read = 0;           // by anything, replay included
  std::uint64_t recovered_records = 0;    // unacknowledged records found at open
};

struct Record {
  format::RecordHeader header;  // header.ext: the extension's fields too
  std::string_view topic;       // views into the caller's buffer
  std::span<const std::uint8_t> payload;
};

// ok; full: no room under max_bytes, or on the disk (counted, as a refusal); busy: the
// batch being filled has no room now, or the next segment is not ready yet: retry once the
// job on the disk completes; failed: the spool failed (see error()).
enum class Append { ok, full, busy, failed };
enum class Read { ok, end, failed };

// The "ack" file is written once acknowledgements that no ack mark covers have waited this
// long (ack marks go with every job that has records, so this is when records stop
// flowing), or once this many wait.
inline constexpr std::uint64_t k_cursor_interval_ns = 1'000'000'000;
inline constexpr std::uint64_t k_cursor_records = 4096;

// One job's disk work: records to write and sync, and the housekeeping that rides along
// (the next segment file, the cursor, deletions). Prepared and completed by the Spool on
// its thread; run() touches only the job and the disk, on any thread.
class Job {
 public:
  void run();

 private:
  friend class Spool;
  struct Extent {  // a run of the buffer that goes to one segment file
    int fd = -1;
    std::uint64_t segment = 0;  // its first_seq
    std::uint64_t file_off = 0;
    std::size_t buf_off = 0, len = 0;
  };

  bool empty() const { return m_len == 0 && !m_make_spare && !m_write_cursor && m_unlinks.empty(); }
  void reset();
  void fail(const char* what, const char* file);  // file: a name in the spool directory
  bool write(int fd, const std::uint8_t* p, std::size_t n, std::uint64_t off);
  bool sync(int fd, bool data_only);

  // set by the Spool at open()
  Disk* m_disk = nullptr;
  int m_dir_fd = -1, m_cursor_fd = -1;
  bool m_sync = true;
  std::uint64_t m_spare_bytes = 0;
  std::unique_ptr<std::uint8_t[]> m_buf;
  std::size_t m_cap = 0;

  // the work
  std::size_t m_len = 0;
  Extent m_extents[2];
  int m_n_extents = 0;
  bool m_rotate = false;         // the spare becomes the last extent's segment
  std::uint64_t m_last_seq = 0;  // durable once this job completes (0: no records)
  std::uint64_t m_mark_seq = 0;  // the ack mark after the records (0: none)
  bool m_make_spare = false;
  bool m_write_cursor = false;
  std::uint64_t m_cursor_seq = 0, m_cursor_off = 0;  // the position, and which slot
  std::vector<std::uint64_t> m_unlinks;              // segments (first_seq) to delete; reserved

  // the outcome
  int m_spare_fd = -1;
  bool m_spare_no_space = false;
  int m_new_cursor_fd = -1;    // the "ack" file, made by this job (none could be at start)
  bool m_cursor_done = false;  // the cursor was written
  const char* m_failed_what = nullptr;
  int m_failed_errno = 0;
  char m_failed_file[24] = "";  // a name in the spool directory: no allocation on this thread
  std::uint64_t m_fsyncs = 0, m_bytes_written = 0;
};

class Spool {
 public:
  explicit Spool(Options options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Creates and locks the directory, recovers what is there, readies the next segment file.
  // On failure `error` says which path and why.
  bool open(std::string& error);

  // `ext`: what ages the record (format::RecordExt), written as the record's extension;
  // nullptr: none (a record as version 2 wrote them).
  Append append(std::string_view topic, std::span<const std::uint8_t> payload, std::uint8_t qos, bool retain,
                std::uint64_t received_ns, std::uint64_t& seq, const format::RecordExt* ext = nullptr);
  bool has_uncommitted() const { return m_next_seq - 1 > m_durable_seq; }

  // The work due now as a job (records appended since the last job, the next segment
  // file, deletions, and the cursor if cursor_due(now_ns)), or nullptr when there is none
  // or a job is still out. The Spool keeps owning it; hand it back to complete().
  Job* prepare(std::uint64_t now_ns);
  // Applies a job that ran. False if it failed (the spool is failed() from now on).
  bool complete(Job& job);
  bool job_out() const { return m_out != nullptr; }
  // prepare + run + complete on this thread, until nothing is due (not while a job is out).
  bool commit();

  // Upstream holds every record up to `seq`.
  void ack(std::uint64_t seq);
  // Acknowledgements wait that no ack mark or "ack" file covers, for k_cursor_interval_ns
  // (as of the last prepare()) or k_cursor_records of them: a job prepared now writes the
  // file.
  bool cursor_due(std::uint64_t now_ns) const;
  // Writes the cursor now if it moved (at shutdown): commit() with the cursor forced.
  bool persist_cursor();
  // Records below `seq` have been sent from memory: read_next() and drop-oldest's count
  // start there.
  void sent_up_to(std::uint64_t seq);
  // After the disk was full: try to reserve the next segment file again with the next job.
  void retry_spare() { m_spare_no_space = false; }
  // The last try to make the next segment's file found the disk full (ENOSPC, EDQUOT).
  bool disk_full() const { return m_spare_no_space; }

  // The next durable record with from <= seq < limit, its topic and payload read into
  // `buf`. end: nothing more below `limit` on disk.
  Read read_next(std::uint64_t from, std::uint64_t limit, std::span<std::uint8_t> buf, Record& out);

  bool failed() const { return m_failed; }
  // The file the job in flight writes (its records' segment, else the cursor, the next
  // segment's file or the directory), as a path into buf: for reports of a stalled disk.
  void describe_job(char* buf, std::size_t cap) const;
  const std::string& error() const { return m_error; }
  std::uint64_t next_seq() const { return m_next_seq; }
  std::uint64_t durable_seq() const { return m_durable_seq; }
  std::uint64_t acked_seq() const { return m_acked; }
  // Records appended and not yet acknowledged upstream.
  std::uint64_t backlog() const { return m_next_seq - 1 - m_acked; }
  // Acknowledged records that neither the "ack" file nor an ack mark in the last segment
  // covers yet (resent after a crash).
  std::uint64_t unpersisted_acks() const;
  std::uint64_t bytes() const { return m_bytes; }
  std::uint64_t max_bytes() const { return m_options.max_bytes; }
  std::uint64_t segment_bytes() const { return m_segment_bytes; }
  std::size_t segments() const { return m_segments.size(); }
  const Stats& stats() const { return m_stats; }
  const std::string& dir() const { return m_options.dir; }

 private:
  friend class Job;  // SegmentName
  struct Segment {
    std::uint64_t first_seq = 0;
    std::uint64_t size = 0;     // bytes, with the records appended but not yet written
    std::uint64_t written = 0;  // bytes on disk (synced when sync is on): replay reads below
    std::uint64_t mark = 0;     // the highest ack mark on disk in it
    bool header_ok = true;      // (recovery) its header checked out
    util::Fd fd;
  };

  bool recover(std::string& error);
  bool read_cursor(std::string& error);
  bool recover_tail(Segment& seg);
  bool open_segment_files(std::string& error);
  bool make_cursor_file(std::string& error);
  bool make_spare(std::string& error);
  void setup_jobs();
  void start_segment(Job& job);
  void add_to_extent(Job& job, Segment& seg, std::size_t bytes);
  void add_mark(Job& job);
  void drop_front(bool counted);
  bool front_is_durable() const;
  bool fail(const std::string& what, int err);
  // "NNNNNNNNNNNNNNNN.seg" in a fixed buffer: files are opened relative to m_dir_fd, so
  // rotating segments allocates nothing.
  struct SegmentName {
    explicit SegmentName(std::uint64_t first_seq);
    char text[24];
  };
  std::string segment_path(std::uint64_t first_seq) const;  // for startup errors
  std::uint64_t segment_end_seq(std::size_t index) const;   // one past its last sequence
  Segment* find_segment(std::uint64_t first_seq);

  // Reads [off, off+len) of a segment through the read buffer; false on a short read.
  bool read_at(const Segment& seg, std::uint64_t off, std::uint8_t* dst, std::size_t len);
  // The first record at or after `off` with a valid header that ends by `end`; `skipped`
  // gets the bytes passed over. False if there is none.
  bool find_record(const Segment& seg, std::uint64_t off, std::uint64_t end, format::RecordHeader& h, std::uint64_t& at,
                   std::uint64_t& skipped);
  bool body_ok(const Segment& seg, std::uint64_t at, const format::RecordHeader& h, std::uint8_t* dst);
  void note_corrupt(const Segment& seg, std::uint64_t at, std::uint64_t bytes, const char* why);

  Options m_options;
  Disk& m_disk;
  std::uint64_t m_segment_bytes = 0;
  util::Fd m_dir_fd;
  util::Fd m_lock_fd;
  util::Fd m_cursor_fd;
  std::vector<Segment> m_segments;  // oldest first; the last is the active one
  bool m_active_open = false;       // the last segment takes appends
  bool m_renamed = false;           // (recovery) a segment was renamed to its header's name

  util::Fd m_spare;                      // the next segment's file, blocks reserved ("spare")
  bool m_spare_no_space = false;         // the last try found the disk full
  std::vector<std::uint64_t> m_unlinks;  // segments dropped, to delete with the next job

  Job m_jobs[2];
  int m_filling = 0;     // m_jobs[m_filling] takes appends
  Job* m_out = nullptr;  // the job prepared and not yet completed

  std::uint64_t m_next_seq = 1;
  std::uint64_t m_durable_seq = 0;
  std::uint64_t m_acked = 0;
  std::uint64_t m_cursor_written = 0;    // what the "ack" file holds (or recovery found)
  std::uint64_t m_active_mark = 0;       // the position marked, or staged, in the active segment
  std::uint64_t m_waiting_since_ns = 0;  // acknowledgements wait unpersisted since (0: none wait)
  std::uint64_t m_prepared_ns = 0;       // the time the job out was prepared
  std::uint64_t m_cursor_off = 0;        // the slot the next write goes to
  bool m_cursor_forced = false;
  bool m_cursor_current = false;  // the file is in the two-slot form and holds m_cursor_written
  std::uint64_t m_sent = 0;       // records below this were sent from memory
  std::uint64_t m_bytes = 0;

  std::unique_ptr<std::uint8_t[]> m_rbuf;  // a window of one segment, for replay and scans
  std::size_t m_rbuf_cap = 0, m_rbuf_len = 0;
  std::uint64_t m_rbuf_seg = 0, m_rbuf_off = 0;  // which segment (first_seq) and where
  std::size_t m_read_index = 0;                  // replay position: segment and offset
  std::uint64_t m_read_off = format::k_segment_header;
  std::uint64_t m_scanned_seq = 0, m_scanned_end = 0;  // the part open() checked (and reported)
  bool m_after_bad_record = false;                     // replay is searching past a record that failed its checksum
  std::uint64_t m_read_last_seq = 0;                   // replay: the last good record of the segment being read
  bool m_read_damage = false;                          // ... and whether damage was passed since
  int m_read_errno = 0;                                // a read failed (EIO...): not damage, the spool fails

  bool m_failed = false;
  std::string m_error;
  Stats m_stats;
};

}  // namespace edgegw::spool
