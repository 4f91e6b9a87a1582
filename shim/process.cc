#include "shim/process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "os/files.h"
#include "os/status.h"

namespace berth::shim {
namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

int LastCap() {
  absl::StatusOr<std::string> s = ReadFile("/proc/sys/kernel/cap_last_cap");
  int last = 0;
  if (s.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*s), &last)) return last;
  return CAP_LAST_CAP;
}

int Capset(uint64_t effective, uint64_t permitted, uint64_t inheritable) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  data[0].effective = static_cast<uint32_t>(effective);
  data[0].permitted = static_cast<uint32_t>(permitted);
  data[0].inheritable = static_cast<uint32_t>(inheritable);
  data[1].effective = static_cast<uint32_t>(effective >> 32);
  data[1].permitted = static_cast<uint32_t>(permitted >> 32);
  data[1].inheritable = static_cast<uint32_t>(inheritable >> 32);
  return syscall(SYS_capset, &header, data) == 0 ? 0 : errno;
}

int LoadSeccomp(const ProcessPlan& plan) {
  if (plan.seccomp.empty()) return 0;
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &plan.seccomp_prog) == 0 ? 0 : errno;
}

}  // namespace

void FailChild(int sync_fd, Stage stage, int err, int index) {
  SyncMsg msg{SyncKind::kFailed, stage, err, index};
  (void)!send(sync_fd, &msg, sizeof(msg), MSG_NOSIGNAL);
  _exit(127);
}

absl::StatusOr<uint64_t> CapMask(const google::protobuf::RepeatedPtrField<std::string>& names,
                                 absl::string_view field) {
  uint64_t mask = 0;
  for (int i = 0; i < names.size(); ++i) {
    std::string name = names[i];
    if (!absl::StartsWithIgnoreCase(name, "CAP_")) name = "CAP_" + name;
    cap_value_t value;
    if (cap_from_name(name.c_str(), &value) != 0 || value < 0 || value > 63) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "]: unknown capability `", names[i], "`"));
    }
    mask |= uint64_t{1} << value;
  }
  return mask;
}

absl::StatusOr<std::unique_ptr<ProcessPlan>> BuildProcessPlan(const v1::Process& process) {
  auto plan = std::make_unique<ProcessPlan>();
  if (process.args().empty() || process.args(0).empty()) {
    return absl::InvalidArgumentError("process.args is empty");
  }
  plan->args.assign(process.args().begin(), process.args().end());
  plan->env.assign(process.env().begin(), process.env().end());
  std::string path = kDefaultPath;
  for (const std::string& e : plan->env) {
    if (absl::StartsWith(e, "PATH=")) path = e.substr(5);
  }
  const std::string& arg0 = plan->args[0];
  if (absl::StrContains(arg0, '/')) {
    plan->candidates.push_back(arg0);
  } else {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      plan->candidates.push_back(absl::StrCat(dir, "/", arg0));
    }
    if (plan->candidates.empty()) plan->candidates.push_back(arg0);
  }
  for (std::string& a : plan->args) plan->argv.push_back(a.data());
  plan->argv.push_back(nullptr);
  for (std::string& e : plan->env) plan->envp.push_back(e.data());
  plan->envp.push_back(nullptr);
  plan->cwd = process.cwd().empty() ? "/" : process.cwd();
  if (plan->cwd[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("process.cwd `", process.cwd(), "` is not absolute"));
  }
  plan->uid = process.user().uid();
  plan->gid = process.user().gid();
  plan->groups.assign(process.user().additional_gids().begin(),
                      process.user().additional_gids().end());
  const v1::Capabilities& c = process.capabilities();
  BERTH_ASSIGN_OR_RETURN(plan->caps.bounding, CapMask(c.bounding(), "capabilities.bounding"));
  BERTH_ASSIGN_OR_RETURN(plan->caps.effective, CapMask(c.effective(), "capabilities.effective"));
  BERTH_ASSIGN_OR_RETURN(plan->caps.permitted, CapMask(c.permitted(), "capabilities.permitted"));
  BERTH_ASSIGN_OR_RETURN(plan->caps.inheritable,
                         CapMask(c.inheritable(), "capabilities.inheritable"));
  BERTH_ASSIGN_OR_RETURN(plan->caps.ambient, CapMask(c.ambient(), "capabilities.ambient"));
  plan->last_cap = LastCap();
  plan->no_new_privs = process.no_new_privileges();
  plan->terminal = process.terminal();
  if (!process.apparmor_profile().empty()) {
    plan->apparmor_exec = absl::StrCat("exec ", process.apparmor_profile());
  }
  plan->seccomp = process.seccomp_bpf();
  if (plan->seccomp.size() % sizeof(struct sock_filter) != 0 ||
      plan->seccomp.size() / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    return absl::InvalidArgumentError(absl::StrCat("process.seccomp_bpf: ", plan->seccomp.size(),
                                                   " bytes is not a BPF program of at most ",
                                                   BPF_MAXINSNS, " instructions"));
  }
  plan->seccomp_prog.len =
      static_cast<unsigned short>(plan->seccomp.size() / sizeof(struct sock_filter));
  plan->seccomp_prog.filter =
      reinterpret_cast<struct sock_filter*>(const_cast<char*>(plan->seccomp.data()));
  return plan;
}

// Writes `exec_attr` to the process's AppArmor exec attribute: the 5.8+
// per-LSM file first, then the shared one. 0 or an errno.
static int SetAppArmorExec(const std::string& exec_attr) {
  int fd = open("/proc/self/attr/apparmor/exec", O_WRONLY | O_CLOEXEC);
  if (fd < 0) fd = open("/proc/self/attr/exec", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = write(fd, exec_attr.data(), exec_attr.size());
  int err = n == static_cast<ssize_t>(exec_attr.size()) ? 0 : (n < 0 ? errno : EIO);
  close(fd);
  return err;
}

void RunProcess(const ProcessPlan& plan, int sync_fd) {
  // The shim blocks SIGCHLD and ignores SIGPIPE/SIGHUP; a mask and ignored
  // dispositions survive execve, so the container starts from the defaults.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  if (setsid() < 0) FailChild(sync_fd, Stage::kSetsid, errno);
  if (plan.terminal && ioctl(0, TIOCSCTTY, 0) != 0) FailChild(sync_fd, Stage::kTerminal, errno);
  if (chdir(plan.cwd.c_str()) != 0) FailChild(sync_fd, Stage::kChdir, errno);
  if (!plan.apparmor_exec.empty()) {
    // The transition happens at execve (as runc's apparmor.ApplyProfile),
    // set while we may still: before the uid and capabilities change.
    if (int err = SetAppArmorExec(plan.apparmor_exec)) FailChild(sync_fd, Stage::kAppArmor, err);
  }
  if (plan.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    FailChild(sync_fd, Stage::kNoNewPrivs, errno);
  }
  if (!plan.no_new_privs) {
    if (int err = LoadSeccomp(plan)) FailChild(sync_fd, Stage::kSeccomp, err);
  }
  for (int cap = 0; cap <= plan.last_cap; ++cap) {
    if (plan.caps.bounding & (uint64_t{1} << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      FailChild(sync_fd, Stage::kCapBounding, errno, cap);
    }
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) FailChild(sync_fd, Stage::kKeepCaps, errno);
  if (setgroups(plan.groups.size(), plan.groups.data()) != 0) {
    FailChild(sync_fd, Stage::kSetGroups, errno);
  }
  if (setresgid(plan.gid, plan.gid, plan.gid) != 0) FailChild(sync_fd, Stage::kSetGid, errno);
  if (setresuid(plan.uid, plan.uid, plan.uid) != 0) FailChild(sync_fd, Stage::kSetUid, errno);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) FailChild(sync_fd, Stage::kKeepCaps, errno);
  if (int err = Capset(plan.caps.effective, plan.caps.permitted, plan.caps.inheritable)) {
    FailChild(sync_fd, Stage::kCapSet, err);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    FailChild(sync_fd, Stage::kCapAmbient, errno);
  }
  for (int cap = 0; cap <= plan.last_cap; ++cap) {
    if (!(plan.caps.ambient & (uint64_t{1} << cap))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
      FailChild(sync_fd, Stage::kCapAmbient, errno, cap);
    }
  }
  SyncMsg msg{SyncKind::kReady, Stage::kNone, 0, -1};
  if (send(sync_fd, &msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) _exit(127);
  ssize_t n = read(sync_fd, &msg, sizeof(msg));
  if (n != sizeof(msg) || msg.kind != SyncKind::kStart) _exit(127);  // the shim is gone
  if (plan.no_new_privs) {
    if (int err = LoadSeccomp(plan)) FailChild(sync_fd, Stage::kSeccomp, err);
  }
  // execvp's rule: try each PATH entry; ENOENT moves on, another error is
  // remembered and reported if nothing runs.
  int first_err = 0, first_index = 0;
  for (size_t i = 0; i < plan.candidates.size(); ++i) {
    execve(plan.candidates[i].c_str(), plan.argv.data(), plan.envp.data());
    int err = errno;
    if (first_err == 0 || (first_err == ENOENT && err != ENOENT)) {
      first_err = err;
      first_index = static_cast<int>(i);
    }
  }
  FailChild(sync_fd, Stage::kExec, first_err, first_index);
}

}  // namespace berth::shim
