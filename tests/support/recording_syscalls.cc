#include "tests/support/recording_syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace berth::testing {
namespace {

struct FlagName {
  unsigned long flag;
  const char* name;
};

// In bit order, so a record reads the same whatever order the code ORed them in.
constexpr FlagName kMountFlags[] = {
    {MS_RDONLY, "MS_RDONLY"},
    {MS_NOSUID, "MS_NOSUID"},
    {MS_NODEV, "MS_NODEV"},
    {MS_NOEXEC, "MS_NOEXEC"},
    {MS_SYNCHRONOUS, "MS_SYNCHRONOUS"},
    {MS_REMOUNT, "MS_REMOUNT"},
    {MS_MANDLOCK, "MS_MANDLOCK"},
    {MS_DIRSYNC, "MS_DIRSYNC"},
    {MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"},
    {MS_NOATIME, "MS_NOATIME"},
    {MS_NODIRATIME, "MS_NODIRATIME"},
    {MS_BIND, "MS_BIND"},
    {MS_MOVE, "MS_MOVE"},
    {MS_REC, "MS_REC"},
    {MS_SILENT, "MS_SILENT"},
    {MS_POSIXACL, "MS_POSIXACL"},
    {MS_UNBINDABLE, "MS_UNBINDABLE"},
    {MS_PRIVATE, "MS_PRIVATE"},
    {MS_SLAVE, "MS_SLAVE"},
    {MS_SHARED, "MS_SHARED"},
    {MS_RELATIME, "MS_RELATIME"},
    {MS_KERNMOUNT, "MS_KERNMOUNT"},
    {MS_I_VERSION, "MS_I_VERSION"},
    {MS_STRICTATIME, "MS_STRICTATIME"},
    {MS_LAZYTIME, "MS_LAZYTIME"},
};

constexpr FlagName kUmountFlags[] = {
    {MNT_FORCE, "MNT_FORCE"},
    {MNT_DETACH, "MNT_DETACH"},
    {MNT_EXPIRE, "MNT_EXPIRE"},
    {UMOUNT_NOFOLLOW, "UMOUNT_NOFOLLOW"},
};

constexpr FlagName kCloneFlags[] = {
    {CLONE_NEWTIME, "CLONE_NEWTIME"},     {CLONE_NEWNS, "CLONE_NEWNS"},
    {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {CLONE_NEWUTS, "CLONE_NEWUTS"},
    {CLONE_NEWIPC, "CLONE_NEWIPC"},       {CLONE_NEWUSER, "CLONE_NEWUSER"},
    {CLONE_NEWPID, "CLONE_NEWPID"},       {CLONE_NEWNET, "CLONE_NEWNET"},
};

template <size_t N>
std::string FlagsString(unsigned long flags, const FlagName (&names)[N]) {
  if (flags == 0) return "0";
  std::vector<std::string> parts;
  for (const FlagName& f : names) {
    if ((flags & f.flag) == f.flag) {
      parts.push_back(f.name);
      flags &= ~f.flag;
    }
  }
  if (flags != 0) parts.push_back(absl::StrFormat("0x%x", flags));
  return absl::StrJoin(parts, "|");
}

const char* Or(const char* s) { return s == nullptr ? "-" : (*s == '\0' ? "\"\"" : s); }

char FileType(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFCHR:
      return 'c';
    case S_IFBLK:
      return 'b';
    case S_IFIFO:
      return 'p';
    case S_IFSOCK:
      return 's';
    case S_IFDIR:
      return 'd';
    default:
      return '-';
  }
}

}  // namespace

std::string MountFlagsString(unsigned long flags) { return FlagsString(flags, kMountFlags); }

std::string UmountFlagsString(int flags) {
  return FlagsString(static_cast<unsigned int>(flags), kUmountFlags);
}

std::string CloneFlagsString(int flags) {
  return FlagsString(static_cast<unsigned int>(flags), kCloneFlags);
}

void RecordingSyscalls::FailOn(std::string substring, int err) {
  failures_.push_back(Failure{std::move(substring), err});
}

std::vector<std::string> RecordingSyscalls::PendingFailures() const {
  std::vector<std::string> pending;
  for (const Failure& f : failures_) {
    if (!f.fired) pending.push_back(f.substring);
  }
  return pending;
}

void RecordingSyscalls::SetMountFlags(std::string path, unsigned long flags) {
  mount_flags_[std::move(path)] = flags;
}

std::map<int, std::string> RecordingSyscalls::open_fds() const {
  std::map<int, std::string> open;
  for (const auto& [fd, f] : fds_) {
    if (f.open) open.emplace(fd, f.path);
  }
  return open;
}

int RecordingSyscalls::Record(std::string call) {
  int err = 0;
  for (Failure& f : failures_) {
    if (!f.fired && call.find(f.substring) != std::string::npos) {
      f.fired = true;
      err = f.err;
      break;
    }
  }
  calls_.push_back(std::move(call));
  return err;
}

std::string RecordingSyscalls::Show(const char* path) const {
  if (path == nullptr) return "-";
  absl::string_view rest = path;
  int fd = -1;
  if (absl::ConsumePrefix(&rest, "/proc/self/fd/")) {
    // "/proc/self/fd/<n>" or "/proc/self/fd/<n>/<name>" (a name in that directory).
    size_t slash = rest.find('/');
    absl::string_view name = slash == absl::string_view::npos ? "" : rest.substr(slash + 1);
    auto it = absl::SimpleAtoi(rest.substr(0, slash), &fd) ? fds_.find(fd) : fds_.end();
    if (it != fds_.end()) {
      if (!it->second.open) return absl::StrCat("<closed fd ", fd, ">");
      if (name.empty()) return it->second.path;
      return absl::StrCat(it->second.path == "/" ? "" : it->second.path, "/", name);
    }
  }
  return Or(path);
}

int RecordingSyscalls::Mount(const char* source, const char* target, const char* fstype,
                             unsigned long flags, const char* data) {
  return Record(absl::StrCat("mount ", Show(source), " -> ", Show(target), " type=", Or(fstype),
                             " flags=", MountFlagsString(flags), " data=", Or(data)));
}

int RecordingSyscalls::Umount2(const char* target, int flags) {
  return Record(absl::StrCat("umount2 ", Show(target), " ", UmountFlagsString(flags)));
}

int RecordingSyscalls::OpenInRoot(int root_fd, const char* path, bool directory, int* fd) {
  std::string call;
  if (root_fd == AT_FDCWD) {
    call = "open ";
  } else if (fds_.count(root_fd) != 0 && fds_.at(root_fd).open) {
    call = "open_in_root ";
  } else {
    call = absl::StrCat("open_in_root fd=", root_fd, " ");
  }
  absl::StrAppend(&call, Show(path), directory ? " dir" : " file");
  if (int err = Record(std::move(call))) return err;
  *fd = next_fd_++;
  fds_[*fd] = FakeFd{Show(path)};
  return 0;
}

int RecordingSyscalls::Close(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end() || !it->second.open) return Record(absl::StrCat("close fd=", fd));
  it->second.open = false;
  return Record(absl::StrCat("close ", it->second.path));
}

int RecordingSyscalls::Mknod(const char* path, mode_t mode, dev_t dev) {
  return Record(absl::StrFormat("mknod %s %c %u:%u %04o", Show(path), FileType(mode), major(dev),
                                minor(dev), mode & 07777));
}

int RecordingSyscalls::Symlink(const char* target, const char* link) {
  return Record(absl::StrCat("symlink ", Or(target), " <- ", Show(link)));
}

int RecordingSyscalls::Chown(const char* path, uid_t uid, gid_t gid) {
  return Record(absl::StrCat("chown ", Show(path), " ", uid, ":", gid));
}

int RecordingSyscalls::PivotRoot(const char* new_root, const char* put_old) {
  return Record(absl::StrCat("pivot_root ", Show(new_root), " ", Show(put_old)));
}

int RecordingSyscalls::Chdir(const char* path) {
  return Record(absl::StrCat("chdir ", Show(path)));
}

int RecordingSyscalls::Fchdir(int fd) {
  auto it = fds_.find(fd);
  if (it == fds_.end() || !it->second.open) return Record(absl::StrCat("fchdir fd=", fd));
  return Record(absl::StrCat("fchdir ", it->second.path));
}

int RecordingSyscalls::MountFlags(const char* path, unsigned long* flags) {
  const std::string shown = Show(path);
  if (int err = Record(absl::StrCat("mount_flags ", shown))) return err;
  auto it = mount_flags_.find(shown);
  *flags = it == mount_flags_.end() ? default_mount_flags_ : it->second;
  return 0;
}

int RecordingSyscalls::IsDirectory(const char* path, bool* dir) {
  const std::string shown = Show(path);
  if (int err = Record(absl::StrCat("is_directory ", shown))) return err;
  if (dirs_.count(shown) != 0) {
    *dir = true;
  } else if (files_.count(shown) != 0) {
    *dir = false;
  } else {
    return ENOENT;
  }
  return 0;
}

int RecordingSyscalls::Sethostname(const char* name, size_t len) {
  return Record(absl::StrCat("sethostname ", absl::string_view(name, len)));
}

int RecordingSyscalls::WriteFile(const char* path, const char* data, size_t len) {
  return Record(absl::StrCat("write_file ", Show(path), " ", absl::string_view(data, len)));
}

int RecordingSyscalls::Setns(int fd, int nstype) {
  return Record(absl::StrCat("setns fd=", fd, " ", CloneFlagsString(nstype)));
}

int RecordingSyscalls::Unshare(int flags) {
  return Record(absl::StrCat("unshare ", CloneFlagsString(flags)));
}

}  // namespace berth::testing
