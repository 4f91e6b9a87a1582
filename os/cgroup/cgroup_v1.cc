// cgroup v1 (Documentation/admin-guide/cgroup-v1/): one file per knob in the
// controller's own hierarchy. Settings whose controller lives elsewhere (in the
// cgroup2 half of a hybrid system, say) are left to that hierarchy's backend.
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "os/cgroup/cgroup.h"
#include "os/status.h"

namespace berth {
namespace {

std::string Num(int64_t v) { return std::to_string(v); }

std::string DeviceNumber(int64_t n) { return n < 0 ? "*" : std::to_string(n); }

absl::Status ApplyMemory(const std::string& dir, const CgroupResources& given) {
  CgroupResources r = given;
  if (r.swap_max) {  // swap alone: v1 only knows memory + swap
    if (*r.swap_max >= 0 && (!r.memory_limit || *r.memory_limit < 0)) {
      return absl::InvalidArgumentError(
          "a swap limit alone (memory.swap.max) needs a memory limit on cgroup v1, which limits "
          "memory + swap");
    }
    r.memory_swap = *r.swap_max < 0 ? -1 : *r.memory_limit + *r.swap_max;
  }
  const bool swap = r.memory_swap.has_value();
  if (swap && !CgroupFileExists(dir, "memory.memsw.limit_in_bytes")) {
    return absl::FailedPreconditionError(
        "memory+swap limit asked for, but this kernel has no swap accounting "
        "(memory.memsw.limit_in_bytes is missing: boot with swapaccount=1)");
  }
  if (!r.memory_limit) {
    return swap ? WriteCgroupFile(dir, "memory.memsw.limit_in_bytes", Num(*r.memory_swap))
                : absl::OkStatus();
  }
  // memsw must stay >= limit at every moment: raising, set memsw first; lowering,
  // set limit first. Try limit first and swap the order when the kernel says no.
  absl::Status first = WriteCgroupFile(dir, "memory.limit_in_bytes", Num(*r.memory_limit));
  if (first.ok()) {
    return swap ? WriteCgroupFile(dir, "memory.memsw.limit_in_bytes", Num(*r.memory_swap))
                : absl::OkStatus();
  }
  if (!swap) return first;
  BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "memory.memsw.limit_in_bytes", Num(*r.memory_swap)));
  return WriteCgroupFile(dir, "memory.limit_in_bytes", Num(*r.memory_limit));
}

absl::Status ApplyDevices(const std::string& dir, const std::vector<DeviceRule>& rules) {
  BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "devices.deny", "a"));
  for (const DeviceRule& d : rules) {
    std::string rule = d.type == 'a'
                           ? std::string("a")
                           : absl::StrCat(std::string(1, d.type), " ", DeviceNumber(d.major), ":",
                                          DeviceNumber(d.minor), " ", d.access);
    BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, d.allow ? "devices.allow" : "devices.deny", rule));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyV1(const CgroupHierarchy& h, const std::string& dir, const CgroupResources& r) {
  if (HasController(h, "cpu")) {
    if (r.cpu_shares) BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "cpu.shares", Num(*r.cpu_shares)));
    // Period before quota: a quota is checked against the current period.
    if (r.cpu_period_us) {
      BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "cpu.cfs_period_us", Num(*r.cpu_period_us)));
    }
    if (r.cpu_quota_us) {
      BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "cpu.cfs_quota_us", Num(*r.cpu_quota_us)));
    }
  }
  if (HasController(h, "cpuset")) {
    // mems before cpus does not matter in v1; both must be non-empty to take tasks.
    if (r.cpuset_cpus) BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "cpuset.cpus", *r.cpuset_cpus));
    if (r.cpuset_mems) BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "cpuset.mems", *r.cpuset_mems));
  }
  if (HasController(h, "memory")) BERTH_RETURN_IF_ERROR(ApplyMemory(dir, r));
  if (HasController(h, "pids") && r.pids_max) {
    BERTH_RETURN_IF_ERROR(
        WriteCgroupFile(dir, "pids.max", *r.pids_max < 0 ? "max" : Num(*r.pids_max)));
  }
  if (HasController(h, "blkio") && r.blkio_weight) {
    // CFQ's blkio.weight, or BFQ's; with neither scheduler there is no weight knob.
    const char* file = CgroupFileExists(dir, "blkio.weight")       ? "blkio.weight"
                       : CgroupFileExists(dir, "blkio.bfq.weight") ? "blkio.bfq.weight"
                                                                   : nullptr;
    if (file == nullptr) {
      return absl::FailedPreconditionError(
          "blkio weight asked for, but no I/O scheduler here has weights "
          "(neither blkio.weight nor blkio.bfq.weight exists)");
    }
    BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, file, Num(*r.blkio_weight)));
  }
  if (HasController(h, "hugetlb")) {
    for (const auto& [size, bytes] : r.hugetlb_limits) {
      std::string file = absl::StrCat("hugetlb.", size, ".limit_in_bytes");
      if (!CgroupFileExists(dir, file)) {
        return absl::InvalidArgumentError(
            absl::StrCat("hugetlb page size `", size, "` is not supported here (no ", file, ")"));
      }
      BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, file, Num(static_cast<int64_t>(bytes))));
    }
  }
  if (HasController(h, "devices") && r.devices)
    BERTH_RETURN_IF_ERROR(ApplyDevices(dir, *r.devices));
  return absl::OkStatus();
}

}  // namespace berth
