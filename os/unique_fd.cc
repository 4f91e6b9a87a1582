#include "os/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "os/status.h"

namespace berth {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) {
    int saved = errno;
    ::close(fd_);  // Not retried on EINTR: see the header.
    errno = saved;
  }
  fd_ = fd;
}

absl::StatusOr<UniqueFd> OpenFile(absl::string_view path, int flags, int mode) {
  std::string p(path);
  int fd = ::open(p.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, "open", p);
  return UniqueFd(fd);
}

}  // namespace berth
