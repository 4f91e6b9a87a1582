// What one container's (or pod's) cgroup says about its resource use and limits:
// a plain struct filled by ReadCgroupStats (cgroup_reader.h) from cgroup v1, v2
// or hybrid hierarchies, and read by the cAdvisor collector and CRI
// ContainerStats alike (STYLE.md 7). Nothing here links prometheus or gRPC.
//
// Every field is optional: a file the kernel does not offer (memory.peak before
// 5.19, memory.memsw.* without swap accounting, PSI with psi=0) or one that
// failed to read leaves its fields absent, never 0. Units are normalised: CPU
// times in ns (v2 reports µs, v1 cpuacct.stat USER_HZ ticks), memory in bytes.
// Limits use kUnlimited for v2 "max", v1's "unlimited" (PAGE_COUNTER_MAX pages,
// 9223372036854771712 on x86-64) and cpu.cfs_quota_us -1.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace berth::metrics {

// "No limit". cAdvisor reports v2 "max" as math.MaxUint64 too.
inline constexpr uint64_t kUnlimited = UINT64_MAX;

struct CpuStats {
  std::optional<uint64_t> usage_ns;      // v1 cpuacct.usage; v2 cpu.stat usage_usec
  std::optional<uint64_t> user_ns;       // v1 cpuacct.stat user; v2 user_usec
  std::optional<uint64_t> system_ns;     // v1 cpuacct.stat system; v2 system_usec
  std::optional<uint64_t> nr_periods;    // cpu.stat (v1 and v2)
  std::optional<uint64_t> nr_throttled;  // cpu.stat
  std::optional<uint64_t> throttled_ns;  // v1 throttled_time; v2 throttled_usec
};

// container_spec_cpu_*: what the cgroup is configured with.
struct CpuSpec {
  std::optional<uint64_t> shares;     // v1 cpu.shares; v2 cpu.weight mapped back
  std::optional<uint64_t> quota_us;   // v1 cpu.cfs_quota_us; v2 cpu.max 1st; kUnlimited
  std::optional<uint64_t> period_us;  // v1 cpu.cfs_period_us; v2 cpu.max 2nd
};

struct MemoryStats {
  std::optional<uint64_t> usage;         // v1 memory.usage_in_bytes; v2 memory.current
  std::optional<uint64_t> max_usage;     // v1 memory.max_usage_in_bytes; v2 memory.peak
  std::optional<uint64_t> working_set;   // usage - inactive_file, floored at 0
  std::optional<uint64_t> rss;           // v1 total_rss; v2 anon
  std::optional<uint64_t> cache;         // v1 total_cache; v2 file
  std::optional<uint64_t> mapped_file;   // v1 total_mapped_file; v2 file_mapped
  std::optional<uint64_t> swap;          // v1 total_swap; v2 memory.swap.current
  std::optional<uint64_t> failcnt;       // v1 memory.failcnt; v2 has none
  std::optional<uint64_t> pgfault;       // memory.stat (v1 total_pgfault)
  std::optional<uint64_t> pgmajfault;    // memory.stat (v1 total_pgmajfault)
  std::optional<uint64_t> oom_kills;     // v1 memory.oom_control oom_kill; v2 memory.events
  std::optional<uint64_t> kernel_usage;  // v1 memory.kmem.usage_in_bytes; v2 memory.stat kernel
  // Spec (container_spec_memory_*). swap_limit is what the kernel calls it:
  // v1 memory.memsw.limit_in_bytes is memory+swap, v2 memory.swap.max swap alone.
  std::optional<uint64_t> limit;       // v1 memory.limit_in_bytes; v2 memory.max
  std::optional<uint64_t> swap_limit;  // v1 memory.memsw.limit_in_bytes; v2 memory.swap.max
  std::optional<uint64_t> soft_limit;  // v1 memory.soft_limit_in_bytes; v2 memory.min
};

struct PidsStats {
  std::optional<uint64_t> current;  // pids.current
  std::optional<uint64_t> max;      // pids.max; kUnlimited for "max"
};

// One block device, from v1 blkio.throttle.io_service{d,_bytes}[_recursive] or
// v2 io.stat.
struct BlkioDeviceStats {
  uint32_t major = 0;
  uint32_t minor = 0;
  std::optional<uint64_t> read_bytes;
  std::optional<uint64_t> write_bytes;
  std::optional<uint64_t> read_ops;
  std::optional<uint64_t> write_ops;
};

// One huge page size ("2MB", "1GB"), as the kernel spells it in file names.
struct HugetlbStats {
  std::string page_size;
  std::optional<uint64_t> usage;      // v1 usage_in_bytes; v2 current
  std::optional<uint64_t> max_usage;  // v1 max_usage_in_bytes; v2 has none
  std::optional<uint64_t> failcnt;    // v1 failcnt; v2 hugetlb.<size>.events max
};

// One *.pressure file: cumulative stall time in µs (Documentation/accounting/psi.rst).
struct PsiStats {
  std::optional<uint64_t> some_total_us;
  std::optional<uint64_t> full_total_us;
};

struct CgroupStats {
  CpuStats cpu;
  CpuSpec cpu_spec;
  MemoryStats memory;
  PidsStats pids;
  std::optional<std::vector<BlkioDeviceStats>> blkio;  // absent: unreadable or no controller
  std::vector<HugetlbStats> hugetlb;                   // one per page size found
  std::optional<PsiStats> cpu_pressure;
  std::optional<PsiStats> memory_pressure;
  std::optional<PsiStats> io_pressure;
  // One Status per file that could not be read or parsed; its fields are absent.
  std::vector<absl::Status> errors;
};

}  // namespace berth::metrics
