// Talking to berth-shim from outside: launch one for a bundle, send it
// requests. Used by berthd (later), the tests and bench/.
//
//   v1::ContainerSpec spec = DefaultSpec("c1", "/run/berth/c1/rootfs", {"/bin/sh", "-c", "id"});
//   BERTH_ASSIGN_OR_RETURN(LaunchedShim shim, LaunchShim(shim_path, bundle, spec));
//   BERTH_RETURN_IF_ERROR(CallShim(shim.socket, StartRequest()).status());
//   BERTH_ASSIGN_OR_RETURN(v1::Response r, CallShim(shim.socket, WaitRequest()));
//
// The shim is the launcher's child (setsid, not double-forked): the launcher
// reaps it after delete (ReapShim); if the launcher dies first, the shim lives
// on under the nearest subreaper.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shim/v1/shim.pb.h"

namespace berth::shim {

struct LaunchedShim {
  pid_t shim_pid = -1;
  pid_t init_pid = -1;
  std::string bundle;
  std::string socket;
};

// Writes <bundle>/spec.pb, runs the shim, returns once the container is CREATED
// (or the shim's error, with its code).
absl::StatusOr<LaunchedShim> LaunchShim(const std::string& shim_path, const std::string& bundle,
                                        const v1::ContainerSpec& spec);

// One request, one response. A response with a non-zero code becomes that
// Status, except an exec's DEADLINE_EXCEEDED, which carries its output: check
// response.code() for exec.
absl::StatusOr<v1::Response> CallShim(const std::string& socket, const v1::Request& request);

v1::Request StartRequest();
v1::Request WaitRequest();
v1::Request StateRequest();
v1::Request DeleteRequest();
v1::Request KillRequest(int signal, bool all = false);

// Waits for the shim process (after a delete); its exit status.
absl::StatusOr<int> ReapShim(pid_t shim_pid);

// The OCI defaults containerd gives a Kubernetes container (research/shims.md §6):
// new pid, mount, uts, ipc, network namespaces; /proc, /dev, /dev/pts,
// /dev/shm, /dev/mqueue, /sys (ro); the masked and read-only paths; the
// default capability set; PATH.
v1::ContainerSpec DefaultSpec(const std::string& id, const std::string& root,
                              const std::vector<std::string>& args);

}  // namespace berth::shim
