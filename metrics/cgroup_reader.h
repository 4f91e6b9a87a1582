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

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "metrics/cgroup_stats.h"
#include "os/cgroup/layout.h"
#include "os/unique_fd.h"

namespace berth::metrics {

// The files of one cgroup kept open between reads. pread(2) at offset 0 makes
// a kernfs seq_file show again (seq_read_iter restarts at position 0): ~1 µs a
// file against ~8 µs for open + read + close on this machine's cgroup v1 files,
// the difference being the path walk and the file set-up. A removed cgroup's
// files answer ENODEV: the next read says NOT_FOUND and the cache empties.
// Not thread-safe: one reader at a time.
class CgroupFileCache {
 public:
  absl::StatusOr<std::string> Read(const std::string& dir, absl::string_view name);
  size_t size() const { return fds_.size(); }
  bool gone() const { return gone_; }
  void Clear() {
    fds_.clear();
    hugetlb_sizes_.reset();
    gone_ = false;
  }
  // The hugetlb page sizes this cgroup has files for, listed at its first read
  // (an empty list too: a v2 cgroup without the hugetlb controller has none).
  std::optional<std::vector<std::string>>& hugetlb_sizes() { return hugetlb_sizes_; }

 private:
  std::map<std::string, UniqueFd> fds_;  // by path
  std::optional<std::vector<std::string>> hugetlb_sizes_;
  bool gone_ = false;
};

// `cache`, when given, keeps the files open for the next call on this cgroup.
absl::StatusOr<CgroupStats> ReadCgroupStats(const CgroupLayout& layout,
                                            absl::string_view cgroup_path,
                                            CgroupFileCache* cache = nullptr);

// The processes in the cgroup: cgroup.procs of the hierarchy holding "pids",
// else "memory", else the first hierarchy.
// Read afresh at each call: on v1 a kept-open cgroup.procs serves the pid list
// the kernel built for it up to a second earlier.
absl::StatusOr<std::vector<pid_t>> ReadCgroupProcs(const CgroupLayout& layout,
                                                   absl::string_view cgroup_path);

}  // namespace berth::metrics
