// The cgroup v2 device controller: an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup, built here
// from the same rules v1 writes to devices.allow/devices.deny
// (Documentation/admin-guide/cgroup-v2.rst, "Device controller").
//
// Semantics are v1's: everything is denied first, then the rules apply in
// order, a later rule overriding an earlier one. The program tests the rules
// last to first and returns the verdict of the first that matches: an allow
// rule matches an access it fully covers (a request for "rw" needs "rw"), a
// deny rule matches an access it touches at all (a "w" deny refuses "rw").
// No rule matching means "deny".
//
// The program is attached with BPF_F_ALLOW_MULTI, as runc and crun do: every
// program on the cgroup and on its ancestors must allow an access. A new
// program replaces the old one atomically (BPF_F_REPLACE), or is attached
// before the old ones are detached, so there is never a moment where the
// cgroup allows more than either rule set does.
//
//   BERTH_RETURN_IF_ERROR(ApplyDeviceFilter("/sys/fs/cgroup/berth/c1", rules));
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "os/cgroup/cgroup.h"

namespace berth {

// The program for `rules` (deny all first, then `rules` in order). Refuses a
// rule with a type other than a/b/c, an access other than a non-empty mix of
// r, w and m, or a major/minor outside 0..2^32-1 (-1 is the wildcard).
absl::StatusOr<std::vector<bpf_insn>> DeviceFilterProgram(const std::vector<DeviceRule>& rules);

// Loads the program for `rules` and makes it the only device program on the
// cgroup directory `dir` (see above for why there is no window).
absl::Status ApplyDeviceFilter(const std::string& dir, const std::vector<DeviceRule>& rules);

// The ids of the device programs attached to the cgroup directory `dir`.
absl::StatusOr<std::vector<uint32_t>> AttachedDevicePrograms(const std::string& dir);

}  // namespace berth
