// Parsers for the cgroup and /proc file formats the metrics readers need, apart
// from any I/O (STYLE.md 6): each takes a file's text and returns values or an
// INVALID_ARGUMENT naming what it could not parse. Formats are those of
// Documentation/admin-guide/cgroup-v2.rst ("Interface Files", "Format") and
// cgroup-v1/{memory,blkio-controller}.rst.
//
//   auto stat = ParseFlatKeyed("usage_usec 599108\nuser_usec 400173\n");
//   uint64_t usec = stat->at("usage_usec");
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "metrics/cgroup_stats.h"

namespace berth::metrics {

// A single unsigned value ("2\n"), e.g. memory.current, pids.current.
absl::StatusOr<uint64_t> ParseUint(absl::string_view text);

// A limit: "max" (v2), "-1" (v1 cpu.cfs_quota_us) and v1 values >= 2^62 (the
// kernel's PAGE_COUNTER_MAX * PAGE_SIZE, rounded) become kUnlimited.
absl::StatusOr<uint64_t> ParseLimit(absl::string_view text);

// Flat keyed "key value" lines: memory.stat, cpu.stat, cpuacct.stat,
// memory.events, memory.oom_control, hugetlb.<size>.events.
absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> ParseFlatKeyed(absl::string_view text);

// v2 cpu.max, "$MAX $PERIOD": {quota_us or kUnlimited, period_us}.
absl::StatusOr<std::pair<uint64_t, uint64_t>> ParseCpuMax(absl::string_view text);

// v2 io.stat, nested keyed: "8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
// Keys other than the four above (dbytes, cost.*) are ignored.
absl::StatusOr<std::vector<BlkioDeviceStats>> ParseIoStat(absl::string_view text);

// v1 blkio "maj:min Op value" lines (Op Read, Write, Sync, Async, Discard,
// Total) ending in "Total value". Only Read and Write are kept: as bytes when
// `bytes` (io_service_bytes), else as ops (io_serviced), merged into `devices`.
absl::Status ParseBlkioV1(absl::string_view text, bool bytes,
                          std::vector<BlkioDeviceStats>& devices);

// A *.pressure file: "some avg10=0.00 avg60=0.00 avg300=0.00 total=N" and,
// when present, the same line for "full".
absl::StatusOr<PsiStats> ParsePressure(absl::string_view text);

// cgroup.procs: one pid per line.
absl::StatusOr<std::vector<pid_t>> ParsePidList(absl::string_view text);

// v2 cpu.weight (1..10000) back to v1 cpu.shares, the inverse of
// os/cgroup CpuSharesToWeight as cAdvisor computes it: 2 + (w-1)*262142/9999.
uint64_t CpuWeightToShares(uint64_t weight);

// v1 cpuacct.stat counts USER_HZ ticks.
uint64_t TicksToNs(uint64_t ticks, uint64_t ticks_per_second);

// /proc/<pid>/status "Threads:\tN".
absl::StatusOr<uint64_t> ParseStatusThreads(absl::string_view text);

struct NetInterfaceStats {
  std::string name;
  uint64_t rx_bytes = 0;
  uint64_t rx_packets = 0;
  uint64_t rx_errors = 0;
  uint64_t rx_dropped = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_packets = 0;
  uint64_t tx_errors = 0;
  uint64_t tx_dropped = 0;
};

// /proc/<pid>/net/dev: two header lines, then "name: 16 numbers" (rx bytes
// packets errs drop fifo frame compressed multicast, tx bytes packets errs drop
// fifo colls carrier compressed). Loopback ("lo") is left out, as cAdvisor does.
absl::StatusOr<std::vector<NetInterfaceStats>> ParseNetDev(absl::string_view text);

}  // namespace berth::metrics
