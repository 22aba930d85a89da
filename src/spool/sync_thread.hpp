// SyncThread: the one thread that does the spool's disk work (Job::run: writes, fdatasync,
// renames, the cursor), so that the event loop never waits for the disk. The loop submits
// one job at a time; the thread runs it and signals an eventfd the loop watches (fd());
// the loop then takes the job back and hands it to Spool::complete() itself. Whatever
// arrives meanwhile fills the spool's other job, which is submitted next: a group commit
// with no fixed wait.
//
// A handoff costs two eventfd writes and two reads: no lock is shared, so neither side
// ever waits for the other except on purpose (wait_done, at shutdown).
//
// Every method is for the loop thread. Nothing allocates after start().
#pragma once

#include <pthread.h>

#include <atomic>
#include <string>

#include "spool/spool.hpp"
#include "util/fd.hpp"

namespace edgegw::spool {

class SyncThread {
 public:
  SyncThread() = default;
  // Waits for the job in flight, then ends the thread.
  ~SyncThread();
  SyncThread(const SyncThread&) = delete;
  SyncThread& operator=(const SyncThread&) = delete;

  // Creates the eventfds and starts the thread. False with `error` if it could not.
  bool start(std::string& error);
  // Readable when a job finished.
  int fd() const { return m_done_event.get(); }

  // Hands `job` to the thread; only while !busy().
  void submit(Job& job);
  // A job was submitted and not yet taken back.
  bool busy() const { return m_busy; }
  // The finished job (clearing the eventfd), or nullptr while it still runs.
  Job* take_done();
  // Blocks until the job in flight finished, and returns it (nullptr if none): shutdown.
  Job* wait_done();

 private:
  void main();

  util::Fd m_todo_event, m_done_event;  // loop -> thread, thread -> loop
  pthread_t m_thread{};
  bool m_started = false;             // pthread_create, not std::thread: its failure is an errno, not an exception
  std::atomic<Job*> m_todo{nullptr};  // set by the loop, taken by the thread
  std::atomic<Job*> m_done{nullptr};  // set by the thread, taken by the loop
  std::atomic<bool> m_stop{false};
  bool m_busy = false;  // the loop's own view
};

}  // namespace edgegw::spool
