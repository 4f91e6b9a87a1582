#include "metrics/proc_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "os/files.h"
#include "os/status.h"

namespace berth::metrics {
namespace {

bool Exited(const absl::Status& s) { return s.code() == absl::StatusCode::kNotFound; }

// Counts the fds of one process and those that are sockets, each link read
// relative to the open fd dir (no path walk per fd). NOT_FOUND: it exited.
absl::Status CountFds(const std::string& fd_dir, ProcessStats& out) {
  DIR* d = ::opendir(fd_dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "opendir", fd_dir);
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[PATH_MAX];
    ssize_t n = ::readlinkat(::dirfd(d), e->d_name, target, sizeof(target) - 1);
    // An fd closed between readdir and readlink is simply gone.
    if (n < 0) continue;
    ++out.fds;
    if (absl::StartsWith(absl::string_view(target, n), "socket:[")) ++out.sockets;
  }
  ::closedir(d);
  return absl::OkStatus();
}

}  // namespace

ProcessStats ReadProcessStats(const std::vector<pid_t>& pids, absl::string_view proc_root,
                              bool threads) {
  ProcessStats out;
  for (pid_t pid : pids) {
    const std::string dir = absl::StrCat(proc_root, "/", pid);
    if (!threads) {
      absl::Status st = CountFds(dir + "/fd", out);
      if (st.ok()) {
        ++out.processes;
      } else if (!Exited(st)) {
        out.errors.push_back(st);
      }
      continue;
    }
    absl::StatusOr<std::string> status = ReadFile(dir + "/status");
    if (!status.ok()) {
      if (!Exited(status.status())) out.errors.push_back(status.status());
      continue;
    }
    absl::StatusOr<uint64_t> threads = ParseStatusThreads(*status);
    if (!threads.ok()) {
      out.errors.push_back(Annotate(threads.status(), dir + "/status"));
      continue;
    }
    ++out.processes;
    out.threads += *threads;
    if (absl::Status st = CountFds(dir + "/fd", out); !st.ok() && !Exited(st)) {
      out.errors.push_back(st);
    }
  }
  return out;
}

absl::StatusOr<std::vector<NetInterfaceStats>> ReadNetDev(pid_t pid, absl::string_view proc_root) {
  const std::string path = absl::StrCat(proc_root, "/", pid, "/net/dev");
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<std::vector<NetInterfaceStats>> ifaces = ParseNetDev(text);
  if (!ifaces.ok()) return Annotate(ifaces.status(), path);
  return ifaces;
}

absl::StatusOr<uint64_t> CountOpenFds(const std::string& fd_dir) {
  // Linux >= 6.2 reports a /proc/<pid>/fd directory's open fds as its size;
  // anywhere else (an older kernel, a fake tree) they are listed.
  struct statfs fs;
  struct stat st;
  if (::statfs(fd_dir.c_str(), &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC &&
      ::stat(fd_dir.c_str(), &st) == 0 && st.st_size > 0) {
    return static_cast<uint64_t>(st.st_size);
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> fds, ListDir(fd_dir));
  return fds.size();
}

}  // namespace berth::metrics
