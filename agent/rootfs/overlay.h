// Overlay root filesystems for containers (issue 7; DESIGN.md, CreateContainer).
//
// An image is a stack of read-only layer directories; a container sees them
// merged by overlayfs, with its own writable upper directory on top. Writes go
// to the upper dir (a file from a lower layer is first copied up), deletions
// leave whiteouts there (a 0:0 character device), and every container of an
// image shares the lower dirs (Documentation/filesystems/overlayfs.rst).
//
//   OverlaySpec spec;
//   spec.lower_dirs = {"/var/lib/berth/layers/<top>", "/var/lib/berth/layers/<base>"};
//   spec.upper_dir = "/var/lib/berth/containers/c1/upper";
//   spec.work_dir = "/var/lib/berth/containers/c1/work";
//   spec.target = "/run/berth/containers/c1/rootfs";
//   BERTH_RETURN_IF_ERROR(MountOverlay(spec));
//   ...
//   BERTH_RETURN_IF_ERROR(UnmountOverlay(spec.target));
//
// How the mount is made. The classic mount(2) passes every option in one data
// string that the kernel copies as at most one page (4096 bytes), so some 60
// layers with long paths do not fit. MountOverlay uses the new mount API
// instead (fsopen(2), fsconfig(2), fsmount(2), move_mount(2)): one
// fsconfig(FSCONFIG_SET_STRING, "lowerdir+", dir) per layer (Linux 6.8), top
// layer first, as "lowerdir=" lists them. Each value travels alone, so ':' and
// ',' in a path need no escaping; the kernel takes "lowerdir+" values verbatim
// and unescapes backslashes in "upperdir" and "workdir" only (fs/overlayfs/
// params.c, ovl_mount_dir() vs ovl_mount_dir_noesc()), so we escape those. One
// fsconfig value is at most 255 bytes (fs/fsopen.c, strndup_user(value, 256)):
// a longer path is passed as /proc/self/fd/N of an O_PATH fd we hold on it.
// When a step fails, the messages the kernel logged on the fs context
// ("e overlay: ...", read(2) on the fsopen fd) go into the Status.
//
// The fallback. Kernels without "lowerdir+" (before 6.8) answer EINVAL to an
// fsconfig step or to FSCONFIG_CMD_CREATE (the kernel's ENOPARAM never reaches
// userspace), and kernels before 5.2 have no fsopen (ENOSYS). On EINVAL or
// ENOSYS MountOverlay tries mount(2) with "lowerdir=a:b:c,upperdir=..,workdir=..":
// the real paths when none holds ':', ',' or '\' and the string fits a page,
// else every dir as /proc/self/fd/N of our O_PATH fds (~18 bytes a layer, room
// for ~200 layers). We do not chdir to a common parent as containerd does: cwd
// is per process and berthd is multithreaded, and a forked child would run C++
// after fork (STYLE.md 10). If the fallback fails too, the Status carries both
// errors, the new API's first (it has the kernel's own words).
//
// Unmounting is idempotent: a missing target, or one with no overlay mounted,
// is OK. Overlays stacked on one target (a retried mount) are all unmounted.
// On EBUSY (a host process has its cwd or a file open in the rootfs, or
// something is mounted inside it) we detach lazily (umount2(2), MNT_DETACH): the
// path is free at once, so RemoveContainer never sticks on a stray process, and
// the kernel frees the overlay when its last user goes. A warning is logged.
//
// Out of scope: user-namespaced containers (idmapped layers or "userxattr"), so
// a container's uid 0 must be the host's; overlay options beyond the defaults
// (index, metacopy, redirect_dir) other than "volatile" (OverlaySpec).
//
// Testing: these calls go straight to the kernel, not through the Syscalls seam
// (os/syscalls.h has no new-mount-API calls yet). What decides anything (spec
// checks, the names and mount(2) data handed over) is pure and unit-tested in
// overlay_test.cc; the mounts themselves run as root in overlay_root_test.cc.
//
// Man pages: fsopen(2), fsconfig(2), fsmount(2), move_mount(2), mount(2),
// umount2(2), statfs(2); kernel Documentation/filesystems/overlayfs.rst
// ("Multiple lower layers", "whiteouts and opaque directories").
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::rootfs {

struct OverlaySpec {
  // Image layers, TOP first (as overlayfs "lowerdir" lists them). At least one;
  // without an upper dir, at least two (the kernel's rule).
  std::vector<std::string> lower_dirs;
  // Per container, on the same mount. Both empty with `readonly`: no writable
  // layer at all.
  std::string upper_dir;
  std::string work_dir;
  // The mount point; created (mode 0755, with parents) if missing.
  std::string target;
  // A read-only mount (MOUNT_ATTR_RDONLY, or MS_RDONLY in the fallback): writes
  // fail with EROFS, with or without an upper dir.
  bool readonly = false;
  // With an upper dir: overlayfs' "volatile" (Linux 5.10), which skips every
  // sync of the upper file system - fsync(2) in the container, and the syncfs
  // of the whole upper file system (the node's /var/lib) that an unmount
  // otherwise does. After a crash the kernel refuses to mount that upper and
  // work dir again, which a CRI container never asks: it is never restarted
  // after a reboot, and its writable layer is thrown away with it. Kernels
  // without the option get a mount without it.
  bool volatile_upper = false;
};

// Mounts the overlay described by `spec` on spec.target. Bad specs (work_dir
// on another mount than upper_dir included) are INVALID_ARGUMENT or NOT_FOUND
// naming the field ("lower_dirs[2] `/x`: ...");
// kernel refusals name the step ("fsconfig lowerdir+ `/x`", "fsmount",
// "move_mount") and carry the kernel's messages. Nothing stays mounted on error.
// All paths must be absolute.
absl::Status MountOverlay(const OverlaySpec& spec);

// Unmounts every overlay at `target` (see the overview): OK when there is none
// or `target` does not exist.
absl::Status UnmountOverlay(const std::string& target);

// The per-container layout under `dir` (created if missing, never removed: the
// container's other files live there too):
//
//   <dir>/upper   the container's writes (mode 0755: the rootfs's "/" mode)
//   <dir>/work    overlayfs scratch space (0700)
//   <dir>/rootfs  the mount point (0755)
//
// CreateContainerRootfs makes the three and mounts the overlay on <dir>/rootfs,
// volatile (OverlaySpec::volatile_upper), returning its path. `readonly` mounts
// it read-only; the upper dir is made all the same, so a one-layer image needs
// no special case. On error the dirs this call created are removed again.
absl::StatusOr<std::string> CreateContainerRootfs(const std::string& dir,
                                                  const std::vector<std::string>& lower_dirs,
                                                  bool readonly = false);

// Unmounts <dir>/rootfs and removes rootfs, upper and work (never following a
// symlink nor entering another mount). Idempotent: missing parts are fine.
absl::Status RemoveContainerRootfs(const std::string& dir);

namespace internal {

// fsconfig(2) FSCONFIG_SET_STRING values are at most this long (fs/fsopen.c).
inline constexpr size_t kMaxFsconfigValue = 255;
// mount(2) copies at most one page of data, NUL included (copy_mount_options()).
inline constexpr size_t kMaxMountData = 4095;

// The names the kernel is given for each dir of a spec (empty upper and work
// when there are none).
struct OverlayNames {
  std::vector<std::string> lower;
  std::string upper;
  std::string work;
};

// Checks what can be checked without touching the file system: INVALID_ARGUMENT
// naming the field.
absl::Status CheckSpec(const OverlaySpec& spec);

// "/proc/self/fd/<fd>".
std::string FdPath(int fd);

// The fsconfig(2) values: each path as is (lower) or with '\' doubled (upper,
// work), or the fd path when that is longer than kMaxFsconfigValue.
OverlayNames NewApiNames(const OverlayNames& paths, const OverlayNames& fd_paths);

// "lowerdir=a:b[,upperdir=u,workdir=w]" for mount(2) from `names`, which must
// hold no ':', ',' or '\' (INVALID_ARGUMENT) and fit kMaxMountData
// (FAILED_PRECONDITION: too many layers for a kernel without "lowerdir+").
absl::StatusOr<std::string> JoinMountData(const OverlayNames& names);

// The fallback's data: from `paths` when JoinMountData takes them, else from
// `fd_paths`.
absl::StatusOr<std::string> LegacyMountData(const OverlayNames& paths,
                                            const OverlayNames& fd_paths);

// Test hook: with `force`, MountOverlay skips the new mount API and goes
// straight to the mount(2) fallback, as on a kernel before 6.8.
void ForceLegacyMountForTesting(bool force);

}  // namespace internal
}  // namespace berth::rootfs
