// Seccomp profiles compiled ahead of time into classic BPF (seccomp(2),
// seccomp_rule_add(3), seccomp_export_bpf(3)).
//
// The shim stays tiny (STYLE.md 10): it links neither libseccomp nor a JSON
// parser. The agent parses the profile (OCI runtime-spec `linux.seccomp`, or
// Docker's format with archMap and includes/excludes), resolves it for this
// machine and this container (native arch, kernel, capabilities) and compiles it
// with libseccomp into the raw program: an array of `struct sock_filter`. The
// shim's child only hands those bytes to the kernel:
//
//   // agent
//   BERTH_ASSIGN_OR_RETURN(seccomp::Profile profile, seccomp::DefaultProfile());
//   seccomp::CompileOptions options;
//   options.capabilities = {"CAP_CHOWN", "CAP_NET_BIND_SERVICE"};
//   BERTH_ASSIGN_OR_RETURN(std::string bpf, seccomp::CompileToBpf(profile, options));
//   // ... bpf goes to the shim with the rest of the container's spec ...
//
//   // shim child, last step before execve (bpf copied into aligned memory)
//   struct sock_fprog prog = {bpf.size() / sizeof(struct sock_filter), filter};
//   prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);   // unless it keeps CAP_SYS_ADMIN
//   syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);  // agent's FilterFlags()
//
// Ordering (seccomp(2)): without CAP_SYS_ADMIN in its user namespace the caller
// must set no_new_privs first; the filter must be loaded after every other setup
// syscall the profile might forbid, and before execve so the container's first
// instruction runs under it. The filter is inherited across fork and execve.
//
// Semantics follow runc and moby: syscall names libseccomp does not know for an
// arch are skipped (Docker's profile names syscalls that only some arches have);
// a rule whose action equals the default action is dropped (libseccomp refuses
// it); several comparisons on one argument become one rule each (OR), others are
// ANDed in one rule; errnoRet defaults to EPERM for ERRNO and TRACE. Of two
// rules with different actions for the same syscall and arguments, libseccomp
// keeps the first. A syscall made under an arch the filter does not cover (a
// 32-bit one when the profile lists no x86) kills the thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::seccomp {

// What the kernel does with a matching syscall (seccomp(2), "Filter return
// values"). SCMP_ACT_KILL is libseccomp's old name for kKillThread.
// SCMP_ACT_NOTIFY is refused: it needs a seccomp agent, which Berth lacks.
enum class Action { kKillThread, kKillProcess, kTrap, kErrno, kTrace, kAllow, kLog };

// "SCMP_CMP_EQ", ...: how an argument is compared (seccomp_rule_add(3)).
enum class ArgOp {
  kNotEqual,      // SCMP_CMP_NE
  kLessThan,      // SCMP_CMP_LT
  kLessEqual,     // SCMP_CMP_LE
  kEqual,         // SCMP_CMP_EQ
  kGreaterEqual,  // SCMP_CMP_GE
  kGreaterThan,   // SCMP_CMP_GT
  kMaskedEqual,   // SCMP_CMP_MASKED_EQ
};

// One comparison on syscall argument `index` (0..5). For kMaskedEqual, `value`
// is the mask and `value_two` the datum: (arg & value) == value_two.
struct ArgRule {
  unsigned index = 0;
  ArgOp op = ArgOp::kEqual;
  uint64_t value = 0;
  uint64_t value_two = 0;
};

// "major.minor" as in Docker's minKernel and the start of uname -r.
struct KernelVersion {
  int major = 0;
  int minor = 0;
  friend bool operator<(const KernelVersion& a, const KernelVersion& b) {
    return a.major != b.major ? a.major < b.major : a.minor < b.minor;
  }
};

// Docker's includes/excludes. A rule applies when every `includes` test passes
// and no `excludes` test does. caps: includes needs all of them, excludes any.
// arches: Go names ("amd64", "arm64", "s390x") compared with the native arch.
// minKernel: includes needs uname >= it, excludes fires when uname >= it.
struct RuleFilter {
  std::vector<std::string> caps;
  std::vector<std::string> arches;
  std::optional<KernelVersion> min_kernel;
};

struct SyscallRule {
  std::vector<std::string> names;
  Action action = Action::kAllow;
  std::optional<uint32_t> errno_ret;  // ERRNO and TRACE only; EPERM when unset
  std::vector<ArgRule> args;
  RuleFilter includes;  // Docker only
  RuleFilter excludes;  // Docker only
};

// Docker's archMap entry: when `architecture` is the native arch, the filter
// covers it and `sub_architectures`.
struct ArchMapEntry {
  std::string architecture;  // "SCMP_ARCH_X86_64"
  std::vector<std::string> sub_architectures;
};

struct Profile {
  Action default_action = Action::kErrno;
  std::optional<uint32_t> default_errno_ret;
  // "SCMP_ARCH_X86_64", ... (OCI). At most one of architectures and arch_map.
  std::vector<std::string> architectures;
  std::vector<ArchMapEntry> arch_map;
  // OCI flags for seccomp(2): "SECCOMP_FILTER_FLAG_LOG", "..._SPEC_ALLOW", "..._TSYNC".
  std::vector<std::string> flags;
  std::vector<SyscallRule> syscalls;
};

// Parses an OCI `linux.seccomp` object or a Docker profile. Fields are checked
// here (actions, ops, arches, flags, numbers); a bad one is INVALID_ARGUMENT
// naming it (`syscalls[3].action: unknown action "SCMP_ACT_FOO"`), SCMP_ACT_NOTIFY
// is UNIMPLEMENTED. Unknown keys ("comment", "listenerPath") are ignored.
absl::StatusOr<Profile> ParseProfile(absl::string_view json);

// Docker's default profile, embedded at build time from deploy/seccomp/default.json.
absl::string_view DefaultProfileJson();
absl::StatusOr<Profile> DefaultProfile();

// What includes/excludes are evaluated against.
struct RuleEnvironment {
  std::vector<std::string> capabilities;  // "CAP_SYS_ADMIN" or "SYS_ADMIN"
  std::string arch;                       // Go name: "amd64"
  KernelVersion kernel;
};
bool RuleApplies(const SyscallRule& rule, const RuleEnvironment& env);

// The Go name of the arch this binary runs on ("amd64"), as Docker's includes use.
absl::string_view NativeArch();
// The "major.minor" prefix of a kernel release ("6.1.0-18-amd64" -> 6.1).
absl::StatusOr<KernelVersion> ParseKernelVersion(absl::string_view release);

struct CompileOptions {
  // The container's capabilities, for Docker's includes/excludes.caps.
  std::vector<std::string> capabilities;
  // Unset: uname(2)'s release.
  std::optional<KernelVersion> kernel;
};

// Compiles `profile` for the native arch (and the compat arches it lists, such
// as x86 and x32 on x86_64) into the raw program: a multiple of
// sizeof(struct sock_filter) bytes, at most BPF_MAXINSNS instructions.
absl::StatusOr<std::string> CompileToBpf(const Profile& profile, const CompileOptions& options);

// The SECCOMP_FILTER_FLAG_* bits for seccomp(2) named by profile.flags.
unsigned FilterFlags(const Profile& profile);

}  // namespace berth::seccomp
