// Signals as an fd in the event loop (signalfd): SIGTERM, SIGINT (stop) and SIGHUP (reload)
// are blocked for the process and delivered to on_signal() from the loop.
#pragma once

#include "event/loop.hpp"
#include "util/fd.hpp"

namespace edgegw::event {

class SignalWatcher : private IoHandler {
 public:
  class Handler {
   public:
    virtual void on_signal(int signo) = 0;

   protected:
    ~Handler() = default;
  };

  // Blocks SIGTERM/SIGINT/SIGHUP (and ignores SIGPIPE: write errors come back as EPIPE).
  SignalWatcher(Loop& loop, Handler& handler);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  void on_io(std::uint32_t events) override;
  Loop& m_loop;
  Handler& m_handler;
  util::Fd m_fd;
};

}  // namespace edgegw::event
