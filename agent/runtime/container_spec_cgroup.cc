// The container's view of its own cgroups: a cgroup namespace rooted at the
// container's cgroup (cgroup_namespaces(7)) and its hierarchies mounted at
// /sys/fs/cgroup, as runc does. JVMs, Go, .NET and Node size their heaps and
// thread pools from what they find there (and from /proc/self/cgroup); without
// it they read the host's and get OOM-killed.
//
// The shim unshares the cgroup namespace after it has put the init into the
// container's cgroup and before the rootfs is mounted, so each mount below
// shows that cgroup as its root:
//   unified (v2)    cgroup2 at /sys/fs/cgroup
//   v1 / hybrid     a tmpfs at /sys/fs/cgroup, and in it, for each hierarchy,
//                   a bind of the container's own cgroup directory at
//                   /sys/fs/cgroup/<the hierarchy's name on the host> (a bind
//                   needs no controller set matching the host's, which a
//                   fresh v1 mount in a cgroup namespace would, to the
//                   letter); hybrid's cgroup2 likewise at .../unified
// Read-only unless the container is privileged (runc: "ro" for both).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/runtime/container_spec.h"

namespace berth::lifecycle {
namespace {

constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

shim::v1::Mount CgroupMount(const std::string& destination, const std::string& type,
                            const std::string& source, bool read_only, const std::string& data) {
  shim::v1::Mount m;
  m.set_destination(destination);
  m.set_type(type);
  m.set_source(source);
  for (const char* o : {"nosuid", "noexec", "nodev"}) m.add_options(o);
  m.add_options(read_only ? "ro" : "rw");
  if (!data.empty()) m.add_options(data);
  return m;
}

std::string BaseName(const std::string& path) { return path.substr(path.rfind('/') + 1); }

}  // namespace

void AddCgroupView(const CgroupLayout& layout, bool privileged, shim::v1::ContainerSpec& spec) {
  if (spec.cgroup_path().empty()) return;  // no cgroup of its own: nothing to show
  for (const shim::v1::Mount& m : spec.mounts()) {
    // A client's mount of /sys, /sys/fs or anything under /sys/fs/cgroup (a
    // cAdvisor-style hostPath) wins: ours would cover it, or land in it.
    const std::string& d = m.destination();
    if (m.type() != "bind") continue;  // the runtime's own sysfs at /sys
    if (d == "/sys" || d == "/sys/fs" || d == kCgroupRoot ||
        absl::StartsWith(d, absl::StrCat(kCgroupRoot, "/"))) {
      return;
    }
  }
  spec.add_namespaces()->set_type(shim::v1::CGROUP);
  const bool ro = !privileged;
  std::vector<shim::v1::Mount> mounts;
  if (layout.mode() == CgroupMode::kUnified) {
    mounts.push_back(CgroupMount(kCgroupRoot, "cgroup2", "cgroup", ro, ""));
  } else {
    // Written to while the hierarchies are mounted on it; made read-only
    // after (readonly_paths) unless privileged.
    mounts.push_back(CgroupMount(kCgroupRoot, "tmpfs", "tmpfs", false, "mode=755,size=64k"));
    for (const CgroupHierarchy& h : layout.hierarchies()) {
      shim::v1::Mount bind;
      bind.set_destination(absl::StrCat(kCgroupRoot, "/", BaseName(h.mount_point)));
      bind.set_type("bind");
      bind.set_source(absl::StrCat(h.mount_point, spec.cgroup_path()));
      for (const char* o : {"rbind", "rprivate", "nosuid", "noexec", "nodev"}) bind.add_options(o);
      bind.add_options(ro ? "ro" : "rw");
      mounts.push_back(std::move(bind));
    }
    if (ro) spec.add_readonly_paths(kCgroupRoot);
  }
  // Right after /sys, which holds the mount point.
  auto* all = spec.mutable_mounts();
  int at = all->size();
  for (int i = 0; i < all->size(); ++i) {
    if (all->Get(i).destination() == "/sys") at = i + 1;
  }
  for (shim::v1::Mount& m : mounts) *all->Add() = std::move(m);
  // Rotate the new ones into place behind /sys.
  const int added = static_cast<int>(mounts.size());
  for (int k = 0; k < added; ++k) {
    for (int i = all->size() - added + k; i > at + k; --i) all->SwapElements(i, i - 1);
  }
}

}  // namespace berth::lifecycle
