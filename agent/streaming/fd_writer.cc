#include "agent/streaming/fd_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace berth::streaming {

FdWriter::FdWriter(int fd, bool socket, size_t limit, std::function<void()> at_end)
    : fd_(fd), socket_(socket), limit_(limit), at_end_(std::move(at_end)) {
  stop_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!socket_) fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  thread_ = std::thread([this] { Run(); });
}

FdWriter::~FdWriter() { Stop(); }

bool FdWriter::Push(absl::string_view bytes, const std::function<bool()>& give_up) {
  absl::MutexLock lock(&mu_);
  auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queued_ < limit_ || stop_ || failed_;
  };
  while (!mu_.AwaitWithTimeout(absl::Condition(&room), absl::Milliseconds(100))) {
    mu_.Unlock();
    const bool quit = give_up();
    mu_.Lock();
    if (quit) return false;
  }
  if (stop_ || failed_ || finish_) return false;
  if (bytes.empty()) return true;
  queue_.emplace_back(bytes.data(), bytes.size());
  queued_ += bytes.size();
  return true;
}

void FdWriter::Finish() {
  absl::MutexLock lock(&mu_);
  finish_ = true;
}

void FdWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!write(stop_fd_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void FdWriter::Run() {
  // A pipe whose reader is gone raises SIGPIPE at the writing thread: blocked
  // here, the write fails with EPIPE instead (berthd also ignores it; a test
  // process need not).
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (true) {
    std::string chunk;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || finish_ || stop_;
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      if (queue_.empty()) break;  // finished and drained
      chunk = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::string_view rest = chunk;
    while (!rest.empty()) {
      ssize_t n = socket_ ? send(fd_, rest.data(), rest.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                          : write(fd_, rest.data(), rest.size());
      if (n > 0) {
        rest.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        struct pollfd p[2] = {{fd_, POLLOUT, 0}, {stop_fd_.get(), POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents != 0) return;  // stopped
        continue;
      }
      absl::MutexLock lock(&mu_);
      failed_ = true;  // EPIPE, a reset socket: the rest is dropped
      queue_.clear();
      queued_ = 0;
      return;
    }
    absl::MutexLock lock(&mu_);
    queued_ -= chunk.size();
  }
  if (at_end_) at_end_();
}

}  // namespace berth::streaming
