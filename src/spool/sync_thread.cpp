#include "spool/sync_thread.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace edgegw::spool {
namespace {

void signal(int fd) {
  const std::uint64_t one = 1;
  ssize_t ignored = ::write(fd, &one, sizeof one);  // cannot fail short of a closed fd
  (void)ignored;
}

}  // namespace

SyncThread::~SyncThread() {
  if (!m_started) return;
  m_stop.store(true, std::memory_order_release);
  signal(m_todo_event.get());
  ::pthread_join(m_thread, nullptr);  // after the job in flight, if any
}

bool SyncThread::start(std::string& error) {
  m_todo_event.reset(::eventfd(0, EFD_CLOEXEC));  // the thread blocks reading it
  m_done_event.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!m_todo_event || !m_done_event) {
    error = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  const int failed = ::pthread_create(
      &m_thread, nullptr,
      [](void* self) -> void* {
        static_cast<SyncThread*>(self)->main();
        return nullptr;
      },
      this);
  if (failed) {
    error = std::string("starting the spool's sync thread: ") + std::strerror(failed);
    return false;
  }
  m_started = true;
  return true;
}

void SyncThread::main() {
  for (;;) {
    // Looked at before every wait: one read may take several signals at once.
    if (Job* job = m_todo.exchange(nullptr, std::memory_order_acquire)) {
      job->run();
      m_done.store(job, std::memory_order_release);
      signal(m_done_event.get());
      continue;
    }
    if (m_stop.load(std::memory_order_acquire)) return;
    std::uint64_t count;
    ssize_t ignored = ::read(m_todo_event.get(), &count, sizeof count);  // blocks until signalled
    (void)ignored;
  }
}

void SyncThread::submit(Job& job) {
  m_busy = true;
  m_todo.store(&job, std::memory_order_release);
  signal(m_todo_event.get());
}

Job* SyncThread::take_done() {
  std::uint64_t count;
  ssize_t ignored = ::read(m_done_event.get(), &count, sizeof count);  // EAGAIN when nothing is signalled
  (void)ignored;
  Job* job = m_done.exchange(nullptr, std::memory_order_acquire);
  if (job) m_busy = false;
  return job;
}

Job* SyncThread::wait_done() {
  if (!m_busy) return nullptr;
  for (;;) {
    if (Job* job = take_done()) return job;
    pollfd p{m_done_event.get(), POLLIN, 0};
    ::poll(&p, 1, -1);
  }
}

}  // namespace edgegw::spool
