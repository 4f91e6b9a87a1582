// Linux security modules: AppArmor profiles and SELinux labels
// (security_context.apparmor / apparmor_profile, selinux_options).
//
// As containerd (internal/cri/server/container_create_linux.go,
// generateApparmorSpecOpts): where the host has no AppArmor, RuntimeDefault
// and Unconfined mean nothing and are accepted, and a Localhost profile is
// refused - a profile asked for is never silently dropped. Where it has
// AppArmor, Localhost names a profile that must be loaded already;
// RuntimeDefault (and no choice at all, for an unprivileged container) is
// berth's own `berth-default`, loaded with apparmor_parser the first time;
// privileged containers run unconfined unless a Localhost profile is named.
// The shim enters the profile at execve (Process.apparmor_profile).
//
// SELinux: berth applies no labels. Where SELinux is enforcing, labels asked
// for are refused; where it is not, they are ignored, as containerd does.
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/runtime/container_spec.h"
#include "agent/runtime/container_spec_internal.h"
#include "os/files.h"
#include "os/status.h"

namespace berth::lifecycle {
namespace {

namespace v1 = ::runtime::v1;

constexpr char kAppArmorField[] = "config.linux.security_context.apparmor";

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? std::string(absl::StripAsciiWhitespace(*s)) : std::string();
}

// The AppArmor choice as a SecurityProfile, from the field or the deprecated
// apparmor_profile string ("runtime/default", "unconfined", "localhost/<name>").
absl::StatusOr<v1::SecurityProfile> Choice(const v1::LinuxContainerSecurityContext& sc) {
  if (sc.has_apparmor()) return sc.apparmor();
  v1::SecurityProfile p;
  // The deprecated string, still sent by older kubelets and by crictl.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const std::string& old = sc.apparmor_profile();
#pragma GCC diagnostic pop
  if (old.empty()) {
    p.set_profile_type(v1::SecurityProfile::RuntimeDefault);
  } else if (old == "runtime/default" || old == "docker/default") {
    p.set_profile_type(v1::SecurityProfile::RuntimeDefault);
  } else if (old == "unconfined") {
    p.set_profile_type(v1::SecurityProfile::Unconfined);
  } else if (absl::StartsWith(old, "localhost/")) {
    p.set_profile_type(v1::SecurityProfile::Localhost);
    p.set_localhost_ref(old.substr(strlen("localhost/")));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("config.linux.security_context.apparmor_profile `", old,
                     "`: must be runtime/default, unconfined or localhost/<profile>"));
  }
  return p;
}

}  // namespace

// berth-default: the shape of the default profile Docker, containerd and
// CRI-O load - everything a container normally does, minus mounts, writes to
// /proc and /sys outside the container's own corner, and ptrace of anything
// not confined by it.
std::string DefaultAppArmorProfile() {
  return R"(#include <tunables/global>

profile berth-default flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>

  network,
  capability,
  file,
  umount,
  signal (receive) peer=unconfined,
  signal (send,receive) peer=berth-default,

  deny @{PROC}/* w,
  deny @{PROC}/{[^1-9],[^1-9][^0-9],[^1-9s][^0-9y][^0-9s],[^1-9][^0-9][^0-9][^0-9/]*}/** w,
  deny @{PROC}/sys/[^k]** w,
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/kcore rwklx,

  deny mount,

  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/security/** rwklx,

  ptrace (trace,read,tracedby,readby) peer=berth-default,
}
)";
}

LsmHost LsmHost::Detect(const std::string& root) {
  LsmHost h;
  // As containerd's hostSupports: the module enabled and its securityfs
  // there (a nested node may say "Y" without the latter, and can load nothing).
  struct stat st;
  h.apparmor = Read(root + "/sys/module/apparmor/parameters/enabled") == "Y" &&
               stat((root + "/sys/kernel/security/apparmor").c_str(), &st) == 0;
  if (h.apparmor) {
    // "name (mode)" per line.
    std::istringstream in(Read(root + "/sys/kernel/security/apparmor/profiles"));
    for (std::string line; std::getline(in, line);) {
      const size_t paren = line.rfind(" (");
      h.apparmor_profiles.insert(paren == std::string::npos ? line : line.substr(0, paren));
    }
  }
  h.selinux_enforcing = Read(root + "/sys/fs/selinux/enforce") == "1";
  return h;
}

namespace internal {

absl::Status ApplyLsm(const v1::LinuxContainerSecurityContext& sc, const LsmHost& host,
                      const std::function<absl::Status()>& load_default,
                      shim::v1::Process& process) {
  const v1::SELinuxOption& se = sc.selinux_options();
  if (host.selinux_enforcing &&
      !(se.user().empty() && se.role().empty() && se.type().empty() && se.level().empty())) {
    return absl::UnimplementedError(
        "config.linux.security_context.selinux_options: SELinux is enforcing on this node and "
        "berth does not apply SELinux labels");
  }
  BERTH_ASSIGN_OR_RETURN(v1::SecurityProfile choice, Choice(sc));
  switch (choice.profile_type()) {
    case v1::SecurityProfile::Unconfined:
      return absl::OkStatus();
    case v1::SecurityProfile::RuntimeDefault:
      // No AppArmor: nothing to confine with (containerd's rule too).
      if (!host.apparmor || sc.privileged()) return absl::OkStatus();
      if (!host.apparmor_profiles.count(kDefaultAppArmorProfile)) {
        absl::Status loaded = load_default ? load_default() : absl::OkStatus();
        if (!loaded.ok()) return Annotate(loaded, absl::StrCat(kAppArmorField, " RuntimeDefault"));
      }
      process.set_apparmor_profile(kDefaultAppArmorProfile);
      return absl::OkStatus();
    case v1::SecurityProfile::Localhost: {
      // containerd trims a "localhost/" some clients leave on the ref.
      std::string name = choice.localhost_ref();
      if (absl::StartsWith(name, "localhost/")) name = name.substr(strlen("localhost/"));
      if (name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(kAppArmorField, ".localhost_ref: empty for a Localhost profile"));
      }
      if (!host.apparmor) {
        return absl::FailedPreconditionError(
            absl::StrCat(kAppArmorField, ": Localhost profile `", name,
                         "` asked for, but AppArmor is not enabled on this node"));
      }
      if (!host.apparmor_profiles.count(name)) {
        return absl::NotFoundError(absl::StrCat(kAppArmorField, ": Localhost profile `", name,
                                                "` is not loaded (apparmor_parser -r <file>)"));
      }
      process.set_apparmor_profile(name);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(kAppArmorField, ".profile_type ", choice.profile_type(), ": unknown"));
  }
}

}  // namespace internal
}  // namespace berth::lifecycle
