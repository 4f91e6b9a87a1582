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
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "os/unique_fd.h"
#include "shim/pin.h"
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

// How long berthd waits for a shim to answer one call (STYLE.md 18): a shim
// whose loop is stuck - say on a child a hostile container stopped, for at
// most its own 10 s child deadline - costs that call DEADLINE_EXCEEDED, never
// a berthd thread forever.
inline constexpr absl::Duration kShimCallTimeout = absl::Seconds(30);

// One request, one response, within `timeout` (connect, send and receive;
// absl::InfiniteDuration() for none). A response with a non-zero code becomes
// that Status, except an exec's DEADLINE_EXCEEDED, which carries its output:
// check response.code() for exec. A shim that does not answer in time is
// DEADLINE_EXCEEDED naming the socket.
absl::StatusOr<v1::Response> CallShim(const std::string& socket, const v1::Request& request,
                                      absl::Duration timeout = kShimCallTimeout);

// A call in two halves, for requests answered late (an exec with stdio fds):
// Send connects and writes `request` with `fds` (SCM_RIGHTS); the caller may
// poll the returned socket, or shutdown(2) it to give up; Receive reads the
// response (errors as CallShim's).
absl::StatusOr<UniqueFd> SendShimRequest(const std::string& socket, const v1::Request& request,
                                         absl::Span<const int> fds);
absl::StatusOr<v1::Response> ReceiveShimResponse(const UniqueFd& conn);

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

// A pod sandbox (shim/pin.h). PinOptions comes from shim/pin.h:
//   struct PinOptions { std::string dir; bool net, ipc, uts; std::string hostname;
//                       std::vector<std::pair<std::string, std::string>> sysctls; };
//
// Runs `shim_path --pin-namespaces ...` (posix_spawn, so nothing runs in a forked
// copy of a multi-threaded caller) and waits for it. Every sysctl is checked with
// CheckSandboxSysctl first, so a refused one never spawns anything. Errors carry
// the helper's stderr line: INVALID_ARGUMENT when it exits 2 (the input was
// refused: a sysctl the kernel lacks or a value it rejects, ...), INTERNAL
// otherwise. On error nothing is left mounted under options.dir.
absl::Status PinNamespaces(const std::string& shim_path, const PinOptions& options);

// Unmounts (MNT_DETACH) and removes <dir>/net, ipc, uts, then rmdirs <dir>.
// Idempotent: whatever is already gone is fine.
absl::Status UnpinNamespaces(const std::string& dir);

// The pause container of a pod that shares one PID namespace. Each path, when
// not empty, is a namespace to join (a pin under /run/berth/sandboxes/<id>/ns/);
// an empty one leaves pause in the host's (a host-network pod, say).
struct PauseOptions {
  std::string net_ns, ipc_ns, uts_ns;
  std::string cgroup_path;  // as ContainerSpec.cgroup_path; empty: none
};

// Makes <bundle>/rootfs a minimal root (empty /proc and /dev mount points, and
// `pause`: `shim_path` bind-mounted read-only), then runs it as a container
// (new PID and mount namespaces, /proc and a /dev tmpfs only, no capabilities,
// no_new_privileges, read-only root, args {"/pause"}) and starts it. The
// returned shim is the caller's child, as with LaunchShim; pause's PID
// namespace is /proc/<init_pid>/ns/pid. <bundle>/rootfs must not exist yet. On
// error nothing is left running or mounted.
absl::StatusOr<LaunchedShim> LaunchPause(const std::string& shim_path, const std::string& bundle,
                                         const PauseOptions& options);

// After the pause shim is deleted (or at any time: its container keeps its own
// copy of the mount): unmounts <bundle>/rootfs/pause and removes the rootfs.
// Idempotent.
absl::Status RemovePauseRoot(const std::string& bundle);

}  // namespace berth::shim
