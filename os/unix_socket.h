// Unix socket addresses for paths of any length.
//
// sockaddr_un holds at most 107 bytes of path (unix(7)), and berthd's paths
// (<state dir>/containers/<64 hex id>/shim.sock) come close to that, or pass
// it under a deep --state-dir. A longer path is reached through its directory:
// an O_PATH fd on the parent, and the address "/proc/self/fd/<fd>/<name>",
// which bind(2) and connect(2) resolve like any path. The fd lives in the
// returned struct and must stay open until bind or connect has returned.
//
//   BERTH_ASSIGN_OR_RETURN(UnixAddress a, UnixAddress::For(path));
//   connect(fd, a.sockaddr(), a.length());
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>

#include "absl/status/statusor.h"
#include "os/unique_fd.h"

namespace berth {

class UnixAddress {
 public:
  static absl::StatusOr<UnixAddress> For(const std::string& path);

  const struct sockaddr* sockaddr() const {
    return reinterpret_cast<const struct sockaddr*>(&addr_);
  }
  socklen_t length() const { return sizeof(addr_); }

 private:
  struct sockaddr_un addr_ = {};
  UniqueFd dir_;
};

// A connected SOCK_STREAM socket (SOCK_CLOEXEC) to `path`.
absl::StatusOr<UniqueFd> ConnectUnix(const std::string& path);

}  // namespace berth
