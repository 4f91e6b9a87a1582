#include "os/cgroup/layout.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "os/files.h"
#include "os/mountinfo.h"
#include "os/status.h"

namespace berth {
namespace {

// v1 controllers a container runtime sets; other superblock options (rw,
// name=systemd, clone_children, ...) are not controllers.
constexpr absl::string_view kV1Controllers[] = {
    "cpu",  "cpuacct", "cpuset",  "memory",   "devices",    "freezer", "blkio",
    "pids", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma",    "misc"};

bool IsV1Controller(absl::string_view option) {
  return std::find(std::begin(kV1Controllers), std::end(kV1Controllers), option) !=
         std::end(kV1Controllers);
}

}  // namespace

absl::StatusOr<CgroupLayout> CgroupLayout::FromMountInfo(absl::string_view mountinfo,
                                                         absl::string_view prefix) {
  BERTH_ASSIGN_OR_RETURN(std::vector<MountInfo> mounts, ParseMountInfo(mountinfo));
  CgroupLayout layout;
  bool any_v1 = false, any_v2 = false;
  for (const MountInfo& m : mounts) {
    // A mount of a sub-tree (root other than "/", e.g. inside a cgroup namespace
    // or a bind mount) is not where the hierarchy's root is.
    if (m.root != "/") continue;
    if (m.fs_type == "cgroup") {
      CgroupHierarchy h{absl::StrCat(prefix, m.mount_point), false, {}};
      for (absl::string_view opt : absl::StrSplit(m.super_options, ',')) {
        if (IsV1Controller(opt)) h.controllers.emplace_back(opt);
      }
      if (h.controllers.empty()) continue;  // name=systemd and friends
      bool seen =
          std::any_of(layout.hierarchies_.begin(), layout.hierarchies_.end(),
                      [&](const CgroupHierarchy& o) { return o.controllers == h.controllers; });
      if (seen) continue;  // the same hierarchy mounted twice
      any_v1 = true;
      layout.hierarchies_.push_back(std::move(h));
    } else if (m.fs_type == "cgroup2" && !any_v2) {
      CgroupHierarchy h{absl::StrCat(prefix, m.mount_point), true, {}};
      std::string path = h.mount_point + "/cgroup.controllers";
      BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
      for (absl::string_view c :
           absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty())) {
        h.controllers.emplace_back(c);
      }
      any_v2 = true;
      layout.hierarchies_.push_back(std::move(h));
    }
  }
  if (!any_v1 && !any_v2) return absl::NotFoundError("no cgroup file system is mounted");
  // In hybrid mode a controller bound to a v1 hierarchy is listed nowhere in
  // cgroup2; nothing to reconcile. Each controller is found in one place.
  return FromHierarchies(std::move(layout.hierarchies_));
}

absl::StatusOr<CgroupLayout> CgroupLayout::FromHierarchies(
    std::vector<CgroupHierarchy> hierarchies) {
  bool any_v1 = false, any_v2 = false;
  for (const CgroupHierarchy& h : hierarchies) {
    if (h.mount_point.empty() || h.mount_point[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup mount point `", h.mount_point, "` is not absolute"));
    }
    if (h.v2 && any_v2) return absl::InvalidArgumentError("more than one cgroup2 hierarchy");
    (h.v2 ? any_v2 : any_v1) = true;
  }
  if (!any_v1 && !any_v2) return absl::NotFoundError("no cgroup hierarchy given");
  CgroupLayout layout;
  layout.hierarchies_ = std::move(hierarchies);
  layout.mode_ = any_v1 && any_v2 ? CgroupMode::kHybrid
                 : any_v2         ? CgroupMode::kUnified
                                  : CgroupMode::kV1;
  return layout;
}

absl::StatusOr<CgroupLayout> CgroupLayout::Detect() {
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo"));
  return FromMountInfo(text);
}

const CgroupHierarchy* CgroupLayout::Find(absl::string_view controller) const {
  for (const CgroupHierarchy& h : hierarchies_) {
    if (std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end()) {
      return &h;
    }
  }
  return nullptr;
}

}  // namespace berth
