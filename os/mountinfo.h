// /proc/<pid>/mountinfo (proc(5), "/proc/pid/mountinfo"): one mount per line,
//
//   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//
// Optional fields (7) end at the "-" separator. Paths escape space, tab, newline
// and backslash as octal (\040, \011, \012, \134).
//
//   BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo"));
//   BERTH_ASSIGN_OR_RETURN(std::vector<MountInfo> mounts, ParseMountInfo(text));
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

struct MountInfo {
  int id = 0;
  int parent_id = 0;
  std::string root;         // (4) path of the mount's root within its file system
  std::string mount_point;  // (5)
  std::string options;      // (6) per-mount options
  // (7) "shared:N", "master:N", "propagate_from:N", "unbindable"; none: private.
  std::vector<std::string> optional_fields;
  std::string fs_type;        // (9)
  std::string source;         // (10)
  std::string super_options;  // (11) per-superblock options, e.g. "rw,memory" for cgroup v1
};

absl::StatusOr<std::vector<MountInfo>> ParseMountInfo(absl::string_view text);

}  // namespace berth
