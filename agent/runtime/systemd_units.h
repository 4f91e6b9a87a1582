// The systemd cgroup driver's half that talks to systemd: transient slices for
// pods and transient scopes for containers, made over D-Bus (libsystemd's
// sd-bus) as runc's systemd driver makes them. systemd owns the cgroup tree
// on such a node; a unit's cgroup is the runtime's to write only below
// Delegate=yes.
//
// Layout (what kubelet's systemd driver expects): a pod's cgroup_parent is a
// slice name, `kubepods-burstable-pod<uid>.slice`, whose dashes are its
// nesting: /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice.
// Each container (and a pod's pause process) is a scope `berth-<id>.scope` in
// its pod's slice, with Delegate=yes and its limits as unit properties; the
// shim writes the same limits and what has no property into the scope's
// cgroup, as runc writes after setting properties.
//
//   BERTH_ASSIGN_OR_RETURN(std::string path, SliceCgroupPath("kubepods-pod1.slice"));
//   BERTH_RETURN_IF_ERROR(StartScope("berth-abc.scope", "kubepods-pod1.slice", pid, limits));
//   ...
//   BERTH_RETURN_IF_ERROR(StopUnit("berth-abc.scope"));
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::lifecycle {

// Whether systemd is the init system here (sd_booted(3): /run/systemd/system).
bool SystemdBooted();

// The cgroup path of slice `name` as systemd expands it: "a-b.slice" ->
// "/a.slice/a-b.slice"; "-.slice" is "/". INVALID_ARGUMENT for a name that
// is not a valid slice name (no ".slice", empty parts, a leading, trailing or
// doubled dash, characters systemd does not allow in unit names).
absl::StatusOr<std::string> SliceCgroupPath(absl::string_view name);

// The slice a cgroup path of slices ends in ("/a.slice/a-b.slice" ->
// "a-b.slice"); "/" is "-.slice".
std::string SliceOfPath(absl::string_view path);

// Limits systemd keeps as unit properties (systemd.resource-control(5)):
// what systemd would otherwise write over on a daemon-reload is given as a
// property too. UINT64_MAX is "infinity".
struct UnitLimits {
  std::optional<uint64_t> cpu_weight;            // CPUWeight, 1..10000
  std::optional<uint64_t> cpu_quota_per_sec_us;  // CPUQuotaPerSecUSec
  std::optional<uint64_t> cpu_quota_period_us;   // CPUQuotaPeriodUSec
  std::optional<uint64_t> memory_max;            // MemoryMax, bytes
  std::optional<uint64_t> memory_swap_max;       // MemorySwapMax, bytes
  // memory.min/low/high (kubelet's MemoryQoS) as MemoryMin/MemoryLow/MemoryHigh.
  std::map<std::string, uint64_t> memory_qos;
  std::optional<uint64_t> tasks_max;  // TasksMax
  std::vector<uint8_t> allowed_cpus;  // AllowedCPUs, a bitmask; empty: unset
};

// A transient scope `name` in `slice` holding `pid`, Delegate=yes, with
// `limits`. Returns once its cgroup directory `cgroup_dir` exists (or fails
// after a deadline).
absl::Status StartScope(const std::string& name, const std::string& slice, pid_t pid,
                        const UnitLimits& limits, const std::string& cgroup_dir);
// Sets `limits` on unit `name` (SetUnitProperties, runtime): what
// UpdateContainerResources changed, so that a daemon-reload keeps it.
absl::Status SetUnitLimits(const std::string& name, const UnitLimits& limits);
// A transient slice `name` (its parents are made by systemd as needed);
// returns once `cgroup_dir` exists.
absl::Status StartSlice(const std::string& name, const std::string& cgroup_dir);
// Stops unit `name` and waits (with a deadline) until its cgroup directory
// `cgroup_dir` is gone; a unit systemd does not know is fine.
absl::Status StopUnit(const std::string& name, const std::string& cgroup_dir);

// "0-2,5" -> the bytes of AllowedCPUs (bit n of byte n/8 for CPU n).
absl::StatusOr<std::vector<uint8_t>> CpuListMask(absl::string_view list);

}  // namespace berth::lifecycle
