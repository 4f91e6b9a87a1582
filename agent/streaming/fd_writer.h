// Writes to an fd on a thread of its own, so a session's reader never blocks on
// a slow pipe, terminal or socket (a process that does not read its stdin, a
// pod server that does not read). What is queued is bounded: Push waits while
// more than `limit` bytes are queued, and the client's further bytes wait in
// its TCP window meanwhile.
//
//   FdWriter in(stdin_fd, /*socket=*/false, 1 << 20, [&] { close_stdin(); });
//   in.Push(bytes, give_up);   // false: the fd failed, or give_up() said so
//   in.Finish();               // after the queue: at_end() (EOF)
//   in.Stop();                 // drop the queue, join the thread (the destructor too)
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "os/unique_fd.h"

namespace berth::streaming {

class FdWriter {
 public:
  // `fd` stays the caller's. A socket is written with MSG_DONTWAIT; anything
  // else is made O_NONBLOCK. `at_end` runs on the writer's thread once
  // Finish()'s queue is written (not after a failure or Stop()).
  FdWriter(int fd, bool socket, size_t limit, std::function<void()> at_end);
  ~FdWriter();
  FdWriter(const FdWriter&) = delete;
  FdWriter& operator=(const FdWriter&) = delete;

  // Queues `bytes`; while the queue is full, waits, asking `give_up` every
  // 100 ms. False when the fd failed (EPIPE...), Stop() ran, or it gave up.
  bool Push(absl::string_view bytes, const std::function<bool()>& give_up);
  void Finish();
  void Stop();

 private:
  void Run();

  const int fd_;
  const bool socket_;
  const size_t limit_;
  std::function<void()> at_end_;
  UniqueFd stop_fd_;  // eventfd: wakes a write waiting for POLLOUT
  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace berth::streaming
