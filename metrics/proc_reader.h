// Per-process figures of a cgroup's processes from /proc (cAdvisor's
// container_processes, _threads, _file_descriptors, _sockets) and the network
// counters a container's netns shows in /proc/<pid>/net/dev (proc(5)).
//
//   BERTH_ASSIGN_OR_RETURN(std::vector<pid_t> pids, ReadCgroupProcs(layout, path));
//   BERTH_ASSIGN_OR_RETURN(ProcessStats p, ReadProcessStats(pids));
//   BERTH_ASSIGN_OR_RETURN(auto ifaces, ReadNetDev(pids.front()));
//
// Processes come and go while we walk: one that has exited (ENOENT) is skipped
// and not counted. Walking every fd of every process is the cost cAdvisor is
// blamed for (research/metrics.md §3); callers should do it on an interval.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "metrics/cgroup_parse.h"

namespace berth::metrics {

struct ProcessStats {
  uint64_t processes = 0;  // pids still alive when read
  uint64_t threads = 0;    // sum of /proc/<pid>/status Threads
  uint64_t fds = 0;        // entries in /proc/<pid>/fd
  uint64_t sockets = 0;    // fd links "socket:[inode]"
  // Failures other than a process having exited (EACCES, parse errors).
  std::vector<absl::Status> errors;
};

// `threads` false skips /proc/<pid>/status (threads stays 0): callers that
// have pids.current, which counts the cgroup's tasks, need not read it.
ProcessStats ReadProcessStats(const std::vector<pid_t>& pids, absl::string_view proc_root = "/proc",
                              bool threads = true);

// <proc_root>/<pid>/net/dev, loopback left out.
absl::StatusOr<std::vector<NetInterfaceStats>> ReadNetDev(pid_t pid,
                                                          absl::string_view proc_root = "/proc");

// The number of open fds in a /proc/<pid>/fd directory: its size where the
// kernel reports it (Linux >= 6.2, one stat instead of a listing), else listed.
absl::StatusOr<uint64_t> CountOpenFds(const std::string& fd_dir);

}  // namespace berth::metrics
