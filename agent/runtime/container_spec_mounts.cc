// What the container sees of the host's files: CRI mounts as bind mounts, the
// sandbox's /etc/hostname, /etc/hosts and /etc/resolv.conf, and device nodes.
//
// Mounts follow containerd's withMounts (internal/cri/opts/spec_linux_opts.go):
// - the sandbox's files are added unless a CRI mount has the same destination
//   (container_create_linux.go containerMounts), read-only when the rootfs is;
// - the lot is sorted, stably, by the number of parts of the destination, so a
//   mount at /a/b is not hidden by a later one at /a (Docker's volumes.go order);
// - default mounts with a destination a CRI mount takes are dropped, and every
//   default under /dev when a CRI mount takes /dev itself;
// - each is "rbind" plus rprivate / rslave / rshared for PROPAGATION_PRIVATE /
//   HOST_TO_CONTAINER / BIDIRECTIONAL, and "ro" or "rw" (a read-only rootfs
//   does not make the mounts read-only: containerd's NOTE(random-liu));
// - host paths have their symlinks resolved (realpath(3)).
// Unlike containerd, a missing host path is NOT_FOUND, not created: kubelet
// creates what it means to mount (hostPath DirectoryOrCreate, its own files).
// Not honoured, so refused by field: idmapped mounts (uidMappings,
// gidMappings), image volumes (image, image_sub_path), recursive_read_only.
// selinux_relabel is ignored: this host runs no SELinux (no LSM at all in
// /sys/kernel/security/lsm), where containerd's relabel is a no-op too.
//
// Devices follow containerd's WithDevices / oci.WithDevices (pkg/oci/utils_unix.go
// getDevices): the host path resolved, then a node, or a directory walked for
// nodes; each node goes to spec.devices and gets an allow rule in the device
// cgroup. Privileged containers get every host device (oci.WithHostDevices)
// and an allow-all rule (oci.WithAllDevicesAllowed).
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/runtime/container_spec_internal.h"
#include "os/files.h"
#include "os/mountinfo.h"
#include "os/status.h"

namespace berth::lifecycle::internal {
namespace {

namespace v1 = ::runtime::v1;

struct PlannedMount {
  std::string container_path;  // cleaned
  std::string host_path;
  bool readonly = false;
  v1::MountPropagation propagation = v1::PROPAGATION_PRIVATE;
  std::string field;                 // "config.mounts[2].host_path", for errors
  std::vector<std::string> options;  // more mount options ("nosuid", ...)
};

int Depth(const std::string& clean_path) {
  return static_cast<int>(std::count(clean_path.begin(), clean_path.end(), '/'));
}

absl::Status Unsupported(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", what, " are not supported by berth yet"));
}

absl::StatusOr<PlannedMount> CheckMount(const v1::Mount& m, int i) {
  const std::string field = absl::StrCat("config.mounts[", i, "]");
  if (m.uidmappings_size() > 0) return Unsupported(field + ".uidMappings", "idmapped mounts");
  if (m.gidmappings_size() > 0) return Unsupported(field + ".gidMappings", "idmapped mounts");
  if (!m.image().image().empty()) return Unsupported(field + ".image", "image volumes");
  if (!m.image_sub_path().empty()) return Unsupported(field + ".image_sub_path", "image volumes");
  if (m.recursive_read_only()) {
    return Unsupported(field + ".recursive_read_only", "recursive read-only mounts");
  }
  if (m.container_path().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".container_path is empty"));
  }
  if (m.container_path()[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".container_path `", m.container_path(), "`: not absolute"));
  }
  if (m.host_path().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".host_path is empty"));
  }
  if (!v1::MountPropagation_IsValid(m.propagation())) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".propagation ", m.propagation(), ": unknown"));
  }
  return PlannedMount{CleanPath(m.container_path()), m.host_path(), m.readonly(), m.propagation(),
                      field + ".host_path"};
}

// containerd's ensureShared / ensureSharedOrSlave: a BIDIRECTIONAL mount
// reaches the host only from a shared mount, HOST_TO_CONTAINER sees host
// mounts only from a shared or slave one. The mount holding `path` is the
// last listed whose mount point is a prefix of it.
absl::Status CheckPropagation(const PlannedMount& p, const std::string& path,
                              const std::optional<std::string>& mountinfo) {
  if (p.propagation != v1::PROPAGATION_BIDIRECTIONAL &&
      p.propagation != v1::PROPAGATION_HOST_TO_CONTAINER) {
    return absl::OkStatus();
  }
  std::string text;
  if (mountinfo) {
    text = *mountinfo;
  } else {
    BERTH_ASSIGN_OR_RETURN(text, ReadFile("/proc/self/mountinfo"));
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<MountInfo> mounts, ParseMountInfo(text));
  const MountInfo* holder = nullptr;
  for (const MountInfo& m : mounts) {
    const std::string& mp = m.mount_point;
    if (path == mp || mp == "/" || absl::StartsWith(path, mp + "/")) holder = &m;
  }
  if (holder == nullptr) return absl::OkStatus();
  bool shared = false, slave = false;
  for (const std::string& f : holder->optional_fields) {
    shared |= absl::StartsWith(f, "shared:");
    slave |= absl::StartsWith(f, "master:");
  }
  if (shared || (slave && p.propagation == v1::PROPAGATION_HOST_TO_CONTAINER)) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      p.field, " `", p.host_path,
      "`: ", p.propagation == v1::PROPAGATION_BIDIRECTIONAL ? "BIDIRECTIONAL" : "HOST_TO_CONTAINER",
      " propagation needs it on a shared mount, but `", holder->mount_point, "` is ",
      slave ? "a slave" : "private", " (mount --make-shared ", holder->mount_point, ")"));
}

absl::StatusOr<shim::v1::Mount> ToShimMount(const PlannedMount& p,
                                            const std::optional<std::string>& mountinfo) {
  char resolved[PATH_MAX];
  if (realpath(p.host_path.c_str(), resolved) == nullptr) {
    return ErrnoStatus(errno, p.field, p.host_path);
  }
  BERTH_RETURN_IF_ERROR(CheckPropagation(p, resolved, mountinfo));
  shim::v1::Mount m;
  m.set_destination(p.container_path);
  m.set_type("bind");
  m.set_source(resolved);
  m.add_options("rbind");
  switch (p.propagation) {
    case v1::PROPAGATION_HOST_TO_CONTAINER:
      m.add_options("rslave");
      break;
    case v1::PROPAGATION_BIDIRECTIONAL:
      m.add_options("rshared");
      break;
    default:
      m.add_options("rprivate");
      break;
  }
  m.add_options(p.readonly ? "ro" : "rw");
  for (const std::string& o : p.options) m.add_options(o);
  return m;
}

// The nodes the shim makes in every /dev itself (shim/rootfs.cc kDefaultDevices
// and the ptmx link): a host device at the same place would clash.
bool ShimMakes(absl::string_view path) {
  for (absl::string_view d : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                              "/dev/tty", "/dev/ptmx"}) {
    if (path == d) return true;
  }
  return false;
}

std::optional<shim::v1::Device> DeviceFromStat(const struct stat& st,
                                               const std::string& container) {
  shim::v1::Device d;
  if (S_ISCHR(st.st_mode)) {
    d.set_type("c");
  } else if (S_ISBLK(st.st_mode)) {
    d.set_type("b");
  } else {
    return std::nullopt;
  }
  d.set_path(container);
  d.set_major(static_cast<int64_t>(major(st.st_rdev)));
  d.set_minor(static_cast<int64_t>(minor(st.st_rdev)));
  d.set_file_mode(st.st_mode & 07777);
  d.set_uid(st.st_uid);
  d.set_gid(st.st_gid);
  return d;
}

absl::Status WalkDevices(const std::string& dir, const std::string& container,
                         std::vector<shim::v1::Device>& out) {
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
  for (const std::string& name : names) {
    const std::string host = absl::StrCat(dir, "/", name);
    const std::string inside = absl::StrCat(container, "/", name);
    struct stat st;
    if (lstat(host.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // gone since the listing
      return ErrnoStatus(errno, "lstat", host);
    }
    if (S_ISDIR(st.st_mode)) {
      // containerd getDevices skips these (runc#2093, lxd#2825).
      static constexpr const char* kSkip[] = {"pts",  "shm",         "fd",   "mqueue",
                                              ".lxc", ".lxd-mounts", ".udev"};
      if (std::find(std::begin(kSkip), std::end(kSkip), name) != std::end(kSkip)) continue;
      BERTH_RETURN_IF_ERROR(WalkDevices(host, inside, out));
      continue;
    }
    if (name == "console") continue;
    std::optional<shim::v1::Device> d = DeviceFromStat(st, inside);
    if (d) out.push_back(*std::move(d));
  }
  return absl::OkStatus();
}

}  // namespace

bool HasDotDot(absl::string_view path) {
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return true;
  }
  return false;
}

std::string CleanPath(absl::string_view path) {
  const bool absolute = absl::StartsWith(path, "/");
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!absolute) {
        parts.push_back(part);
      }
      continue;
    }
    parts.push_back(part);
  }
  std::string joined = absl::StrJoin(parts, "/");
  if (absolute) return absl::StrCat("/", joined);
  return joined.empty() ? "." : joined;
}

absl::Status ApplyMounts(const v1::ContainerConfig& config, const SandboxContext& sandbox,
                         bool readonly_rootfs, const std::optional<std::string>& mountinfo,
                         shim::v1::ContainerSpec& spec) {
  std::vector<PlannedMount> planned;
  std::set<std::string> taken;
  for (int i = 0; i < config.mounts_size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(PlannedMount p, CheckMount(config.mounts(i), i));
    taken.insert(p.container_path);
    planned.push_back(std::move(p));
  }
  const struct {
    const char* destination;
    const std::string& file;
    const char* field;
  } kSandboxFiles[] = {
      {"/etc/hostname", sandbox.hostname_file, "the sandbox's hostname file"},
      {"/etc/hosts", sandbox.hosts_file, "the sandbox's hosts file"},
      {"/etc/resolv.conf", sandbox.resolv_conf_file, "the sandbox's resolv.conf"},
  };
  for (const auto& f : kSandboxFiles) {
    if (f.file.empty() || taken.count(f.destination) > 0) continue;
    planned.push_back(
        PlannedMount{f.destination, f.file, readonly_rootfs, v1::PROPAGATION_PRIVATE, f.field});
  }
  // The pod's /dev/shm replaces the container's own tmpfs (writable even with
  // a read-only rootfs, as a tmpfs there would be).
  if (!sandbox.shm_dir.empty() && taken.count("/dev/shm") == 0 && taken.count("/dev") == 0) {
    planned.push_back(PlannedMount{"/dev/shm",
                                   sandbox.shm_dir,
                                   false,
                                   v1::PROPAGATION_PRIVATE,
                                   "the sandbox's /dev/shm",
                                   {"nosuid", "nodev", "noexec"}});
    taken.insert("/dev/shm");
  }
  std::stable_sort(planned.begin(), planned.end(),
                   [](const PlannedMount& a, const PlannedMount& b) {
                     return Depth(a.container_path) < Depth(b.container_path);
                   });
  std::vector<shim::v1::Mount> mounts;
  for (const shim::v1::Mount& m : spec.mounts()) {
    const std::string dst = CleanPath(m.destination());
    if (taken.count(dst) > 0) continue;
    if (taken.count("/dev") > 0 && absl::StartsWith(dst, "/dev/")) continue;
    mounts.push_back(m);
  }
  for (const PlannedMount& p : planned) {
    BERTH_ASSIGN_OR_RETURN(shim::v1::Mount m, ToShimMount(p, mountinfo));
    // containerd: Linux.RootfsPropagation = "rshared" for a BIDIRECTIONAL mount.
    if (p.propagation == v1::PROPAGATION_BIDIRECTIONAL) spec.set_rootfs_shared(true);
    mounts.push_back(std::move(m));
  }
  spec.clear_mounts();
  for (shim::v1::Mount& m : mounts) *spec.add_mounts() = std::move(m);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<shim::v1::Device>> DevicesAt(const std::string& host_path,
                                                        const std::string& container_path) {
  struct stat st;
  if (stat(host_path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", host_path);
  std::vector<shim::v1::Device> out;
  if (S_ISDIR(st.st_mode)) {
    BERTH_RETURN_IF_ERROR(WalkDevices(host_path, container_path == "/" ? "" : container_path, out));
    return out;
  }
  std::optional<shim::v1::Device> d = DeviceFromStat(st, container_path);
  if (!d) {
    return absl::InvalidArgumentError(
        absl::StrCat("`", host_path, "` is not a character or block device"));
  }
  out.push_back(*std::move(d));
  return out;
}

absl::Status ApplyDevices(const v1::ContainerConfig& config, bool privileged,
                          const std::string& host_dev, shim::v1::ContainerSpec& spec) {
  shim::v1::Resources* resources = spec.mutable_resources();
  // Everything is denied but what the rules (and the shim's always-allowed
  // defaults, shim/container.cc) allow.
  resources->set_devices_set(true);
  if (privileged) {
    shim::v1::DeviceRule* all = resources->add_devices();
    all->set_allow(true);
    all->set_type("a");
    all->set_major(-1);
    all->set_minor(-1);
    all->set_access("rwm");
  }
  std::set<std::string> placed;
  for (int i = 0; i < config.devices_size(); ++i) {
    const v1::Device& d = config.devices(i);
    const std::string field = absl::StrCat("config.devices[", i, "]");
    if (d.host_path().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".host_path is empty"));
    }
    // Empty permissions: all of them, as crictl's "host:container" form means.
    const std::string access = d.permissions().empty() ? "rwm" : d.permissions();
    if (access.find_first_not_of("rwm") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".permissions `", d.permissions(),
                                                     "`: not a combination of r, w and m"));
    }
    const std::string container = d.container_path().empty() ? d.host_path() : d.container_path();
    if (container[0] != '/' || HasDotDot(container)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".container_path `", container,
                                                     "`: not an absolute path without \"..\""));
    }
    char resolved[PATH_MAX];
    if (realpath(d.host_path().c_str(), resolved) == nullptr) {
      return ErrnoStatus(errno, field + ".host_path", d.host_path());
    }
    absl::StatusOr<std::vector<shim::v1::Device>> nodes = DevicesAt(resolved, CleanPath(container));
    if (!nodes.ok()) {
      return Annotate(nodes.status(), absl::StrCat(field, ".host_path `", d.host_path(), "`"));
    }
    for (shim::v1::Device& node : *nodes) {
      shim::v1::DeviceRule* rule = resources->add_devices();
      rule->set_allow(true);
      rule->set_type(node.type());
      rule->set_major(node.major());
      rule->set_minor(node.minor());
      rule->set_access(access);
      placed.insert(node.path());
      *spec.add_devices() = std::move(node);
    }
  }
  if (!privileged) return absl::OkStatus();
  absl::StatusOr<std::vector<shim::v1::Device>> host = DevicesAt(host_dev, "/dev");
  if (!host.ok()) return Annotate(host.status(), "privileged: the host's devices");
  for (shim::v1::Device& node : *host) {
    if (placed.count(node.path()) > 0 || ShimMakes(node.path())) continue;
    *spec.add_devices() = std::move(node);
  }
  return absl::OkStatus();
}

}  // namespace berth::lifecycle::internal
