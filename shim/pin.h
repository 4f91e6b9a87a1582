// A pod sandbox's namespaces without a long-lived process (DESIGN.md, The
// lifecycle: RunPodSandbox), and the pause PID 1 of a pod that shares one PID
// namespace.
//
// A namespace lives as long as something refers to it: a process, an open fd or
// a bind mount of its /proc/<pid>/ns/<x> file (namespaces(7), "The
// /proc/[pid]/ns/ directory"). `berth-shim --pin-namespaces DIR ...` is a
// short-lived, exec'd helper (berthd is multi-threaded and runs no C++ in a
// forked child, STYLE.md 10) that
//
//   1. unshare(2)s the requested namespaces (net, ipc, uts) in one call;
//   2. in the new UTS namespace sets the hostname (sethostname(2));
//   3. in the new network namespace brings `lo` up (SIOCGIFFLAGS/SIOCSIFFLAGS,
//      netdevice(7)): a new namespace's loopback starts down;
//   4. writes each sysctl to /proc/sys/<key, dots as slashes>: net.* and the IPC
//      sysctls resolve against the writer's own namespaces (sysctl(2), proc(5)),
//      so after step 1 they are the pod's, not the host's;
//   5. for each namespace creates DIR/<net|ipc|uts> (an empty file, 0444) and
//      bind-mounts /proc/self/ns/<x> onto it (mount(2) MS_BIND) - this process
//      stays in the host's mount namespace, so the pin is visible to berthd.
//
// Everything that can be refused is checked before step 1, and steps 2-4 come
// before any mount, so a failure mounts nothing; a failure in step 5 unmounts
// (MNT_DETACH) and unlinks what it made. The helper then exits: the pins hold
// the namespaces. UnpinNamespaces (shim/client.h) undoes step 5.
//
// Exit status: 0 done, 2 invalid input (INVALID_ARGUMENT: a refused sysctl, a
// sysctl the kernel does not have or a value it rejects, a hostname without a
// UTS namespace, bad flags), 1 anything else; one line `berth-shim: <message>`
// on stderr.
//
// `berth-shim --pause` (or the binary called as "pause"): PID 1 of a pod's
// shared PID namespace. All signals blocked, a sigwaitinfo(2) loop: SIGCHLD
// reaps every exited child (orphans of the pod are reparented to it,
// pid_namespaces(7)); SIGTERM and SIGINT end it (and with it the namespace);
// others are ignored. A blocked signal is queued even for a namespace's init,
// which otherwise drops signals it has no handler for. It opens no file.
//
//   PinOptions o{.dir = "/run/berth/sandboxes/p1/ns", .net = true, .ipc = true, .uts = true,
//                .hostname = "p1", .sysctls = {{"net.ipv4.ip_forward", "1"}}};
//   BERTH_RETURN_IF_ERROR(PinNamespaces(shim_path, o));  // client.h
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::shim {

// What to pin and how to set the new namespaces up.
struct PinOptions {
  std::string dir;  // absolute; created 0700 if missing
  bool net = false, ipc = false, uts = false;
  std::string hostname;                                      // needs uts
  std::vector<std::pair<std::string, std::string>> sysctls;  // (key, value) in order
};

// Whether a pod may set sysctl `key` (dotted, or with slashes:
// "net/ipv4/ip_forward"): only Kubernetes' namespaced sysctls
// (pkg/kubelet/sysctl/namespace.go), and only for a namespace the pod owns.
//   kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*  -> IPC (own_ipc)
//   net.*                                              -> network (own_net)
//   kernel.hostname, kernel.domainname (UTS)           -> refused: set via hostname
// Anything else, or a malformed key ("..", empty components, characters
// outside [A-Za-z0-9_.-/]), is INVALID_ARGUMENT naming the key and why.
absl::Status CheckSandboxSysctl(absl::string_view key, bool own_net, bool own_ipc);

// "net/ipv4/ip_forward" or "net.ipv4.ip_forward" -> "net.ipv4.ip_forward".
// Only for keys CheckSandboxSysctl accepts.
std::string NormalizeSysctlKey(absl::string_view key);

// The helper's argv after the program name:
//   --pin-namespaces DIR [--net] [--ipc] [--uts] [--hostname NAME] [--sysctl KEY=VALUE]...
std::vector<std::string> PinArgs(const PinOptions& options);
// The reverse, for berth-shim's main (argv[1] is "--pin-namespaces").
// Errors are INVALID_ARGUMENT.
absl::StatusOr<PinOptions> ParsePinArgs(int argc, const char* const* argv);

// Steps 1-5 above, in this process (berth-shim's --pin-namespaces mode: it
// changes this process's namespaces for good). Checks the options first.
absl::Status RunPin(const PinOptions& options);

// The pause loop; never returns (exits 0 on SIGTERM or SIGINT).
[[noreturn]] void RunPause();

}  // namespace berth::shim
