#include "agent/runtime/monitor.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "os/log.h"
#include "os/status.h"
#include "os/unix_socket.h"
#include "shim/client.h"
#include "shim/protocol.h"

namespace berth::lifecycle {

ExitMonitor::ExitMonitor()
    : epoll_(epoll_create1(EPOLL_CLOEXEC)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = wake_.get();
  epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
  thread_ = std::thread([this] { Loop(); });
}

ExitMonitor::~ExitMonitor() {
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
  thread_.join();
}

absl::Status ExitMonitor::Watch(const std::string& socket_path, Callback callback) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(socket_path));
  BERTH_RETURN_IF_ERROR(shim::WriteFrame(fd.get(), shim::WaitRequest()));
  int raw = fd.get();
  absl::MutexLock lock(&mu_);
  struct epoll_event ev = {};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = raw;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev) != 0) {
    return ErrnoStatus(errno, "epoll_ctl ADD");
  }
  watches_.emplace(raw, std::make_pair(std::move(fd), std::move(callback)));
  return absl::OkStatus();
}

size_t ExitMonitor::watching() const {
  absl::MutexLock lock(&mu_);
  return watches_.size();
}

void ExitMonitor::Loop() {
  struct epoll_event events[32];
  while (true) {
    int n = epoll_wait(epoll_.get(), events, 32, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      BERTH_LOG(ERROR) << "exit monitor: epoll_wait: " << strerror(errno);
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_.get()) return;
      std::pair<UniqueFd, Callback> watch;
      {
        absl::MutexLock lock(&mu_);
        auto it = watches_.find(fd);
        if (it == watches_.end()) continue;
        watch = std::move(it->second);
        watches_.erase(it);
      }
      epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      // Readable: the whole answer is there or the shim hung up. ReadFrame
      // blocks only for the rest of a frame the shim is writing.
      shim::v1::Response response;
      absl::Status read = shim::ReadFrame(watch.first.get(), response);
      if (read.ok() && response.code() != 0) {
        read = absl::Status(static_cast<absl::StatusCode>(response.code()), response.message());
      }
      watch.first.reset();
      if (read.ok()) {
        watch.second(response.exit());
      } else {
        watch.second(read);
      }
    }
  }
}

}  // namespace berth::lifecycle
