// Reads a container's (or pod's) cgroup into CgroupStats (cgroup_stats.h), for
// cgroup v1, v2 (unified) and hybrid layouts alike: each controller's files are
// read from the hierarchy the layout says holds it, in that hierarchy's dialect.
//
//   BERTH_ASSIGN_OR_RETURN(CgroupLayout layout, CgroupLayout::Detect());
//   BERTH_ASSIGN_OR_RETURN(metrics::CgroupStats s,
//                          metrics::ReadCgroupStats(layout, "/berth/abc"));
//   if (s.memory.working_set) ...;
//   for (const absl::Status& e : s.errors) LOG(WARNING) << e;
//
// Each file is read once. A file that cannot be read or parsed leaves its group
// of fields absent and adds a Status to CgroupStats::errors; files the kernel
// need not offer (memory.peak, memory.memsw.*, memory.swap.*, *.pressure) are
// silently absent when missing. Only a cgroup missing from every hierarchy is an
// error (NOT_FOUND). A controller no hierarchy holds leaves its group absent.
//
// Cost (research/metrics.md §3): memory.stat is the expensive read in the
// kernel; callers should read on a fixed interval, not per scrape.
#pragma once

#include <sys/types.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "metrics/cgroup_stats.h"
#include "os/cgroup/layout.h"

namespace berth::metrics {

absl::StatusOr<CgroupStats> ReadCgroupStats(const CgroupLayout& layout,
                                            absl::string_view cgroup_path);

// The processes in the cgroup: cgroup.procs of the hierarchy holding "pids",
// else "memory", else the first hierarchy.
absl::StatusOr<std::vector<pid_t>> ReadCgroupProcs(const CgroupLayout& layout,
                                                   absl::string_view cgroup_path);

}  // namespace berth::metrics
