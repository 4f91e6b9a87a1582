// Profile -> classic BPF with libseccomp (seccomp_init(3), seccomp_rule_add(3),
// seccomp_export_bpf(3)), following runc's libcontainer/seccomp: unknown syscall
// names are skipped, rules equal to the default action dropped, and several
// comparisons on one argument split into one rule each.
#include <linux/filter.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "os/seccomp/arch.h"
#include "os/seccomp/seccomp.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::seccomp {
namespace {

struct ReleaseFilter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using FilterPtr = std::unique_ptr<void, ReleaseFilter>;

// libseccomp returns -errno.
absl::Status Check(int rc, absl::string_view call, absl::string_view what = {}) {
  return rc < 0 ? ErrnoStatus(-rc, call, what) : absl::OkStatus();
}

uint32_t ScmpAction(Action action, std::optional<uint32_t> errno_ret) {
  switch (action) {
    case Action::kKillThread:
      return SCMP_ACT_KILL_THREAD;
    case Action::kKillProcess:
      return SCMP_ACT_KILL_PROCESS;
    case Action::kTrap:
      return SCMP_ACT_TRAP;
    case Action::kErrno:
      return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
    case Action::kTrace:
      return SCMP_ACT_TRACE(errno_ret.value_or(EPERM));
    case Action::kAllow:
      return SCMP_ACT_ALLOW;
    case Action::kLog:
      return SCMP_ACT_LOG;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare ScmpOp(ArgOp op) {
  switch (op) {
    case ArgOp::kNotEqual:
      return SCMP_CMP_NE;
    case ArgOp::kLessThan:
      return SCMP_CMP_LT;
    case ArgOp::kLessEqual:
      return SCMP_CMP_LE;
    case ArgOp::kEqual:
      return SCMP_CMP_EQ;
    case ArgOp::kGreaterEqual:
      return SCMP_CMP_GE;
    case ArgOp::kGreaterThan:
      return SCMP_CMP_GT;
    case ArgOp::kMaskedEqual:
      return SCMP_CMP_MASKED_EQ;
  }
  return _SCMP_CMP_MIN;
}

// "SYS_ADMIN" and "cap_sys_admin" both mean CAP_SYS_ADMIN (CRI omits the prefix).
std::string NormalizeCap(absl::string_view cap) {
  std::string c = absl::AsciiStrToUpper(cap);
  return absl::StartsWith(c, "CAP_") ? c : absl::StrCat("CAP_", c);
}

bool HasCap(const RuleEnvironment& env, absl::string_view cap) {
  std::string want = NormalizeCap(cap);
  for (const std::string& c : env.capabilities) {
    if (NormalizeCap(c) == want) return true;
  }
  return false;
}

bool Contains(const std::vector<std::string>& list, absl::string_view s) {
  for (const std::string& x : list) {
    if (x == s) return true;
  }
  return false;
}

// The arches the filter covers: from `architectures`, or from the archMap entry
// for the native arch; always the native arch, and only arches that can run here.
absl::Status AddArches(scmp_filter_ctx ctx, const Profile& profile) {
  std::vector<std::string> names = profile.architectures;
  for (const ArchMapEntry& e : profile.arch_map) {
    if (internal::ArchToken(e.architecture) != seccomp_arch_native()) continue;
    names.push_back(e.architecture);
    names.insert(names.end(), e.sub_architectures.begin(), e.sub_architectures.end());
  }
  for (const std::string& name : names) {
    uint32_t token = internal::ArchToken(name);
    if (token == 0 || !internal::RunsOnNative(token)) continue;
    int rc = seccomp_arch_add(ctx, token);
    if (rc != -EEXIST) BERTH_RETURN_IF_ERROR(Check(rc, "seccomp_arch_add", name));
  }
  return absl::OkStatus();
}

absl::Status AddRule(scmp_filter_ctx ctx, const SyscallRule& rule, uint32_t action) {
  std::vector<scmp_arg_cmp> cmps;
  int per_index[6] = {};
  bool split = false;
  for (const ArgRule& a : rule.args) {
    if (a.index >= 6) return absl::InvalidArgumentError(absl::StrCat("argument index ", a.index));
    cmps.push_back({a.index, ScmpOp(a.op), a.value, a.value_two});
    if (++per_index[a.index] > 1) split = true;
  }
  for (const std::string& name : rule.names) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not a syscall libseccomp knows
    if (!split) {
      BERTH_RETURN_IF_ERROR(Check(seccomp_rule_add_array(ctx, action, nr, cmps.size(), cmps.data()),
                                  "seccomp_rule_add", name));
      continue;
    }
    // libseccomp cannot AND two comparisons of one argument; runc ORs them.
    for (const scmp_arg_cmp& c : cmps) {
      BERTH_RETURN_IF_ERROR(
          Check(seccomp_rule_add_array(ctx, action, nr, 1, &c), "seccomp_rule_add", name));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Export(scmp_filter_ctx ctx) {
  UniqueFd fd(memfd_create("berth-seccomp-bpf", MFD_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "memfd_create");
  BERTH_RETURN_IF_ERROR(Check(seccomp_export_bpf(ctx, fd.get()), "seccomp_export_bpf"));
  std::string bpf;
  char buf[8192];
  for (;;) {
    ssize_t n = pread(fd.get(), buf, sizeof(buf), static_cast<off_t>(bpf.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "pread", "memfd:berth-seccomp-bpf");
    if (n == 0) break;
    bpf.append(buf, static_cast<size_t>(n));
  }
  if (bpf.empty() || bpf.size() % sizeof(sock_filter) != 0) {
    return absl::InternalError(
        absl::StrCat("seccomp_export_bpf: ", bpf.size(), " bytes is not a BPF program"));
  }
  size_t insns = bpf.size() / sizeof(sock_filter);
  if (insns > BPF_MAXINSNS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "seccomp filter has ", insns, " instructions; the kernel takes at most ", BPF_MAXINSNS));
  }
  return bpf;
}

absl::StatusOr<KernelVersion> RunningKernel() {
  struct utsname u;
  if (uname(&u) != 0) return ErrnoStatus(errno, "uname");
  return ParseKernelVersion(u.release);
}

}  // namespace

bool RuleApplies(const SyscallRule& rule, const RuleEnvironment& env) {
  // Same order and meaning as moby's profiles/seccomp setupSeccomp.
  const RuleFilter& ex = rule.excludes;
  if (Contains(ex.arches, env.arch)) return false;
  for (const std::string& cap : ex.caps) {
    if (HasCap(env, cap)) return false;
  }
  if (ex.min_kernel && !(env.kernel < *ex.min_kernel)) return false;
  const RuleFilter& in = rule.includes;
  if (!in.arches.empty() && !Contains(in.arches, env.arch)) return false;
  for (const std::string& cap : in.caps) {
    if (!HasCap(env, cap)) return false;
  }
  if (in.min_kernel && env.kernel < *in.min_kernel) return false;
  return true;
}

absl::StatusOr<std::string> CompileToBpf(const Profile& profile, const CompileOptions& options) {
  RuleEnvironment env{options.capabilities, std::string(NativeArch()), {}};
  if (options.kernel) {
    env.kernel = *options.kernel;
  } else {
    BERTH_ASSIGN_OR_RETURN(env.kernel, RunningKernel());
  }
  const uint32_t default_action = ScmpAction(profile.default_action, profile.default_errno_ret);
  FilterPtr ctx(seccomp_init(default_action));
  if (ctx == nullptr) return absl::InternalError("seccomp_init: failed");
  BERTH_RETURN_IF_ERROR(AddArches(ctx.get(), profile));
  for (size_t i = 0; i < profile.syscalls.size(); ++i) {
    const SyscallRule& rule = profile.syscalls[i];
    if (!RuleApplies(rule, env)) continue;
    uint32_t action = ScmpAction(rule.action, rule.errno_ret);
    if (action == default_action) continue;  // seccomp_rule_add refuses these (EACCES)
    BERTH_RETURN_IF_ERROR(
        Annotate(AddRule(ctx.get(), rule, action), absl::StrCat("syscalls[", i, "]")));
  }
  return Export(ctx.get());
}

}  // namespace berth::seccomp
