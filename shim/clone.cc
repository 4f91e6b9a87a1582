#include "shim/clone.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "os/log.h"
#include "os/status.h"

namespace berth::shim {
namespace {

constexpr struct {
  const char* name;
  int resource;
} kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

// The child's failure as an error naming the stage and what it was working on.
absl::Status ChildError(const SyncMsg& msg, const InitPlan& plan) {
  std::string what = StageName(msg.stage);
  const RootfsPlan& r = plan.rootfs;
  size_t i = msg.index < 0 ? SIZE_MAX : static_cast<size_t>(msg.index);
  switch (msg.stage) {
    case Stage::kMount:
      if (i < r.mounts.size()) {
        what = absl::StrCat("mount ", r.mounts[i].fstype.empty() ? "bind" : r.mounts[i].fstype,
                            " on `", r.mounts[i].destination, "`");
      }
      break;
    case Stage::kDevices:
      if (i < r.devices.size()) what = absl::StrCat("mknod `", r.devices[i].container, "`");
      break;
    case Stage::kSysctl:
      if (i < r.sysctls.size()) what = absl::StrCat("sysctl `", r.sysctls[i].first, "`");
      break;
    case Stage::kMaskedPath:
      if (i < r.masked_paths.size()) what = absl::StrCat("mask `", r.masked_paths[i], "`");
      break;
    case Stage::kReadonlyPath:
      if (i < r.readonly_paths.size()) {
        what = absl::StrCat("read-only `", r.readonly_paths[i], "`");
      }
      break;
    case Stage::kExec:
      if (i < plan.process->candidates.size()) {
        // ENOENT on every PATH entry: name the program as given.
        what = absl::StrCat("exec `",
                            msg.err == ENOENT && plan.process->candidates.size() > 1
                                ? plan.process->args[0]
                                : plan.process->candidates[i],
                            "`");
      }
      break;
    case Stage::kChdir:
      what = absl::StrCat("chdir `", plan.process->cwd, "`");
      break;
    default:
      if (msg.index >= 0) absl::StrAppend(&what, " #", msg.index);
  }
  return Annotate(ErrnoStatus(msg.err, what), "container init");
}

absl::Status SetRlimits(pid_t pid, const v1::Process& process) {
  for (int i = 0; i < process.rlimits_size(); ++i) {
    const v1::Rlimit& r = process.rlimits(i);
    int resource = -1;
    for (const auto& k : kRlimits) {
      if (r.type() == k.name) resource = k.resource;
    }
    if (resource < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("process.rlimits[", i, "].type `", r.type(), "` is unknown"));
    }
    struct rlimit lim = {r.soft(), r.hard()};
    if (prlimit(pid, static_cast<__rlimit_resource>(resource), &lim, nullptr) != 0) {
      int err = errno;
      std::string why = err == EPERM ? " (raising a hard limit needs CAP_SYS_RESOURCE)" : "";
      return ErrnoStatus(err, absl::StrCat("process.rlimits[", i, "] ", r.type(), " soft ",
                                           r.soft(), " hard ", r.hard(), why));
    }
  }
  return absl::OkStatus();
}

absl::Status SetOomScoreAdj(pid_t pid, int value) {
  const std::string path = absl::StrCat("/proc/", pid, "/oom_score_adj");
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY));
  const std::string text = absl::StrCat(value);
  if (write(fd.get(), text.data(), text.size()) < 0) {
    int err = errno;
    std::string why = err == EACCES || err == EPERM ? " (lowering it needs CAP_SYS_RESOURCE)" : "";
    return ErrnoStatus(err, absl::StrCat("process.oom_score_adj ", value, why));
  }
  return absl::OkStatus();
}

pid_t RawClone(int flags) {
  return static_cast<pid_t>(syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
}

}  // namespace

ssize_t RecvSync(int fd, SyncMsg* msg, int timeout_ms) {
  const absl::Time deadline = absl::Now() + absl::Milliseconds(timeout_ms);
  while (true) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    struct pollfd p = {fd, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return -1;
    if (ready == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    ssize_t n = recv(fd, msg, sizeof(*msg), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return n;
  }
}

absl::Status ReadChildReply(int fd, pid_t pid, const InitPlan& plan, SyncKind want) {
  SyncMsg msg;
  ssize_t n = RecvSync(fd, &msg);
  if (n < 0 && errno == ETIMEDOUT) {
    return absl::DeadlineExceededError(
        absl::StrCat("child ", pid, " did not report within ", kChildReplyTimeoutMs / 1000,
                     " s (stopped or hung: a process in the container may have sent it SIGSTOP)"));
  }
  if (n == 0 && want == SyncKind::kStart) return absl::OkStatus();  // exec closed it
  if (n == sizeof(msg) && msg.kind == want) return absl::OkStatus();
  if (n == sizeof(msg) && msg.kind == SyncKind::kFailed) return ChildError(msg, plan);
  return absl::InternalError(absl::StrCat("container init ", pid, " ended without a report"));
}

absl::Status SendSync(int fd, SyncKind kind) {
  SyncMsg msg{kind, Stage::kNone, 0, -1};
  if (send(fd, &msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) {
    return ErrnoStatus(errno, "send to container init");
  }
  return absl::OkStatus();
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

absl::StatusOr<ChildEnds> MakeChildEnds(InitPlan& plan) {
  ChildEnds e;
  int out[2], err[2], sv[2];
  if (pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  e.out_r.reset(out[0]);
  e.out_w.reset(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  e.err_r.reset(err[0]);
  e.err_w.reset(err[1]);
  BERTH_ASSIGN_OR_RETURN(e.devnull, OpenFile("/dev/null", O_RDWR));
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(errno, "socketpair");
  }
  e.parent.reset(sv[0]);
  e.child.reset(sv[1]);
  plan.stdio[0] = e.devnull.get();
  plan.stdio[1] = e.out_w.get();
  plan.stdio[2] = e.err_w.get();
  return e;
}

absl::StatusOr<pid_t> CloneChild(int flags, const UniqueFd& pidns, const InitPlan& plan,
                                 ChildEnds& ends, void (*body)(const InitPlan&, int, Syscalls&)) {
  UniqueFd own_pidns;
  if (pidns) {
    BERTH_ASSIGN_OR_RETURN(own_pidns, OpenFile("/proc/self/ns/pid", O_RDONLY));
    if (setns(pidns.get(), CLONE_NEWPID) != 0) return ErrnoStatus(errno, "setns", "pid");
  }
  pid_t pid = RawClone(flags);
  if (pid == 0) {
    RealSyscalls sys;
    body(plan, ends.child.get(), sys);
    _exit(127);  // not reached: body execs or _exits
  }
  int clone_err = errno;
  if (own_pidns && setns(own_pidns.get(), CLONE_NEWPID) != 0) {
    BERTH_LOG(ERROR) << "cannot return to the shim's pid namespace: " << strerror(errno);
  }
  if (pid < 0) return ErrnoStatus(clone_err, "clone");
  ends.child.reset();
  ends.out_w.reset();
  ends.err_w.reset();
  return pid;
}

absl::Status PrepareChild(pid_t pid, std::optional<Cgroup>& cgroup, const v1::Process& process) {
  if (cgroup) BERTH_RETURN_IF_ERROR(cgroup->AddProcess(pid));
  BERTH_RETURN_IF_ERROR(SetRlimits(pid, process));
  if (process.has_oom_score_adj()) {
    BERTH_RETURN_IF_ERROR(SetOomScoreAdj(pid, process.oom_score_adj()));
  }
  return absl::OkStatus();
}

}  // namespace berth::shim
