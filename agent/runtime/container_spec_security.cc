// The container's privileges: capabilities (capabilities(7)), privileged mode,
// masked and read-only paths, and its seccomp filter (seccomp(2)).
//
// Capabilities follow containerd's WithCapabilities (internal/cri/opts/spec_opts.go):
// "ALL" in add gives every capability, "ALL" in drop removes every one, and
// only then are the single names added, then dropped; so {drop: ALL, add: X} is
// X and {add: ALL, drop: X} is all but X. Names may carry "CAP_" or not, in any
// case (kubelet sends "NET_ADMIN"). A name we do not know is refused rather
// than passed on (runc would refuse it at start).
//
// add_ambient_capabilities (KEP-2763) go into the ambient and inheritable sets,
// and into the bounding, effective and permitted sets too: the kernel raises an
// ambient capability only when it is both permitted and inheritable
// (PR_CAP_AMBIENT_RAISE in prctl(2)).
//
// Privileged (containerd oci.WithPrivileged): every capability berthd itself
// holds in its bounding set (containerd's WithAllCurrentCapabilities: a node
// agent run without, say, CAP_SYS_RESOURCE - nested containers, hardened
// units - cannot give it away, and capset(2) would fail at start), no masked
// or read-only paths, /sys read-write, no seccomp.
#include <linux/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/runtime/container_spec_internal.h"
#include "os/files.h"
#include "os/seccomp/seccomp.h"
#include "os/status.h"

namespace berth::lifecycle::internal {
namespace {

constexpr char kCapabilities[] = "config.linux.security_context.capabilities";

bool IsAll(absl::string_view name) { return absl::EqualsIgnoreCase(name, "ALL"); }

bool AnyAll(const google::protobuf::RepeatedPtrField<std::string>& names) {
  return std::any_of(names.begin(), names.end(), IsAll);
}

absl::StatusOr<int> ParseCap(absl::string_view field, int i, absl::string_view name) {
  int cap = CapabilityNumber(name);
  if (cap < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCapabilities, ".", field, "[", i, "]: unknown capability `", name, "`"));
  }
  return cap;
}

void SetNames(const std::set<int>& caps, google::protobuf::RepeatedPtrField<std::string>* out) {
  out->Clear();
  for (int c : caps) out->Add(std::string(KnownCapabilities()[c]));
}

// SecurityProfile (api.proto): profile_type RuntimeDefault / Unconfined /
// Localhost; localhost_ref "must only be set if ProfileType is Localhost" and,
// for seccomp, is "an absolute path to the seccomp profile".
struct SeccompChoice {
  enum Kind { kUnconfined, kRuntimeDefault, kLocalhost } kind = kUnconfined;
  std::string path;
  std::string field;  // where the path came from, for errors
};

absl::StatusOr<SeccompChoice> ChooseSeccomp(const runtime::v1::LinuxContainerSecurityContext& sc) {
  SeccompChoice c;
  // containerd generateSeccompSecurityProfile: the SecurityProfile message wins;
  // without it the deprecated string; without either, unconfined. That is the
  // CRI rule: seccomp_profile_path's "Default: \"\", which is identical with
  // unconfined" (k8s.io/cri-api api.proto, LinuxContainerSecurityContext), and
  // kubelet sends RuntimeDefault explicitly when the pod asks for it.
  if (sc.has_seccomp()) {
    const runtime::v1::SecurityProfile& p = sc.seccomp();
    c.field = "config.linux.security_context.seccomp.localhost_ref";
    if (p.profile_type() != runtime::v1::SecurityProfile::Localhost && !p.localhost_ref().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.field, ": set, but profile_type is not Localhost"));
    }
    switch (p.profile_type()) {
      case runtime::v1::SecurityProfile::RuntimeDefault:
        c.kind = SeccompChoice::kRuntimeDefault;
        return c;
      case runtime::v1::SecurityProfile::Unconfined:
        return c;
      case runtime::v1::SecurityProfile::Localhost:
        c.kind = SeccompChoice::kLocalhost;
        c.path = p.localhost_ref();
        return c;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "config.linux.security_context.seccomp.profile_type ", p.profile_type(), ": unknown"));
    }
  }
  // Deprecated in CRI, yet still sent by older clients: honoured, as containerd does.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const std::string& s = sc.seccomp_profile_path();
#pragma GCC diagnostic pop
  c.field = "config.linux.security_context.seccomp_profile_path";
  if (s.empty() || s == "unconfined") return c;
  if (s == "runtime/default" || s == "docker/default") {
    c.kind = SeccompChoice::kRuntimeDefault;
    return c;
  }
  if (absl::StartsWith(s, "localhost/")) {
    c.kind = SeccompChoice::kLocalhost;
    c.path = s.substr(std::string("localhost/").size());
    return c;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      c.field, " `", s, "`: not runtime/default, docker/default, unconfined or localhost/<path>"));
}

absl::StatusOr<seccomp::Profile> LoadProfile(const SeccompChoice& c) {
  if (c.kind == SeccompChoice::kRuntimeDefault) {
    // Parsed once: the embedded JSON never changes while we run.
    static const absl::StatusOr<seccomp::Profile>* const kDefault =
        new absl::StatusOr<seccomp::Profile>(seccomp::DefaultProfile());
    if (!kDefault->ok()) {
      return Annotate(kDefault->status(), "the runtime's default seccomp profile");
    }
    return *kDefault;
  }
  if (c.path.empty() || c.path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(c.field, " `", c.path, "`: not an absolute path"));
  }
  const std::string shown = absl::StrCat(c.field, " `", c.path, "`");
  absl::StatusOr<std::string> json = ReadFile(c.path);
  if (!json.ok()) return Annotate(json.status(), c.field);
  absl::StatusOr<seccomp::Profile> profile = seccomp::ParseProfile(*json);
  if (!profile.ok()) return Annotate(profile.status(), shown);
  return profile;
}

}  // namespace

const std::vector<std::string>& KnownCapabilities() {
  // capabilities(7), numbered as in <linux/capability.h>.
  static const std::vector<std::string>* const kNames =
      new std::vector<std::string>{"CAP_CHOWN",
                                   "CAP_DAC_OVERRIDE",
                                   "CAP_DAC_READ_SEARCH",
                                   "CAP_FOWNER",
                                   "CAP_FSETID",
                                   "CAP_KILL",
                                   "CAP_SETGID",
                                   "CAP_SETUID",
                                   "CAP_SETPCAP",
                                   "CAP_LINUX_IMMUTABLE",
                                   "CAP_NET_BIND_SERVICE",
                                   "CAP_NET_BROADCAST",
                                   "CAP_NET_ADMIN",
                                   "CAP_NET_RAW",
                                   "CAP_IPC_LOCK",
                                   "CAP_IPC_OWNER",
                                   "CAP_SYS_MODULE",
                                   "CAP_SYS_RAWIO",
                                   "CAP_SYS_CHROOT",
                                   "CAP_SYS_PTRACE",
                                   "CAP_SYS_PACCT",
                                   "CAP_SYS_ADMIN",
                                   "CAP_SYS_BOOT",
                                   "CAP_SYS_NICE",
                                   "CAP_SYS_RESOURCE",
                                   "CAP_SYS_TIME",
                                   "CAP_SYS_TTY_CONFIG",
                                   "CAP_MKNOD",
                                   "CAP_LEASE",
                                   "CAP_AUDIT_WRITE",
                                   "CAP_AUDIT_CONTROL",
                                   "CAP_SETFCAP",
                                   "CAP_MAC_OVERRIDE",
                                   "CAP_MAC_ADMIN",
                                   "CAP_SYSLOG",
                                   "CAP_WAKE_ALARM",
                                   "CAP_BLOCK_SUSPEND",
                                   "CAP_AUDIT_READ",
                                   "CAP_PERFMON",
                                   "CAP_BPF",
                                   "CAP_CHECKPOINT_RESTORE"};
  return *kNames;
}

int LastCapability() {
  const int known = static_cast<int>(KnownCapabilities().size()) - 1;
  int last = CAP_LAST_CAP;
  absl::StatusOr<std::string> s = ReadFile("/proc/sys/kernel/cap_last_cap");
  if (s.ok()) {
    int v = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*s), &v) && v >= 0) last = v;
  }
  return std::min(last, known);
}

int CapabilityNumber(absl::string_view name) {
  std::string upper = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(upper, "CAP_")) upper = absl::StrCat("CAP_", upper);
  const std::vector<std::string>& known = KnownCapabilities();
  auto it = std::find(known.begin(), known.end(), upper);
  return it == known.end() ? -1 : static_cast<int>(it - known.begin());
}

uint64_t CurrentBoundingSet() {
  uint64_t set = 0;
  const int last = LastCapability();
  for (int c = 0; c <= last; ++c) {
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) set |= uint64_t{1} << c;
  }
  return set;
}

absl::StatusOr<std::vector<std::string>> ApplyCapabilities(
    const runtime::v1::LinuxContainerSecurityContext& sc, uint64_t bounding,
    shim::v1::Process& process) {
  auto held = [bounding](int cap) { return cap < 64 && (bounding >> cap & 1) != 0; };
  auto need = [&](absl::string_view field, int i, int cap) -> absl::Status {
    if (held(cap)) return absl::OkStatus();
    if (cap > LastCapability()) {
      return absl::FailedPreconditionError(
          absl::StrCat(kCapabilities, ".", field, "[", i, "]: ", KnownCapabilities()[cap],
                       " is not known to this kernel (its last is ", LastCapability(), ")"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        kCapabilities, ".", field, "[", i, "]: ", KnownCapabilities()[cap],
        " is not in berthd's capability bounding set, so no container can be given it"));
  };
  std::set<int> caps;
  for (const std::string& name : process.capabilities().bounding()) {
    int cap = CapabilityNumber(name);
    if (cap >= 0 && held(cap)) caps.insert(cap);
  }
  std::set<int> all;
  const int last = LastCapability();
  for (int c = 0; c <= last; ++c) {
    if (held(c)) all.insert(c);
  }
  const runtime::v1::Capability& req = sc.capabilities();
  if (sc.privileged()) {
    // containerd applies add/drop only to unprivileged containers.
    caps = all;
  } else {
    if (AnyAll(req.add_capabilities())) caps = all;
    if (AnyAll(req.drop_capabilities())) caps.clear();
    for (int i = 0; i < req.add_capabilities_size(); ++i) {
      if (IsAll(req.add_capabilities(i))) continue;
      BERTH_ASSIGN_OR_RETURN(int cap, ParseCap("add_capabilities", i, req.add_capabilities(i)));
      BERTH_RETURN_IF_ERROR(need("add_capabilities", i, cap));
      caps.insert(cap);
    }
    for (int i = 0; i < req.drop_capabilities_size(); ++i) {
      if (IsAll(req.drop_capabilities(i))) continue;
      BERTH_ASSIGN_OR_RETURN(int cap, ParseCap("drop_capabilities", i, req.drop_capabilities(i)));
      caps.erase(cap);
    }
  }
  std::set<int> ambient;
  for (int i = 0; i < req.add_ambient_capabilities_size(); ++i) {
    const std::string& name = req.add_ambient_capabilities(i);
    if (IsAll(name)) {
      return absl::InvalidArgumentError(absl::StrCat(kCapabilities, ".add_ambient_capabilities[", i,
                                                     "]: ALL is not accepted here"));
    }
    BERTH_ASSIGN_OR_RETURN(int cap, ParseCap("add_ambient_capabilities", i, name));
    BERTH_RETURN_IF_ERROR(need("add_ambient_capabilities", i, cap));
    ambient.insert(cap);
    caps.insert(cap);
  }
  shim::v1::Capabilities* out = process.mutable_capabilities();
  SetNames(caps, out->mutable_bounding());
  SetNames(caps, out->mutable_effective());
  SetNames(caps, out->mutable_permitted());
  SetNames(ambient, out->mutable_inheritable());
  SetNames(ambient, out->mutable_ambient());
  return std::vector<std::string>(out->effective().begin(), out->effective().end());
}

void ApplyPathRestrictions(const runtime::v1::LinuxContainerSecurityContext& sc,
                           shim::v1::ContainerSpec& spec) {
  if (sc.privileged()) {
    spec.clear_masked_paths();
    spec.clear_readonly_paths();
    for (shim::v1::Mount& m : *spec.mutable_mounts()) {
      if (m.destination() != "/sys") continue;
      auto* options = m.mutable_options();
      options->erase(std::remove(options->begin(), options->end(), "ro"), options->end());
      m.add_options("rw");
    }
    return;
  }
  // containerd: the security context's lists replace the defaults when given.
  // Kubelet sends the defaults itself (and proc_mount Unmasked as empty lists,
  // which the wire cannot tell from unset: containerd keeps the defaults then too).
  if (sc.masked_paths_size() > 0) *spec.mutable_masked_paths() = sc.masked_paths();
  if (sc.readonly_paths_size() > 0) *spec.mutable_readonly_paths() = sc.readonly_paths();
}

absl::StatusOr<std::string> SeccompBpf(const runtime::v1::LinuxContainerSecurityContext& sc,
                                       const std::vector<std::string>& capabilities) {
  BERTH_ASSIGN_OR_RETURN(SeccompChoice choice, ChooseSeccomp(sc));
  // containerd generateSeccompSpecOpts: "Do not set seccomp profile when
  // container is privileged" (after the profile was checked).
  if (sc.privileged() || choice.kind == SeccompChoice::kUnconfined) return std::string();
  BERTH_ASSIGN_OR_RETURN(seccomp::Profile profile, LoadProfile(choice));
  seccomp::CompileOptions options;
  options.capabilities = capabilities;
  absl::StatusOr<std::string> bpf = seccomp::CompileToBpf(profile, options);
  if (!bpf.ok()) {
    return Annotate(bpf.status(), choice.kind == SeccompChoice::kRuntimeDefault
                                      ? "the runtime's default seccomp profile"
                                      : absl::StrCat(choice.field, " `", choice.path, "`"));
  }
  return bpf;
}

}  // namespace berth::lifecycle::internal
