#include "os/files.h"
#include <ftw.h>

#include <dirent.h>

#include <algorithm>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "os/status.h"

namespace berth {

absl::Status MakeDirs(absl::string_view path, mode_t mode) {
  if (path.empty()) return absl::InvalidArgumentError("mkdir: empty path");
  std::string p(path);
  struct stat st;
  if (::stat(p.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("mkdir `", p, "`: exists and is not a directory"));
  }
  size_t slash = p.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    BERTH_RETURN_IF_ERROR(MakeDirs(p.substr(0, slash), mode));
  }
  if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir", p);
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> LockFile(absl::string_view path) {
  std::string p(path);
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(p, O_RDWR | O_CREAT, 0600));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoStatus(errno, "flock", p);
    std::string holder = "another process";
    if (absl::StatusOr<std::string> text = ReadFile(p); text.ok()) {
      int pid;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid))
        holder = absl::StrCat("pid ", pid);
    }
    return absl::FailedPreconditionError(absl::StrCat("`", p, "` is locked by ", holder));
  }
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd.get(), 0) != 0) return ErrnoStatus(errno, "ftruncate", p);
  if (::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return ErrnoStatus(errno, "write", p);
  }
  return fd;
}

absl::StatusOr<SocketProbe> ProbeUnixSocket(absl::string_view path) {
  std::string p(path);
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return SocketProbe::kAbsent;
    return ErrnoStatus(errno, "stat", p);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("`", p, "` exists and is not a socket"));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (p.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket path `", p, "` is longer than ", sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return SocketProbe::kLive;
  }
  if (errno == ECONNREFUSED) return SocketProbe::kStale;
  // EAGAIN: a live listener with a full backlog is still live.
  if (errno == EAGAIN) return SocketProbe::kLive;
  return ErrnoStatus(errno, "connect", p);
}

absl::StatusOr<std::string> ReadFile(absl::string_view path) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir", path);
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    absl::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes, mode_t mode,
                                 bool durable) {
  const std::string tmp = path + ".tmp";
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write", tmp);
    }
    off += static_cast<size_t>(n);
  }
  if (durable && fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync", tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, "rename", tmp);
  return absl::OkStatus();
}

}  // namespace berth

namespace berth {
namespace {

int RemoveEntry(const char* path, const struct stat*, int type, struct FTW*) {
  int rc = (type == FTW_DP) ? rmdir(path) : unlink(path);
  return rc == 0 || errno == ENOENT ? 0 : errno;
}

}  // namespace

absl::Status RemoveTree(const std::string& path) {
  int rc = nftw(path.c_str(), RemoveEntry, 16, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
  if (rc == 0) return absl::OkStatus();
  if (rc == -1 && errno == ENOENT) return absl::OkStatus();
  return ErrnoStatus(rc > 0 ? rc : errno, "remove", path);
}

}  // namespace berth
