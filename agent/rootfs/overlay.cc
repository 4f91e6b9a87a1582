#include "agent/rootfs/overlay.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::rootfs {
namespace {

using internal::OverlayNames;

// Overlays stacked on one target that UnmountOverlay takes off before giving up.
constexpr int kMaxStackedMounts = 16;

std::atomic<bool> force_legacy_mount{false};

bool IsAbsolutePath(const std::string& path) {
  return !path.empty() && path[0] == '/' && path.find('\0') == std::string::npos;
}

absl::Status CheckAbsolute(absl::string_view field, const std::string& path) {
  if (IsAbsolutePath(path)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " `", path, "`: not an absolute path"));
}

// An O_PATH fd on a layer directory: proof that it exists and is a directory,
// and a short name for it (/proc/self/fd/N) while the fd lives.
absl::StatusOr<UniqueFd> OpenDir(absl::string_view field, const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (fd) return fd;
  int err = errno;
  if (err == ENOTDIR) {
    return absl::InvalidArgumentError(absl::StrCat(field, " `", path, "`: not a directory"));
  }
  return Annotate(ErrnoStatus(err, "open", path), field);
}

// The id of the mount `fd` is on (proc(5), /proc/pid/fdinfo), or -1 if unknown.
int MountId(int fd) {
  absl::StatusOr<std::string> text = ReadFile(absl::StrCat("/proc/self/fdinfo/", fd));
  if (!text.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    int id;
    if (absl::ConsumePrefix(&line, "mnt_id:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &id)) {
      return id;
    }
  }
  return -1;
}

// The messages the kernel logged on an fs context ("e overlay: ..."), one per
// read(2) until ENODATA (fsopen(2), "Message retrieval interface").
std::string ReadFsLog(int fs_fd) {
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = read(fs_fd, buf, sizeof(buf));
    if (n <= 0) break;
    absl::string_view line(buf, static_cast<size_t>(n));
    while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (line.size() > 2 && line[1] == ' ') line.remove_prefix(2);  // "e ", "w ", "i "
    absl::StrAppend(&out, out.empty() ? "" : "; ", line);
  }
  return out;
}

// errno, the step, and the kernel's words: the fs context's log when `fs_fd`
// has one, else "see dmesg" (mount(2), and overlay's superblock checks: pr_err).
absl::Status KernelError(int err, absl::string_view step, absl::string_view path, int fs_fd = -1) {
  absl::Status status = ErrnoStatus(err, step, path);
  std::string log = fs_fd >= 0 ? ReadFsLog(fs_fd) : "";
  return absl::Status(
      status.code(),
      absl::StrCat(status.message(), " (kernel: ", log.empty() ? "see dmesg" : log, ")"));
}

struct Attempt {
  absl::Status status;
  bool try_legacy = false;  // the kernel may just lack what we asked (EINVAL, ENOSYS)
};

// fsopen, fsconfig per option, FSCONFIG_CMD_CREATE, fsmount, move_mount.
Attempt MountNewApi(const OverlayNames& names, const std::string& target, bool readonly,
                    bool volatile_upper) {
  UniqueFd fs(fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs) {
    int err = errno;
    return {ErrnoStatus(err, "fsopen", "overlay"), err == ENOSYS};
  }
  auto set = [&fs](const char* key, const std::string& value) -> Attempt {
    if (fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) == 0) return {};
    int err = errno;
    return {KernelError(err, absl::StrCat("fsconfig ", key), value, fs.get()), err == EINVAL};
  };
  if (Attempt a = set("source", "overlay"); !a.status.ok()) return a;
  for (const std::string& lower : names.lower) {
    if (Attempt a = set("lowerdir+", lower); !a.status.ok()) return a;
  }
  if (!names.upper.empty()) {
    if (Attempt a = set("upperdir", names.upper); !a.status.ok()) return a;
    if (Attempt a = set("workdir", names.work); !a.status.ok()) return a;
    // Every kernel with "lowerdir+" (6.8) has "volatile" (5.10).
    if (volatile_upper && fsconfig(fs.get(), FSCONFIG_SET_FLAG, "volatile", nullptr, 0) != 0) {
      return {KernelError(errno, "fsconfig volatile", target, fs.get())};
    }
  }
  if (fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    int err = errno;
    return {KernelError(err, "fsconfig FSCONFIG_CMD_CREATE", target, fs.get()), err == EINVAL};
  }
  UniqueFd mnt(fsmount(fs.get(), FSMOUNT_CLOEXEC, readonly ? MOUNT_ATTR_RDONLY : 0));
  if (!mnt) return {KernelError(errno, "fsmount", target, fs.get())};
  // Until it is moved, the mount is detached: closing `mnt` on error frees it.
  if (move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return {ErrnoStatus(errno, "move_mount", target)};
  }
  return {};
}

absl::Status MountLegacy(const OverlayNames& paths, const OverlayNames& fd_paths,
                         const std::string& target, bool readonly, bool volatile_upper) {
  BERTH_ASSIGN_OR_RETURN(std::string data, internal::LegacyMountData(paths, fd_paths));
  unsigned long flags = readonly ? MS_RDONLY : 0;
  // "volatile" where the kernel has it (5.10) and the page has room for it.
  constexpr absl::string_view kVolatile = ",volatile";
  if (volatile_upper && !paths.upper.empty() &&
      data.size() + kVolatile.size() <= internal::kMaxMountData) {
    const std::string with = absl::StrCat(data, kVolatile);
    if (mount("overlay", target.c_str(), "overlay", flags, with.c_str()) == 0) {
      return absl::OkStatus();
    }
    if (errno != EINVAL) return KernelError(errno, "mount overlay on", target);
  }
  if (mount("overlay", target.c_str(), "overlay", flags, data.c_str()) != 0) {
    return KernelError(errno, "mount overlay on", target);
  }
  return absl::OkStatus();
}

// rm -rf of `name` in `parent_fd`: never follows a symlink (a container owns
// what is in its upper dir) and refuses to enter another file system (`dev`).
absl::Status RemoveTreeAt(int parent_fd, const std::string& name, const std::string& path,
                          dev_t dev) {
  struct stat st;
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "fstatat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev) {
      return absl::FailedPreconditionError(
          absl::StrCat("remove `", path, "`: on another file system (a mount?), not entered"));
    }
    UniqueFd fd(openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return ErrnoStatus(errno, "open", path);
    DIR* dir = fdopendir(fd.get());
    if (dir == nullptr) return ErrnoStatus(errno, "fdopendir", path);
    (void)fd.release();  // closedir closes it
    absl::Cleanup close_dir = [dir] { closedir(dir); };
    std::vector<std::string> children;
    errno = 0;
    while (dirent* entry = readdir(dir)) {
      absl::string_view child = entry->d_name;
      if (child != "." && child != "..") children.emplace_back(child);
    }
    if (errno != 0) return ErrnoStatus(errno, "readdir", path);
    for (const std::string& child : children) {
      BERTH_RETURN_IF_ERROR(RemoveTreeAt(dirfd(dir), child, absl::StrCat(path, "/", child), dev));
    }
  }
  int flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
  if (unlinkat(parent_fd, name.c_str(), flags) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, flags ? "rmdir" : "unlink", path);
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "lstat", path);
  }
  size_t slash = path.rfind('/');
  std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  BERTH_ASSIGN_OR_RETURN(UniqueFd parent_fd, OpenDir("parent", parent));
  return RemoveTreeAt(parent_fd.get(), path.substr(slash + 1), path, st.st_dev);
}

// mkdir with exactly `mode` (umask does not apply: <dir>/upper's mode becomes
// the mode of the container's "/"). True when this call made it.
absl::StatusOr<bool> MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0) {
    int err = errno;
    struct stat st;
    if (err == EEXIST && stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return false;
    return ErrnoStatus(err, "mkdir", path);
  }
  if (chmod(path.c_str(), mode) != 0) return ErrnoStatus(errno, "chmod", path);
  return true;
}

}  // namespace

namespace internal {

absl::Status CheckSpec(const OverlaySpec& spec) {
  if (spec.lower_dirs.empty()) {
    return absl::InvalidArgumentError("lower_dirs: an overlay needs at least one layer");
  }
  for (size_t i = 0; i < spec.lower_dirs.size(); ++i) {
    BERTH_RETURN_IF_ERROR(CheckAbsolute(absl::StrCat("lower_dirs[", i, "]"), spec.lower_dirs[i]));
  }
  if (spec.upper_dir.empty() != spec.work_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("upper_dir `", spec.upper_dir,
                                                   "` and work_dir `", spec.work_dir,
                                                   "`: give both or neither"));
  }
  if (spec.upper_dir.empty()) {
    if (!spec.readonly) {
      return absl::InvalidArgumentError(
          "upper_dir: a writable overlay needs upper_dir and work_dir (or readonly)");
    }
    if (spec.lower_dirs.size() < 2) {
      return absl::InvalidArgumentError(
          "lower_dirs: an overlay without upper_dir needs at least two layers");
    }
  } else {
    BERTH_RETURN_IF_ERROR(CheckAbsolute("upper_dir", spec.upper_dir));
    BERTH_RETURN_IF_ERROR(CheckAbsolute("work_dir", spec.work_dir));
  }
  BERTH_RETURN_IF_ERROR(CheckAbsolute("target", spec.target));
  if (spec.target.find_first_not_of('/') == std::string::npos) {
    return absl::InvalidArgumentError("target `/`: refusing to mount over the root");
  }
  return absl::OkStatus();
}

std::string FdPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

OverlayNames NewApiNames(const OverlayNames& paths, const OverlayNames& fd_paths) {
  auto pick = [](std::string value, const std::string& fd_path) {
    return value.size() <= kMaxFsconfigValue ? value : fd_path;
  };
  auto escaped = [](const std::string& path) {
    return absl::StrReplaceAll(path, {{"\\", "\\\\"}});
  };
  OverlayNames out;
  for (size_t i = 0; i < paths.lower.size(); ++i) {
    out.lower.push_back(pick(paths.lower[i], fd_paths.lower[i]));
  }
  if (!paths.upper.empty()) {
    out.upper = pick(escaped(paths.upper), fd_paths.upper);
    out.work = pick(escaped(paths.work), fd_paths.work);
  }
  return out;
}

absl::StatusOr<std::string> JoinMountData(const OverlayNames& names) {
  auto check = [](absl::string_view field, const std::string& name) -> absl::Status {
    if (name.find_first_of(":,\\") == std::string::npos) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        field, " `", name, "`: holds ':', ',' or '\\', separators in mount(2) overlay options"));
  };
  for (size_t i = 0; i < names.lower.size(); ++i) {
    BERTH_RETURN_IF_ERROR(check(absl::StrCat("lower_dirs[", i, "]"), names.lower[i]));
  }
  BERTH_RETURN_IF_ERROR(check("upper_dir", names.upper));
  BERTH_RETURN_IF_ERROR(check("work_dir", names.work));
  std::string data = absl::StrCat("lowerdir=", absl::StrJoin(names.lower, ":"));
  if (!names.upper.empty()) {
    absl::StrAppend(&data, ",upperdir=", names.upper, ",workdir=", names.work);
  }
  if (data.size() > kMaxMountData) {
    return absl::FailedPreconditionError(
        absl::StrCat("mount(2) data for ", names.lower.size(), " layers is ", data.size(),
                     " bytes, more than the ", kMaxMountData,
                     " a page holds (and no \"lowerdir+\", Linux 6.8)"));
  }
  return data;
}

absl::StatusOr<std::string> LegacyMountData(const OverlayNames& paths,
                                            const OverlayNames& fd_paths) {
  absl::StatusOr<std::string> data = JoinMountData(paths);
  if (data.ok()) return data;
  return JoinMountData(fd_paths);
}

void ForceLegacyMountForTesting(bool force) { force_legacy_mount = force; }

}  // namespace internal

absl::Status MountOverlay(const OverlaySpec& spec) {
  BERTH_RETURN_IF_ERROR(internal::CheckSpec(spec));
  std::vector<UniqueFd> fds;  // held until the mount is made: fd_paths name them
  OverlayNames paths, fd_paths;
  auto open = [&](absl::string_view field, const std::string& path) -> absl::StatusOr<std::string> {
    BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(field, path));
    fds.push_back(std::move(fd));
    return internal::FdPath(fds.back().get());
  };
  for (size_t i = 0; i < spec.lower_dirs.size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(std::string fd_path,
                           open(absl::StrCat("lower_dirs[", i, "]"), spec.lower_dirs[i]));
    paths.lower.push_back(spec.lower_dirs[i]);
    fd_paths.lower.push_back(std::move(fd_path));
  }
  if (!spec.upper_dir.empty()) {
    BERTH_ASSIGN_OR_RETURN(fd_paths.upper, open("upper_dir", spec.upper_dir));
    BERTH_ASSIGN_OR_RETURN(fd_paths.work, open("work_dir", spec.work_dir));
    paths.upper = spec.upper_dir;
    paths.work = spec.work_dir;
    // The kernel checks this too, but says why only in dmesg.
    int upper_mount = MountId(fds[fds.size() - 2].get()), work_mount = MountId(fds.back().get());
    if (upper_mount >= 0 && work_mount >= 0 && upper_mount != work_mount) {
      return absl::InvalidArgumentError(absl::StrCat("work_dir `", spec.work_dir,
                                                     "`: not on the same mount as upper_dir `",
                                                     spec.upper_dir, "`, as overlayfs needs"));
    }
  }
  BERTH_RETURN_IF_ERROR(Annotate(MakeDirs(spec.target, 0755), "target"));

  if (force_legacy_mount) {
    return MountLegacy(paths, fd_paths, spec.target, spec.readonly, spec.volatile_upper);
  }
  Attempt attempt = MountNewApi(internal::NewApiNames(paths, fd_paths), spec.target, spec.readonly,
                                spec.volatile_upper);
  if (attempt.status.ok() || !attempt.try_legacy) return attempt.status;
  absl::Status legacy =
      MountLegacy(paths, fd_paths, spec.target, spec.readonly, spec.volatile_upper);
  if (!legacy.ok()) {
    return absl::Status(
        attempt.status.code(),
        absl::StrCat(attempt.status.message(), "; mount(2) fallback: ", legacy.message()));
  }
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) {
    BERTH_LOG(INFO) << "overlay: the new mount API refused (" << attempt.status.message()
                    << "); mount(2) worked and is the fallback on this kernel";
  }
  return absl::OkStatus();
}

absl::Status UnmountOverlay(const std::string& target) {
  BERTH_RETURN_IF_ERROR(CheckAbsolute("target", target));
  for (int i = 0; i < kMaxStackedMounts; ++i) {
    // Only an overlay is ours to take off: anything else at `target` (or the
    // file system `target` merely lives on) is left alone.
    struct statfs fs;
    if (statfs(target.c_str(), &fs) != 0) {
      if (errno == ENOENT) return absl::OkStatus();
      return ErrnoStatus(errno, "statfs", target);
    }
    if (fs.f_type != OVERLAYFS_SUPER_MAGIC) return absl::OkStatus();
    if (umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) continue;
    int err = errno;
    if (err == EINVAL) return absl::OkStatus();  // on an overlay, not a mount point
    if (err != EBUSY) return ErrnoStatus(err, "umount2", target);
    if (umount2(target.c_str(), UMOUNT_NOFOLLOW | MNT_DETACH) != 0) {
      return ErrnoStatus(errno, "umount2 MNT_DETACH", target);
    }
    BERTH_LOG(WARNING)
        << "overlay at " << target
        << " was busy; detached it lazily, the kernel frees it when its last user goes";
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "umount2 `", target, "`: still an overlay after ", kMaxStackedMounts, " unmounts"));
}

absl::StatusOr<std::string> CreateContainerRootfs(const std::string& dir,
                                                  const std::vector<std::string>& lower_dirs,
                                                  bool readonly) {
  BERTH_RETURN_IF_ERROR(CheckAbsolute("dir", dir));
  BERTH_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  OverlaySpec spec{lower_dirs,
                   dir + "/upper",
                   dir + "/work",
                   dir + "/rootfs",
                   readonly,
                   /*volatile_upper=*/true};
  std::vector<std::string> created;
  absl::Cleanup rollback = [&created] {
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      if (absl::Status s = RemoveTree(*it); !s.ok()) BERTH_LOG(WARNING) << "rollback: " << s;
    }
  };
  const std::pair<const std::string*, mode_t> dirs[] = {
      {&spec.upper_dir, 0755}, {&spec.work_dir, 0700}, {&spec.target, 0755}};
  for (const auto& [path, mode] : dirs) {
    BERTH_ASSIGN_OR_RETURN(bool made, MakeDir(*path, mode));
    if (made) created.push_back(*path);
  }
  BERTH_RETURN_IF_ERROR(MountOverlay(spec));
  std::move(rollback).Cancel();
  return spec.target;
}

absl::Status RemoveContainerRootfs(const std::string& dir) {
  BERTH_RETURN_IF_ERROR(CheckAbsolute("dir", dir));
  const std::string rootfs = dir + "/rootfs";
  BERTH_RETURN_IF_ERROR(UnmountOverlay(rootfs));
  // rmdir, not a tree removal: a non-empty rootfs means something is still
  // mounted there, and its files are not ours to delete.
  if (rmdir(rootfs.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "rmdir", rootfs);
  BERTH_RETURN_IF_ERROR(RemoveTree(dir + "/upper"));
  return RemoveTree(dir + "/work");
}

}  // namespace berth::rootfs
