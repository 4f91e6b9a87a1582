// The container's init, between clone() and execve (see sync.h for the protocol).
//
// Namespaces (namespaces(7), setns(2)): new ones come from the clone flags; ones
// given by path are joined here, the user namespace first so that the others,
// owned by it, may be joined. A new cgroup namespace is unshared only after the
// parent has placed the child in its cgroups, so that cgroup becomes the root
// the container sees (cgroup_namespaces(7)). Then the root filesystem
// (rootfs.h) and the process's credentials (process.h).
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "os/syscalls.h"
#include "shim/process.h"
#include "shim/rootfs.h"

namespace berth::shim {

struct InitPlan {
  std::vector<std::pair<int, int>> join;  // (fd, CLONE_NEW*) in order, user first
  bool new_userns = false;
  bool unshare_cgroup = false;
  int stdio[3] = {-1, -1, -1};
  RootfsPlan rootfs;
  std::unique_ptr<ProcessPlan> process;
};

// Runs in the child. Never returns.
[[noreturn]] void RunInit(const InitPlan& plan, int sync_fd, Syscalls& sys);

// For an exec'd process: wait for kGo, join `join`, stdio, then RunProcess.
[[noreturn]] void RunJoined(const InitPlan& plan, int sync_fd, Syscalls& sys);

}  // namespace berth::shim
