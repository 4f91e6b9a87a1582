// From CRI to berth-shim: a container's ContainerConfig, its sandbox and its
// image become the ContainerSpec the shim builds (proto/shim/v1/shim.proto).
// Pure translation plus reads of the image's /etc/passwd and /etc/group and of
// seccomp profile files; nothing here changes kernel state.
//
//   ContainerSpecInputs in;
//   in.id = id; in.config = &request.config(); in.sandbox_config = &sandbox.config;
//   in.image = &image; in.rootfs = "/var/lib/berth/containers/<id>/rootfs";
//   in.sandbox = sandbox_context;
//   BERTH_ASSIGN_OR_RETURN(BuiltSpec built, BuildContainerSpec(in));
//   // built.spec goes to shim::LaunchShim; built.user and built.stop_signal to the state
//
// Semantics follow Docker, CRI and containerd (internal/cri/opts/spec_opts*.go):
// see container_spec.cc for the rules, each with the reference it follows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <functional>
#include <optional>
#include <set>

#include "absl/status/statusor.h"
#include "agent/cri/api.h"
#include "agent/images/images.h"
#include "os/cgroup/layout.h"
#include "shim/v1/shim.pb.h"

namespace berth::lifecycle {

// What a pod sandbox gives its containers.
struct SandboxContext {
  std::string id;
  // Pinned namespace files to join (DESIGN.md: /run/berth/sandboxes/<id>/ns/<x>).
  // Empty means the host's (namespace_options NODE): the namespace is then not
  // listed in the spec at all (the shim keeps its own, the host's).
  std::string net_ns;
  std::string ipc_ns;
  std::string uts_ns;
  // PID: with namespace_options.pid == POD, the sandbox's PID namespace
  // (/proc/<pause pid>/ns/pid); empty otherwise. host_pid: NODE.
  std::string pid_ns;
  bool host_pid = false;
  // Files of the sandbox bind-mounted into each container at /etc/hostname,
  // /etc/hosts, /etc/resolv.conf (read-only when the container's rootfs is);
  // each empty when the sandbox has none (e.g. no dns_config: the image's own
  // resolv.conf stays). A container mount with the same destination wins.
  std::string hostname_file;
  std::string hosts_file;
  std::string resolv_conf_file;
  // The pod's /dev/shm, bind-mounted into each container over the default
  // tmpfs, so containers sharing the pod's IPC namespace share POSIX shared
  // memory too (containerd does the same); the host's /dev/shm for host IPC.
  // Empty: each container gets its own tmpfs. A container mount there wins.
  std::string shm_dir;
  std::string cgroup_parent;  // the pod cgroup, absolute ("/berth/<sandbox id>")
  std::string log_directory;  // PodSandboxConfig.log_directory
};

// What the node's Linux security modules are (container_spec_lsm.cc).
struct LsmHost {
  bool apparmor = false;                    // /sys/module/apparmor/parameters/enabled
  std::set<std::string> apparmor_profiles;  // loaded, by name
  bool selinux_enforcing = false;           // /sys/fs/selinux/enforce
  // Read under `root` ("" on a real node; a fake tree in tests).
  static LsmHost Detect(const std::string& root = "");
};
// RuntimeDefault's AppArmor profile, and its text for apparmor_parser.
inline constexpr char kDefaultAppArmorProfile[] = "berth-default";
std::string DefaultAppArmorProfile();

struct ContainerSpecInputs {
  std::string id;
  const ::runtime::v1::ContainerConfig* config = nullptr;
  const ::runtime::v1::PodSandboxConfig* sandbox_config = nullptr;
  const images::ImageRecord* image = nullptr;
  // The container's mounted root filesystem (the overlay): /etc/passwd and
  // /etc/group are read from here, resolved inside it (never following a
  // symlink out of it).
  std::string rootfs;
  SandboxContext sandbox;
  // For namespace_options.pid == TARGET: the PID namespace file of the target
  // container's init (/proc/<pid>/ns/pid), resolved by the caller.
  std::string target_pid_ns;
  // berthd's own capability bounding set, bit n = capability n: what
  // privileged and "ALL" mean (as containerd: oci.WithAllCurrentCapabilities).
  // Unset: read from the running process (prctl PR_CAPBSET_READ).
  std::optional<uint64_t> bounding_set;
  // /proc/self/mountinfo's text, for the propagation checks of BIDIRECTIONAL
  // and HOST_TO_CONTAINER mounts; unset: read it.
  std::optional<std::string> mountinfo;
  // The node's LSMs; unset: LsmHost::Detect().
  std::optional<LsmHost> lsm;
  // Loads berth-default when RuntimeDefault needs it and it is not loaded.
  std::function<absl::Status()> load_default_apparmor;
};

// The user a container's process runs as, as ContainerStatus.user reports it.
struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> supplemental_groups;  // sorted, no duplicates, gid not included
};

struct BuiltSpec {
  shim::v1::ContainerSpec spec;
  ResolvedUser user;
  int stop_signal = 15;  // config.stop_signal, else the image's StopSignal, else SIGTERM
  // The mounts as applied, for ContainerStatus.mounts (propagation echoed as asked).
  std::vector<::runtime::v1::Mount> mounts;
};

// The whole translation. Errors are INVALID_ARGUMENT (or NOT_FOUND for a
// missing host path, user or profile) naming the CRI field:
// "config.linux.security_context.run_as_username `nobody2`: no such user in the
// image's /etc/passwd", "config.mounts[1].host_path `/x`: No such file or directory".
absl::StatusOr<BuiltSpec> BuildContainerSpec(const ContainerSpecInputs& in);

// The container's own cgroups as it sees them (container_spec_cgroup.cc): a
// cgroup namespace and its hierarchies of `layout` mounted at /sys/fs/cgroup,
// read-only unless `privileged`. Nothing when the spec has no cgroup_path or
// a client mount is at /sys/fs/cgroup.
void AddCgroupView(const CgroupLayout& layout, bool privileged, shim::v1::ContainerSpec& spec);

// CRI LinuxContainerResources -> the shim's Resources (also for
// UpdateContainerResources). CRI's 0 means unset for every field; cpu_shares,
// quota, period, cpuset, memory limit, memory+swap limit, hugepage limits;
// `unified` keys are refused with INVALID_ARGUMENT naming the key unless the
// shim's Resources can say the same thing (e.g. "memory.max", "pids.max",
// "cpu.weight" are mapped; others refused). oom_score_adj is not a cgroup
// setting: it goes to Process.oom_score_adj in BuildContainerSpec.
absl::StatusOr<shim::v1::Resources> ToShimResources(
    const ::runtime::v1::LinuxContainerResources& resources);

// A CRI Signal's name (runtime::v1::Signal_Name: "SIGTERM", "SIGRTMINPLUS3") or
// an image's StopSignal string ("SIGQUIT", "quit", "3", "SIGRTMIN+3") as a signal
// number; INVALID_ARGUMENT otherwise. A number is a signal number, never a CRI
// enum value (CRI's SIGTERM is 23).
absl::StatusOr<int> ParseSignalName(absl::string_view name);

// A signal number as the CRI Signal naming it (ContainerStatus.stop_signal);
// RUNTIME_DEFAULT when CRI has no name for it.
::runtime::v1::Signal ToCriSignal(int signal);

}  // namespace berth::lifecycle
