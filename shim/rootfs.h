// The container's root filesystem: mounts, /dev, pivot_root, masked and
// read-only paths, sysctls, hostname (mount(2), pivot_root(2), mount_namespaces(7)).
//
// BuildRootfsPlan turns a ContainerSpec into plain data in the parent, before
// clone(); RunRootfs executes it in the child through the Syscalls seam without
// allocating. Order matters and follows runc/crun:
//   1. "/" becomes MS_SLAVE|MS_REC, so nothing we mount propagates to the host;
//   2. the rootfs is bind-mounted onto itself (pivot_root needs a mount point);
//   3. each mount in spec order, its target opened inside the rootfs with
//      RESOLVE_IN_ROOT (a symlink in the image cannot redirect it), then
//      remounted for ro/nosuid/... on binds, then its propagation;
//   4. /dev nodes and symlinks when /dev is a fresh tmpfs (bind-mounted from
//      the host inside a user namespace, where mknod is not allowed);
//   5. pivot_root(".", ".") and the old root detached (pivot_root(2) NOTES);
//   6. sysctls, while /proc/sys is still writable; masked paths (/dev/null or
//      an empty read-only tmpfs over them); read-only paths; read-only root;
//   7. hostname.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "os/syscalls.h"
#include "shim/sync.h"
#include "shim/v1/shim.pb.h"

namespace berth::shim {

struct MountStep {
  std::string source;
  std::string destination;  // inside the rootfs, absolute ("/proc")
  std::string fstype;
  unsigned long flags = 0;  // MS_* for the first mount(2)
  std::string data;
  bool bind = false;
  unsigned long remount_flags = 0;  // for binds with ro/nosuid/...: 0 means none
  unsigned long propagation = 0;    // MS_PRIVATE|MS_REC, ... or 0
  bool directory = true;            // the target is a directory (else a file)
};

// A node or link is made in its directory opened inside the rootfs
// (RESOLVE_IN_ROOT), through /proc/self/fd/<dir>/<name>: an image whose /dev is
// a symlink to /etc cannot make us write into the host's /etc.
struct DeviceStep {
  std::string container;  // "/dev/null", for messages and for binds
  std::string dir;        // "/dev"
  std::string name;       // "null"
  mode_t mode = 0;        // S_IFCHR|0666 ...
  dev_t dev = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct RootfsPlan {
  std::string root;
  bool root_shared = false;  // ContainerSpec.rootfs_shared
  // The process's working directory, made inside the root when missing (as
  // runc does); empty for "/".
  std::string workdir;
  std::vector<MountStep> mounts;
  bool dev_is_tmpfs = false;
  bool bind_devices = false;  // user namespace: bind from the host, no mknod
  std::vector<DeviceStep> devices;
  struct Link {
    std::string target;  // "/proc/self/fd"
    std::string dir;     // "/dev"
    std::string name;    // "fd"
  };
  std::vector<Link> symlinks;
  std::vector<std::pair<std::string, std::string>> sysctls;  // (/proc/sys/... path, value)
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  bool readonly_root = false;
  std::string hostname;
};

// Parses OCI mount options into mount(2) flags and data; unknown options go to
// data ("mode=755,size=65536k").
struct ParsedOptions {
  unsigned long flags = 0;
  unsigned long propagation = 0;
  bool bind = false;
  std::string data;
};
ParsedOptions ParseMountOptions(const google::protobuf::RepeatedPtrField<std::string>& options);

// The plan for `spec`. `userns`: the container gets a new user namespace.
absl::StatusOr<RootfsPlan> BuildRootfsPlan(const v1::ContainerSpec& spec, bool userns);

// Runs the plan; returns 0 or the errno of the failing step with *stage and
// *index (which mount, device or path) set.
int RunRootfs(const RootfsPlan& plan, Syscalls& sys, Stage* stage, int* index);

}  // namespace berth::shim
