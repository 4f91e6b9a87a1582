// A container's (or pod's) cgroup across every hierarchy: v1, v2 and hybrid
// behind one interface. Each setting goes to the hierarchy that holds its
// controller, written in that hierarchy's dialect (cgroup_v1.cc, cgroup_v2.cc).
//
// Paths are absolute from each hierarchy's root ("/berth/<id>"), never relative
// to berthd's own cgroup, and may not contain "..".
//
//   BERTH_ASSIGN_OR_RETURN(CgroupLayout layout, CgroupLayout::Detect());
//   BERTH_ASSIGN_OR_RETURN(Cgroup cg, Cgroup::Create(layout, "/berth/abc"));
//   CgroupResources r;
//   r.memory_limit = 64 << 20;
//   r.pids_max = 100;
//   BERTH_RETURN_IF_ERROR(cg.Apply(r));
//   BERTH_RETURN_IF_ERROR(cg.AddProcess(pid));   // before the child runs anything
//   ...
//   BERTH_RETURN_IF_ERROR(cg.Destroy());         // kills what is left, removes the dirs
//
// Ordering (cgroup-v2.rst): v2 controllers must be enabled in each ancestor's
// cgroup.subtree_control before a child can use them; Create enables them in the
// levels it makes and, on a pure v2 host, in the existing levels above as runc
// does (systemd's slices and kubelet's pod cgroups do not hand down all of
// them); on a hybrid host existing levels are left alone. v1 cpuset children start with
// empty cpus/mems and take no task until those are set; Create copies them down.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "os/cgroup/layout.h"

namespace berth {

// One device rule, as in v1 devices.allow: "c 1:3 rwm"; -1 stands for "*".
struct DeviceRule {
  bool allow = true;
  char type = 'a';  // 'a', 'c' or 'b'
  int64_t major = -1;
  int64_t minor = -1;
  std::string access = "rwm";
};

// OCI runtime-spec linux.resources, in its units. Unset means "leave as is".
struct CgroupResources {
  std::optional<uint64_t> cpu_shares;   // v1 cpu.shares; v2 cpu.weight (converted)
  std::optional<int64_t> cpu_quota_us;  // -1: no limit
  std::optional<uint64_t> cpu_period_us;
  std::optional<std::string> cpuset_cpus;  // "0-1,3"
  std::optional<std::string> cpuset_mems;
  std::optional<int64_t> memory_limit;  // bytes; -1: no limit
  std::optional<int64_t> memory_swap;   // memory + swap, bytes (OCI); -1: no limit
  // Swap alone (v2 memory.swap.max), bytes; -1: no limit. On v1 it becomes
  // memory + swap, which needs a memory limit. Not together with memory_swap.
  std::optional<int64_t> swap_max;
  std::optional<int64_t> pids_max;                 // -1: no limit
  std::optional<uint16_t> blkio_weight;            // 10..1000
  std::map<std::string, uint64_t> hugetlb_limits;  // page size ("2MB", "1GB") -> bytes
  // When set, all device access is denied first, then these rules apply in order.
  std::optional<std::vector<DeviceRule>> devices;
  // Raw cgroup v2 files ("memory.high" -> "1073741824"), written after the
  // settings above. Refused, naming the key, when the controller is not on
  // cgroup v2 here or the kernel has no such file.
  std::map<std::string, std::string> unified;
};

class Cgroup {
 public:
  // Makes the cgroup (and missing parents) in every hierarchy of `layout`.
  // `for_children`: the cgroup will hold child cgroups, never processes (a
  // pod's cgroup), so on v2 the levels made here, itself included, hand their
  // controllers down through cgroup.subtree_control.
  static absl::StatusOr<Cgroup> Create(const CgroupLayout& layout, std::string path,
                                       bool for_children = false);
  // An existing cgroup, e.g. after an agent restart. Nothing is written.
  static absl::StatusOr<Cgroup> Open(const CgroupLayout& layout, std::string path);

  const std::string& path() const { return path_; }
  // The directory of this cgroup in the hierarchy holding `controller`, or "".
  std::string DirFor(absl::string_view controller) const;

  absl::Status Apply(const CgroupResources& resources);
  // Moves `pid` into this cgroup in every hierarchy.
  absl::Status AddProcess(pid_t pid);
  // Every pid in the cgroup (union over hierarchies, sorted, no duplicates).
  absl::StatusOr<std::vector<pid_t>> Pids() const;
  // Every pid in the cgroup and in the cgroups below it.
  absl::StatusOr<std::vector<pid_t>> SubtreePids() const;
  // Freezer: v1 freezer.state, v2 cgroup.freeze; waits until the kernel says
  // the whole cgroup is frozen (or thawed).
  absl::Status Freeze();
  absl::Status Thaw();
  // SIGKILLs every process in the cgroup at once, so that none can fork
  // between the read of the pids and the kills: cgroup.kill on v2 (5.14+),
  // else with a v1 freezer freeze, kill every pid, thaw. Does not wait.
  absl::Status Kill();
  // SIGKILLs what is left, waits for the cgroup to empty, removes its directory
  // in every hierarchy. Idempotent: a cgroup already gone is fine.
  absl::Status Destroy();

 private:
  Cgroup(const CgroupLayout& layout, std::string path);
  // The pids of this cgroup's directories (and, with `subtree`, of those below).
  absl::StatusOr<std::vector<pid_t>> CollectPids(bool subtree) const;

  const CgroupLayout* layout_;
  std::string path_;
};

// What keeps `layout` from hosting containers under `root` (a cgroup path),
// each as a sentence; empty when nothing does. Checked: the controllers every
// container uses (cpu, memory, pids) exist; in each hierarchy the deepest
// existing level of `root` is writable, and on v2 its cgroup.subtree_control
// hands those controllers down (Berth enables them in levels it makes, never
// in one it did not). `delegation` false skips that last check: under the
// systemd driver, systemd enables controllers as its units need them.
std::vector<std::string> CgroupProblems(const CgroupLayout& layout, absl::string_view root,
                                        bool delegation = true);

// Validates a cgroup path: absolute, no "..", no empty components.
absl::Status CheckCgroupPath(absl::string_view path);

// Writes `value` to `dir/file` (O_WRONLY|O_TRUNC). The error names the value and path.
absl::Status WriteCgroupFile(const std::string& dir, absl::string_view file,
                             absl::string_view value);

// Whether hierarchy `h` holds `controller`; whether `dir/file` exists. Shared by
// the two backends.
bool HasController(const CgroupHierarchy& h, absl::string_view controller);
bool CgroupFileExists(const std::string& dir, absl::string_view file);

// The per-version halves of Apply: write the settings whose controller lives in
// `h` into `dir`.
absl::Status ApplyV1(const CgroupHierarchy& h, const std::string& dir, const CgroupResources& r);
absl::Status ApplyV2(const CgroupHierarchy& h, const std::string& dir, const CgroupResources& r);

// cgroup v2 cpu.weight for v1 cpu.shares: the linear map Kubernetes and runc
// have used (shares 2 -> 1, 1024 -> 39, 262144 -> 10000), which cAdvisor inverts.
uint64_t CpuSharesToWeight(uint64_t shares);

}  // namespace berth
