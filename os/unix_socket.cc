#include "os/unix_socket.h"

#include <errno.h>
#include <fcntl.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "os/status.h"

namespace berth {

absl::StatusOr<UnixAddress> UnixAddress::For(const std::string& path) {
  UnixAddress a;
  a.addr_.sun_family = AF_UNIX;
  std::string name = path;
  if (path.size() >= sizeof(a.addr_.sun_path)) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) {
      return absl::InvalidArgumentError(absl::StrCat("socket path `", path, "` is too long"));
    }
    const std::string dir = path.substr(0, slash);
    a.dir_ = UniqueFd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!a.dir_) return ErrnoStatus(errno, "open", dir);
    name = absl::StrCat("/proc/self/fd/", a.dir_.get(), path.substr(slash));
    if (name.size() >= sizeof(a.addr_.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("socket name in `", path, "` is too long"));
    }
  }
  memcpy(a.addr_.sun_path, name.c_str(), name.size() + 1);
  return a;
}

absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(UnixAddress addr, UnixAddress::For(path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (connect(fd.get(), addr.sockaddr(), addr.length()) != 0) {
    return ErrnoStatus(errno, "connect", path);
  }
  return fd;
}

}  // namespace berth
