// cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): one unified hierarchy,
// interface files named by controller. In a hybrid system this hierarchy holds
// only the controllers no v1 hierarchy took, so every setting checks that its
// controller is here before writing.
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "os/cgroup/cgroup.h"
#include "os/status.h"

namespace berth {
namespace {

std::string MaxOr(int64_t v) { return v < 0 ? "max" : std::to_string(v); }

// A controller the hierarchy has but this cgroup's parent did not delegate has no
// interface files here.
absl::Status NeedFile(const std::string& dir, absl::string_view file, absl::string_view ctrl) {
  if (CgroupFileExists(dir, file)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the ", ctrl, " controller is not enabled for this cgroup (no ", file,
                   "): its parent's cgroup.subtree_control lacks `", ctrl, "`"));
}

absl::Status ApplyCpu(const std::string& dir, const CgroupResources& r) {
  if (r.cpu_shares) {
    BERTH_RETURN_IF_ERROR(NeedFile(dir, "cpu.weight", "cpu"));
    BERTH_RETURN_IF_ERROR(
        WriteCgroupFile(dir, "cpu.weight", std::to_string(CpuSharesToWeight(*r.cpu_shares))));
  }
  if (r.cpu_quota_us || r.cpu_period_us) {
    BERTH_RETURN_IF_ERROR(NeedFile(dir, "cpu.max", "cpu"));
    // "$MAX $PERIOD"; the kernel's default period is 100ms.
    std::string quota = r.cpu_quota_us ? MaxOr(*r.cpu_quota_us) : "max";
    uint64_t period = r.cpu_period_us.value_or(100000);
    BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "cpu.max", absl::StrCat(quota, " ", period)));
  }
  return absl::OkStatus();
}

absl::Status ApplyMemory(const std::string& dir, const CgroupResources& r) {
  if (r.memory_limit) {
    BERTH_RETURN_IF_ERROR(NeedFile(dir, "memory.max", "memory"));
    BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "memory.max", MaxOr(*r.memory_limit)));
  }
  if (r.swap_max) {
    if (!CgroupFileExists(dir, "memory.swap.max")) {
      return absl::FailedPreconditionError(
          "swap limit asked for, but this kernel has no swap accounting "
          "(memory.swap.max is missing)");
    }
    return WriteCgroupFile(dir, "memory.swap.max", MaxOr(*r.swap_max));
  }
  if (r.memory_swap) {
    // OCI gives memory+swap; v2 limits swap alone.
    if (!CgroupFileExists(dir, "memory.swap.max")) {
      return absl::FailedPreconditionError(
          "memory+swap limit asked for, but this kernel has no swap accounting "
          "(memory.swap.max is missing)");
    }
    std::string swap = "max";
    if (*r.memory_swap >= 0) {
      if (!r.memory_limit || *r.memory_limit < 0) {
        return absl::InvalidArgumentError("memory_swap needs a memory limit on cgroup v2");
      }
      if (*r.memory_swap < *r.memory_limit) {
        return absl::InvalidArgumentError(absl::StrCat("memory_swap (", *r.memory_swap,
                                                       ") is below the memory limit (",
                                                       *r.memory_limit, ")"));
      }
      swap = std::to_string(*r.memory_swap - *r.memory_limit);
    }
    BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "memory.swap.max", swap));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyV2(const CgroupHierarchy& h, const std::string& dir, const CgroupResources& r) {
  if (HasController(h, "cpu")) BERTH_RETURN_IF_ERROR(ApplyCpu(dir, r));
  if (HasController(h, "cpuset")) {
    if (r.cpuset_cpus) BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "cpuset.cpus", *r.cpuset_cpus));
    if (r.cpuset_mems) BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "cpuset.mems", *r.cpuset_mems));
  }
  if (HasController(h, "memory")) BERTH_RETURN_IF_ERROR(ApplyMemory(dir, r));
  if (HasController(h, "pids") && r.pids_max) {
    BERTH_RETURN_IF_ERROR(NeedFile(dir, "pids.max", "pids"));
    BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "pids.max", MaxOr(*r.pids_max)));
  }
  if (HasController(h, "io") && r.blkio_weight) {
    // io.weight is 1..10000; v1's 10..1000 maps linearly onto it (as runc does).
    // BFQ's io.bfq.weight keeps v1's range.
    if (CgroupFileExists(dir, "io.weight")) {
      uint64_t weight = 1 + (std::clamp<uint64_t>(*r.blkio_weight, 10, 1000) - 10) * 9999 / 990;
      BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "io.weight", absl::StrCat("default ", weight)));
    } else {
      BERTH_RETURN_IF_ERROR(NeedFile(dir, "io.bfq.weight", "io"));
      BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "io.bfq.weight", std::to_string(*r.blkio_weight)));
    }
  }
  if (HasController(h, "hugetlb")) {
    for (const auto& [size, bytes] : r.hugetlb_limits) {
      std::string file = absl::StrCat("hugetlb.", size, ".max");
      BERTH_RETURN_IF_ERROR(NeedFile(dir, file, "hugetlb"));
      BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, file, std::to_string(bytes)));
    }
  }
  // Cgroup::Apply checked that each key's controller lives in a v2 hierarchy.
  for (const auto& [key, value] : r.unified) {
    if (!HasController(h, key.substr(0, key.find('.')))) continue;
    if (!CgroupFileExists(dir, key)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "unified[", key, "]: this kernel has no such file in ", dir,
          " (the controller is not enabled for this cgroup, or the kernel predates the file)"));
    }
    BERTH_RETURN_IF_ERROR(
        Annotate(WriteCgroupFile(dir, key, value), absl::StrCat("unified[", key, "]")));
  }
  return absl::OkStatus();
}

}  // namespace berth
