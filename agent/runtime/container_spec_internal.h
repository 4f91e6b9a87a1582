// The parts of BuildContainerSpec (container_spec.h), one file per concern, each
// testable alone: parsers take absl::string_view, readers take a root path.
//
//   container_spec.cc            the whole translation: process, env, namespaces, log
//   container_spec_user.cc       /etc/passwd and /etc/group, the user and its groups
//   container_spec_security.cc   capabilities, privileged, masked paths, seccomp
//   container_spec_mounts.cc     CRI mounts, sandbox files, devices
//   container_spec_resources.cc  LinuxContainerResources -> shim Resources
//   container_spec_signal.cc     stop signals by name, number and CRI enum
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/cri/api.h"
#include "agent/runtime/container_spec.h"
#include "shim/v1/shim.pb.h"

namespace berth::lifecycle::internal {

// ---- paths (container_spec_mounts.cc)

// filepath.Clean: one slash between names, no "." names, ".." resolved
// lexically (never above "/" for an absolute path); "" becomes ".".
std::string CleanPath(absl::string_view path);
// Whether `path` has a ".." name.
bool HasDotDot(absl::string_view path);

// ---- users (container_spec_user.cc)

// One line of passwd(5): name:password:uid:gid:gecos:home:shell.
struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
};
// One line of group(5): name:password:gid:member,member.
struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// Lines that are blank, comments or malformed (a non-numeric id) are skipped,
// as libc's getpwent(3) skips them.
std::vector<PasswdEntry> ParsePasswd(absl::string_view text);
std::vector<GroupEntry> ParseGroup(absl::string_view text);

// The image's user database; a file that is missing is nullopt.
struct UserDb {
  std::optional<std::vector<PasswdEntry>> passwd;
  std::optional<std::vector<GroupEntry>> group;
};

// Reads `path` ("/etc/passwd") inside `root` with openat2(RESOLVE_IN_ROOT): a
// symlink in the image resolves as if `root` were "/", never out of it.
// nullopt when it does not exist; an error when it is not a regular file.
absl::StatusOr<std::optional<std::string>> ReadFileInRoot(const std::string& root,
                                                          const std::string& path);
absl::StatusOr<UserDb> ReadUserDb(const std::string& rootfs);

// The user and groups of the container's first process (containerd
// container_create_linux.go: generateUserString, oci.WithUser,
// WithAdditionalGIDs, WithSupplementalGroups). `image_user` is the image
// config's User.
absl::StatusOr<ResolvedUser> ResolveUser(const runtime::v1::LinuxContainerSecurityContext& sc,
                                         absl::string_view image_user, const UserDb& db);

// ---- security (container_spec_security.cc)

// Every capability name this build knows, by number (capabilities(7)).
const std::vector<std::string>& KnownCapabilities();
// The highest capability number of the running kernel
// (/proc/sys/kernel/cap_last_cap), at most the last one we know.
int LastCapability();
// "chown", "CAP_CHOWN", "Cap_Chown" -> 0; -1 when unknown.
int CapabilityNumber(absl::string_view name);

// The calling process's capability bounding set, bit n = capability n.
uint64_t CurrentBoundingSet();

// Sets process.capabilities from the default set, privileged and
// security_context.capabilities; the names of the final set, sorted by number.
// Privileged and "ALL" mean every capability in `bounding` (berthd's own
// bounding set); so do the defaults, which are cut to it. A capability asked
// for by name that `bounding` lacks is FAILED_PRECONDITION naming it: the
// container's init could not be given it (capset(2) fails with EPERM).
absl::StatusOr<std::vector<std::string>> ApplyCapabilities(
    const runtime::v1::LinuxContainerSecurityContext& sc, uint64_t bounding,
    shim::v1::Process& process);

// AppArmor (Process.apparmor_profile) and SELinux, as container_spec_lsm.cc
// says; `load_default` loads berth-default when it is needed and not loaded.
absl::Status ApplyLsm(const runtime::v1::LinuxContainerSecurityContext& sc, const LsmHost& host,
                      const std::function<absl::Status()>& load_default,
                      shim::v1::Process& process);

// Masked and read-only paths, /sys read-write for privileged containers.
void ApplyPathRestrictions(const runtime::v1::LinuxContainerSecurityContext& sc,
                           shim::v1::ContainerSpec& spec);

// The seccomp profile asked for, compiled for `capabilities`: empty for
// unconfined (and for privileged containers).
absl::StatusOr<std::string> SeccompBpf(const runtime::v1::LinuxContainerSecurityContext& sc,
                                       const std::vector<std::string>& capabilities);

// ---- mounts and devices (container_spec_mounts.cc)

// Appends config.mounts and the sandbox's /etc files (unless a config mount has
// the same destination) to spec.mounts, dropping default mounts they replace.
absl::Status ApplyMounts(const runtime::v1::ContainerConfig& config, const SandboxContext& sandbox,
                         bool readonly_rootfs, const std::optional<std::string>& mountinfo,
                         shim::v1::ContainerSpec& spec);

// Host device nodes at `host_path` (a node, or a directory walked as
// containerd's getDevices does), placed at `container_path`.
absl::StatusOr<std::vector<shim::v1::Device>> DevicesAt(const std::string& host_path,
                                                        const std::string& container_path);

// config.devices (and, privileged, every host device under `host_dev`) into
// spec.devices and the device cgroup rules in spec.resources.
absl::Status ApplyDevices(const runtime::v1::ContainerConfig& config, bool privileged,
                          const std::string& host_dev, shim::v1::ContainerSpec& spec);

// ---- signals (container_spec_signal.cc)

// The signal number of a CRI Signal enum value; 0 for RUNTIME_DEFAULT.
absl::StatusOr<int> SignalFromCri(int cri_signal);

}  // namespace berth::lifecycle::internal
