#include "shim/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "os/status.h"

namespace berth::shim {
namespace {

struct FlagOption {
  const char* name;
  bool clear;
  unsigned long flag;
};

constexpr FlagOption kFlagOptions[] = {
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"defaults", false, 0},  // fstab's "nothing special"; runc and crun ignore it
};

constexpr struct {
  const char* name;
  unsigned long flags;
} kPropagation[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

// The nodes every container gets in /dev (OCI runtime spec, "Default Devices").
constexpr struct {
  const char* name;
  unsigned major, minor;
} kDefaultDevices[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                       {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

absl::Status CheckContainerPath(absl::string_view what, absl::string_view path) {
  if (!absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError(absl::StrCat(what, " `", path, "` is not absolute"));
  }
  return absl::OkStatus();
}

// "/dev/net/tun" -> ("/dev/net", "tun"); refuses "..", which could leave the root.
absl::Status SplitNodePath(absl::string_view what, absl::string_view path, std::string* dir,
                           std::string* name) {
  BERTH_RETURN_IF_ERROR(CheckContainerPath(what, path));
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(what, " `", path, "` contains \"..\""));
    }
  }
  size_t slash = path.rfind('/');
  *dir = slash == 0 ? "/" : std::string(path.substr(0, slash));
  *name = std::string(path.substr(slash + 1));
  if (name->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " `", path, "` names no file"));
  }
  return absl::OkStatus();
}

}  // namespace

ParsedOptions ParseMountOptions(const google::protobuf::RepeatedPtrField<std::string>& options) {
  ParsedOptions out;
  std::vector<std::string> data;
  for (const std::string& o : options) {
    if (o == "bind" || o == "rbind") {
      out.bind = true;
      if (o == "rbind") out.flags |= MS_REC;
      continue;
    }
    bool known = false;
    for (const FlagOption& f : kFlagOptions) {
      if (o == f.name) {
        if (f.clear) {
          out.flags &= ~f.flag;
        } else {
          out.flags |= f.flag;
        }
        known = true;
        break;
      }
    }
    for (const auto& p : kPropagation) {
      if (o == p.name) {
        out.propagation = p.flags;
        known = true;
        break;
      }
    }
    if (!known) data.push_back(o);
  }
  out.data = absl::StrJoin(data, ",");
  return out;
}

absl::StatusOr<RootfsPlan> BuildRootfsPlan(const v1::ContainerSpec& spec, bool userns) {
  RootfsPlan plan;
  if (spec.root().empty() || spec.root()[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("root `", spec.root(), "` is not absolute"));
  }
  struct stat st;
  if (stat(spec.root().c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("root `", spec.root(), "` is not a directory"));
  }
  plan.root = spec.root();
  plan.root_shared = spec.rootfs_shared();
  if (const std::string& cwd = spec.process().cwd(); !cwd.empty() && cwd != "/") {
    plan.workdir = cwd;
  }
  plan.bind_devices = userns;
  for (int i = 0; i < spec.mounts_size(); ++i) {
    const v1::Mount& m = spec.mounts(i);
    if (absl::Status s =
            CheckContainerPath(absl::StrCat("mounts[", i, "].destination"), m.destination());
        !s.ok()) {
      return s;
    }
    ParsedOptions o = ParseMountOptions(m.options());
    MountStep step;
    step.destination = m.destination();
    step.source = m.source();
    step.fstype = m.type();
    step.propagation = o.propagation;
    step.data = o.data;
    step.bind = o.bind || m.type() == "bind";
    if (step.bind) {
      struct stat src;
      if (stat(m.source().c_str(), &src) != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("mounts[", i, "].source `", m.source(), "`: ", strerror(errno)));
      }
      step.directory = S_ISDIR(src.st_mode);
      step.flags = MS_BIND | (o.flags & MS_REC);
      // In a shared namespace a bind of a shared host mount would be its peer:
      // only an "rshared" bind may be; the rest see host mounts, no more.
      if (spec.rootfs_shared() && step.propagation == 0) step.propagation = MS_REC | MS_SLAVE;
      unsigned long rest = o.flags & ~MS_REC;
      if (rest != 0) step.remount_flags = MS_BIND | MS_REMOUNT | rest;
      step.fstype.clear();
    } else {
      if (m.type().empty()) {
        return absl::InvalidArgumentError(absl::StrCat("mounts[", i, "].type is empty"));
      }
      step.flags = o.flags;
      if (m.destination() == "/dev" && m.type() == "tmpfs") plan.dev_is_tmpfs = true;
    }
    plan.mounts.push_back(std::move(step));
  }
  if (plan.dev_is_tmpfs) {
    for (const auto& d : kDefaultDevices) {
      DeviceStep dev;
      dev.container = absl::StrCat("/dev/", d.name);
      dev.dir = "/dev";
      dev.name = d.name;
      dev.mode = S_IFCHR | 0666;
      dev.dev = makedev(d.major, d.minor);
      plan.devices.push_back(std::move(dev));
    }
    plan.symlinks = {{"/proc/self/fd", "/dev", "fd"},       {"/proc/self/fd/0", "/dev", "stdin"},
                     {"/proc/self/fd/1", "/dev", "stdout"}, {"/proc/self/fd/2", "/dev", "stderr"},
                     {"pts/ptmx", "/dev", "ptmx"},          {"/proc/kcore", "/dev", "core"}};
  }
  for (int i = 0; i < spec.devices_size(); ++i) {
    const v1::Device& d = spec.devices(i);
    DeviceStep dev;
    BERTH_RETURN_IF_ERROR(
        SplitNodePath(absl::StrCat("devices[", i, "].path"), d.path(), &dev.dir, &dev.name));
    if (d.type() != "c" && d.type() != "b") {
      return absl::InvalidArgumentError(
          absl::StrCat("devices[", i, "].type `", d.type(), "` is not \"c\" or \"b\""));
    }
    dev.container = d.path();
    dev.mode =
        (d.type() == "c" ? S_IFCHR : S_IFBLK) | (d.file_mode() ? d.file_mode() & 07777 : 0666);
    // major/minor are macros in <sys/sysmacros.h>: keep them from expanding.
    const int64_t maj = (d.major)(), mnr = (d.minor)();
    dev.dev = makedev(static_cast<unsigned>(maj), static_cast<unsigned>(mnr));
    dev.uid = d.uid();
    dev.gid = d.gid();
    plan.devices.push_back(std::move(dev));
  }
  for (const auto& [key, value] : spec.sysctls()) {
    if (key.empty() || absl::StrContains(key, "..") || absl::StrContains(key, "/")) {
      return absl::InvalidArgumentError(absl::StrCat("sysctls: bad name `", key, "`"));
    }
    plan.sysctls.emplace_back(absl::StrCat("/proc/sys/", absl::StrReplaceAll(key, {{".", "/"}})),
                              value);
  }
  for (int i = 0; i < spec.masked_paths_size(); ++i) {
    if (absl::Status s =
            CheckContainerPath(absl::StrCat("masked_paths[", i, "]"), spec.masked_paths(i));
        !s.ok()) {
      return s;
    }
    plan.masked_paths.push_back(spec.masked_paths(i));
  }
  for (int i = 0; i < spec.readonly_paths_size(); ++i) {
    if (absl::Status s =
            CheckContainerPath(absl::StrCat("readonly_paths[", i, "]"), spec.readonly_paths(i));
        !s.ok()) {
      return s;
    }
    plan.readonly_paths.push_back(spec.readonly_paths(i));
  }
  plan.readonly_root = spec.readonly_root();
  plan.hostname = spec.hostname();
  return plan;
}

namespace {

// "/proc/self/fd/<fd>" into buf, without allocating.
const char* FdPath(char (&buf)[32], int fd) {
  snprintf(buf, sizeof(buf), "/proc/self/fd/%d", fd);
  return buf;
}

int MountOne(const MountStep& m, int root_fd, Syscalls& sys) {
  int fd = -1;
  if (int err = sys.OpenInRoot(root_fd, m.destination.c_str(), m.directory, &fd)) return err;
  char target[32];
  FdPath(target, fd);
  const char* source = m.source.empty() ? m.fstype.c_str() : m.source.c_str();
  int err = sys.Mount(source, target, m.bind ? nullptr : m.fstype.c_str(), m.flags,
                      m.data.empty() ? nullptr : m.data.c_str());
  if (err == 0 && m.remount_flags != 0) {
    // A bind mount takes its flags only on a remount (mount(2), MS_REMOUNT|MS_BIND).
    // The fd still names the mount point below the bind: look it up again.
    sys.Close(fd);
    fd = -1;
    err = sys.OpenInRoot(root_fd, m.destination.c_str(), m.directory, &fd);
    if (err == 0) {
      FdPath(target, fd);
      err = sys.Mount(nullptr, target, nullptr, m.remount_flags, nullptr);
      if (err == EPERM) {
        // In a user namespace the flags of the source mount are locked: keep them.
        unsigned long locked = 0;
        if (sys.MountFlags(target, &locked) == 0) {
          err = sys.Mount(nullptr, target, nullptr, m.remount_flags | locked, nullptr);
        }
      }
    }
  }
  if (err == 0 && m.propagation != 0) {
    if (fd >= 0) sys.Close(fd);
    fd = -1;
    err = sys.OpenInRoot(root_fd, m.destination.c_str(), m.directory, &fd);
    if (err == 0) err = sys.Mount(nullptr, FdPath(target, fd), nullptr, m.propagation, nullptr);
  }
  if (fd >= 0) sys.Close(fd);
  return err;
}

// "/proc/self/fd/<dir_fd>/<name>" into buf, without allocating.
const char* InDir(char (&buf)[320], int dir_fd, const std::string& name) {
  snprintf(buf, sizeof(buf), "/proc/self/fd/%d/%s", dir_fd, name.c_str());
  return buf;
}

int MakeDevice(const RootfsPlan& plan, const DeviceStep& d, int root_fd, Syscalls& sys) {
  if (plan.bind_devices) {
    int fd = -1;
    if (int err = sys.OpenInRoot(root_fd, d.container.c_str(), false, &fd)) return err;
    char target[32];
    int err = sys.Mount(d.container.c_str(), FdPath(target, fd), nullptr, MS_BIND, nullptr);
    sys.Close(fd);
    return err;
  }
  int dir = -1;
  if (int err = sys.OpenInRoot(root_fd, d.dir.c_str(), true, &dir)) return err;
  char path[320];
  InDir(path, dir, d.name);
  int err = sys.Mknod(path, d.mode, d.dev);
  if (err == 0) err = sys.Chown(path, d.uid, d.gid);
  if (err == EEXIST) err = 0;
  sys.Close(dir);
  return err;
}

int MakeLink(const RootfsPlan::Link& l, int root_fd, Syscalls& sys) {
  int dir = -1;
  if (int err = sys.OpenInRoot(root_fd, l.dir.c_str(), true, &dir)) return err;
  char path[320];
  int err = sys.Symlink(l.target.c_str(), InDir(path, dir, l.name));
  if (err == EEXIST) err = 0;
  sys.Close(dir);
  return err;
}

int Remount(const char* path, unsigned long flags, Syscalls& sys) {
  unsigned long keep = 0;
  if (int err = sys.MountFlags(path, &keep)) return err;
  return sys.Mount(nullptr, path, nullptr, keep | flags | MS_BIND | MS_REMOUNT, nullptr);
}

int RunBeforePivot(const RootfsPlan& plan, Syscalls& sys, int root_fd, Stage* stage, int* index) {
  for (size_t i = 0; i < plan.mounts.size(); ++i) {
    *stage = Stage::kMount;
    *index = static_cast<int>(i);
    if (int err = MountOne(plan.mounts[i], root_fd, sys)) return err;
  }
  *stage = Stage::kDevices;
  for (size_t i = 0; i < plan.devices.size(); ++i) {
    *index = static_cast<int>(i);
    if (int err = MakeDevice(plan, plan.devices[i], root_fd, sys)) return err;
  }
  for (size_t i = 0; i < plan.symlinks.size(); ++i) {
    *index = static_cast<int>(plan.devices.size() + i);
    if (int err = MakeLink(plan.symlinks[i], root_fd, sys)) return err;
  }
  *index = -1;
  if (!plan.workdir.empty()) {
    *stage = Stage::kWorkdir;
    int dir = -1;
    if (int err = sys.OpenInRoot(root_fd, plan.workdir.c_str(), true, &dir)) return err;
    sys.Close(dir);
  }
  return 0;
}

}  // namespace

int RunRootfs(const RootfsPlan& plan, Syscalls& sys, Stage* stage, int* index) {
  *index = -1;
  *stage = Stage::kMountPropagation;
  if (plan.root_shared) {
    // runc's prepareRoot with rootfsPropagation "rshared": the namespace stays
    // shared, so an "rshared" bind below is a peer of its host mount and what
    // the container mounts there reaches the host; the root's own mount (the
    // overlay) is made private first, so the bind of it and everything
    // mounted inside the container (its parent) stays in the container.
    if (int err = sys.Mount(nullptr, "/", nullptr, MS_SHARED | MS_REC, nullptr)) return err;
    if (int err = sys.Mount(nullptr, plan.root.c_str(), nullptr, MS_PRIVATE, nullptr)) return err;
  } else if (int err = sys.Mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr)) {
    return err;
  }
  *stage = Stage::kBindRoot;
  if (int err =
          sys.Mount(plan.root.c_str(), plan.root.c_str(), nullptr, MS_BIND | MS_REC, nullptr)) {
    return err;
  }
  // Opened after the bind, so it names the new mount, not the directory below it.
  int root_fd = -1;
  if (int err = sys.OpenInRoot(AT_FDCWD, plan.root.c_str(), true, &root_fd)) return err;
  int err = RunBeforePivot(plan, sys, root_fd, stage, index);
  sys.Close(root_fd);
  if (err != 0) return err;

  *stage = Stage::kPivotRoot;
  // The old root, held across the pivot (runc's pivotRoot): after
  // pivot_root(".", ".") it sits on top of the new root, but "." still names
  // the new root's own mount, and making *that* rslave would cut an rshared
  // bind off from its host peers. So: fchdir to the old root, make it (and
  // only it) rslave so its unmount propagates nowhere, and detach it.
  int old_root = -1;
  if ((err = sys.OpenInRoot(AT_FDCWD, "/", true, &old_root))) return err;
  if ((err = sys.Chdir(plan.root.c_str())) || (err = sys.PivotRoot(".", ".")) ||
      (err = sys.Fchdir(old_root)) ||
      (err = sys.Mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr)) ||
      (err = sys.Umount2(".", MNT_DETACH))) {
    sys.Close(old_root);
    return err;
  }
  sys.Close(old_root);
  if ((err = sys.Chdir("/"))) return err;

  *stage = Stage::kSysctl;
  for (size_t i = 0; i < plan.sysctls.size(); ++i) {
    *index = static_cast<int>(i);
    const std::string& value = plan.sysctls[i].second;
    if ((err = sys.WriteFile(plan.sysctls[i].first.c_str(), value.data(), value.size()))) {
      return err;
    }
  }
  *stage = Stage::kMaskedPath;
  for (size_t i = 0; i < plan.masked_paths.size(); ++i) {
    *index = static_cast<int>(i);
    const char* path = plan.masked_paths[i].c_str();
    bool dir = false;
    err = sys.IsDirectory(path, &dir);
    if (err == ENOENT) continue;
    if (err != 0) return err;
    err = dir ? sys.Mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
              : sys.Mount("/dev/null", path, nullptr, MS_BIND, nullptr);
    if (err != 0) return err;
  }
  *stage = Stage::kReadonlyPath;
  for (size_t i = 0; i < plan.readonly_paths.size(); ++i) {
    *index = static_cast<int>(i);
    const char* path = plan.readonly_paths[i].c_str();
    bool dir = false;
    err = sys.IsDirectory(path, &dir);
    if (err == ENOENT) continue;
    if (err != 0) return err;
    if ((err = sys.Mount(path, path, nullptr, MS_BIND | MS_REC, nullptr))) return err;
    if ((err = Remount(path, MS_RDONLY, sys))) return err;
  }
  *index = -1;
  if (plan.readonly_root) {
    *stage = Stage::kReadonlyRoot;
    if ((err = Remount("/", MS_RDONLY, sys))) return err;
  }
  if (!plan.hostname.empty()) {
    *stage = Stage::kHostname;
    if ((err = sys.Sethostname(plan.hostname.data(), plan.hostname.size()))) return err;
  }
  *stage = Stage::kNone;
  return 0;
}

}  // namespace berth::shim
