// Where the cgroup hierarchies are, found from /proc/self/mountinfo.
//
// Three shapes exist (Documentation/admin-guide/cgroup-v2.rst, "Mounting"):
//   v1       one cgroup mount per controller (or per co-mounted set: cpu,cpuacct)
//   unified  one cgroup2 mount, controllers listed in its cgroup.controllers
//   hybrid   v1 controller mounts plus a cgroup2 mount (often /sys/fs/cgroup/unified)
//            that holds whatever controllers no v1 hierarchy took - on our Debian 12
//            machines, hugetlb. Each controller lives in exactly one hierarchy.
//
//   BERTH_ASSIGN_OR_RETURN(CgroupLayout layout, CgroupLayout::Detect());
//   const CgroupHierarchy* mem = layout.Find("memory");  // v1 or v2, one interface
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

enum class CgroupMode { kV1, kHybrid, kUnified };

struct CgroupHierarchy {
  std::string mount_point;  // absolute, with the layout's prefix
  bool v2 = false;
  std::vector<std::string> controllers;  // v1: from the mount's options; v2: cgroup.controllers
};

class CgroupLayout {
 public:
  // `prefix` is prepended to every mount point: "" on a real system, a temp dir
  // holding a fake tree in tests. cgroup2's controllers are read from the
  // (prefixed) mount point's cgroup.controllers.
  static absl::StatusOr<CgroupLayout> FromMountInfo(absl::string_view mountinfo,
                                                    absl::string_view prefix = "");
  static absl::StatusOr<CgroupLayout> Detect();
  // A layout found before (say by another process), as its hierarchies() were.
  static absl::StatusOr<CgroupLayout> FromHierarchies(std::vector<CgroupHierarchy> hierarchies);

  CgroupMode mode() const { return mode_; }
  const std::vector<CgroupHierarchy>& hierarchies() const { return hierarchies_; }
  // The hierarchy holding `controller` ("memory", "cpu", "hugetlb", ...), or null.
  const CgroupHierarchy* Find(absl::string_view controller) const;

 private:
  CgroupMode mode_ = CgroupMode::kV1;
  std::vector<CgroupHierarchy> hierarchies_;
};

}  // namespace berth
