#include "shim/container.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "os/syscalls.h"
#include "shim/clone.h"
#include "shim/exit_file.h"
#include "shim/idmap.h"
#include "shim/init.h"
#include "shim/sync.h"

namespace berth::shim {
namespace {

struct NsInfo {
  v1::NamespaceType type;
  int flag;
  const char* proc_name;
};
// User first: the other namespaces may be owned by it (setns(2), user_namespaces(7)).
constexpr NsInfo kNamespaces[] = {
    {v1::USER, CLONE_NEWUSER, "user"},  {v1::MOUNT, CLONE_NEWNS, "mnt"},
    {v1::UTS, CLONE_NEWUTS, "uts"},     {v1::IPC, CLONE_NEWIPC, "ipc"},
    {v1::NETWORK, CLONE_NEWNET, "net"}, {v1::CGROUP, CLONE_NEWCGROUP, "cgroup"},
    {v1::PID, CLONE_NEWPID, "pid"},
};

}  // namespace

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

CgroupResources ToCgroupResources(const v1::Resources& r) {
  CgroupResources c;
  if (r.has_cpu_shares()) c.cpu_shares = r.cpu_shares();
  if (r.has_cpu_quota_us()) c.cpu_quota_us = r.cpu_quota_us();
  if (r.has_cpu_period_us()) c.cpu_period_us = r.cpu_period_us();
  if (r.has_cpuset_cpus()) c.cpuset_cpus = r.cpuset_cpus();
  if (r.has_cpuset_mems()) c.cpuset_mems = r.cpuset_mems();
  if (r.has_memory_limit()) c.memory_limit = r.memory_limit();
  if (r.has_memory_swap()) c.memory_swap = r.memory_swap();
  if (r.has_swap_max()) c.swap_max = r.swap_max();
  if (r.has_pids_max()) c.pids_max = r.pids_max();
  if (r.has_blkio_weight()) c.blkio_weight = static_cast<uint16_t>(r.blkio_weight());
  for (const v1::HugepageLimit& h : r.hugepage_limits())
    c.hugetlb_limits[h.page_size()] = h.limit();
  c.unified.insert(r.unified().begin(), r.unified().end());
  if (r.devices_set()) {
    c.devices.emplace();
    for (const v1::DeviceRule& d : r.devices()) {
      DeviceRule rule;
      rule.allow = d.allow();
      rule.type = d.type().empty() ? 'a' : d.type()[0];
      rule.major = d.major();
      rule.minor = d.minor();
      rule.access = d.access().empty() ? "rwm" : d.access();
      c.devices->push_back(rule);
    }
    // What every container may use whatever the rules say, as runc and crun add
    // after the spec's (runc specconv.AllowedDevices): mknod of any node, and
    // the default /dev nodes the shim creates.
    static constexpr struct {
      char type;
      int64_t major, minor;
      const char* access;
    } kAlwaysAllowed[] = {{'c', -1, -1, "m"},   {'b', -1, -1, "m"}, {'c', 1, 3, "rwm"},
                          {'c', 1, 5, "rwm"},   {'c', 1, 7, "rwm"}, {'c', 1, 8, "rwm"},
                          {'c', 1, 9, "rwm"},   {'c', 5, 0, "rwm"}, {'c', 5, 2, "rwm"},
                          {'c', 136, -1, "rwm"}};
    for (const auto& a : kAlwaysAllowed) {
      c.devices->push_back(DeviceRule{true, a.type, a.major, a.minor, a.access});
    }
  }
  return c;
}

absl::StatusOr<std::unique_ptr<Container>> Container::Create(const v1::ContainerSpec& spec,
                                                             const CgroupLayout& layout) {
  if (spec.id().empty()) return absl::InvalidArgumentError("id is empty");
  std::unique_ptr<Container> c(new Container());
  c->created_at_ns_ = NowNs();
  absl::Cleanup destroy_cgroup = [&] {
    if (c->cgroup_) (void)c->cgroup_->Destroy();
  };
  if (!spec.cgroup_path().empty()) {
    BERTH_ASSIGN_OR_RETURN(Cgroup cg, Cgroup::Create(layout, spec.cgroup_path()));
    c->cgroup_.emplace(std::move(cg));
    BERTH_RETURN_IF_ERROR(
        Annotate(c->cgroup_->Apply(ToCgroupResources(spec.resources())), "resources"));
    c->oom_kills_at_create_ = c->OomKills();
  }
  BERTH_RETURN_IF_ERROR(c->Spawn(spec));
  std::move(destroy_cgroup).Cancel();
  return c;
}

Container::~Container() = default;

absl::Status Container::Spawn(const v1::ContainerSpec& spec) {
  InitPlan plan;
  std::vector<UniqueFd> join_fds;
  UniqueFd pidns;
  int flags = 0;
  bool new_mount = false;
  uint32_t seen = 0;
  for (int i = 0; i < spec.namespaces_size(); ++i) {
    const v1::Namespace& ns = spec.namespaces(i);
    const NsInfo* info = nullptr;
    for (const NsInfo& n : kNamespaces) {
      if (n.type == ns.type()) info = &n;
    }
    if (info == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("namespaces[", i, "].type is unknown"));
    }
    if (seen & (1u << ns.type())) {
      return absl::InvalidArgumentError(
          absl::StrCat("namespaces[", i, "]: ", info->proc_name, " is listed twice"));
    }
    seen |= 1u << ns.type();
    if (ns.path().empty()) {
      if (ns.type() == v1::CGROUP) {
        plan.unshare_cgroup = true;
      } else {
        flags |= info->flag;
      }
      if (ns.type() == v1::MOUNT) new_mount = true;
      if (ns.type() == v1::USER) plan.new_userns = true;
      continue;
    }
    absl::StatusOr<UniqueFd> opened = OpenFile(ns.path(), O_RDONLY);
    if (!opened.ok()) return Annotate(opened.status(), absl::StrCat("namespaces[", i, "].path"));
    UniqueFd fd = *std::move(opened);
    if (ns.type() == v1::PID) {
      pidns = std::move(fd);
    } else {
      join_fds.push_back(std::move(fd));
      plan.join.emplace_back(join_fds.back().get(), info->flag);
    }
  }
  // Keep the user namespace first among the joins.
  std::stable_sort(plan.join.begin(), plan.join.end(), [](const auto& a, const auto& b) {
    return a.second == CLONE_NEWUSER && b.second != CLONE_NEWUSER;
  });
  if (!new_mount) {
    return absl::InvalidArgumentError(
        "namespaces: the container needs a new MOUNT namespace (its root is mounted there)");
  }
  if (plan.new_userns && (spec.uid_mappings().empty() || spec.gid_mappings().empty())) {
    return absl::InvalidArgumentError(
        "uid_mappings and gid_mappings are required with a new USER namespace");
  }
  if (!plan.new_userns && (!spec.uid_mappings().empty() || !spec.gid_mappings().empty())) {
    return absl::InvalidArgumentError("uid_mappings given without a new USER namespace");
  }
  userns_ = plan.new_userns;
  BERTH_ASSIGN_OR_RETURN(plan.rootfs, BuildRootfsPlan(spec, plan.new_userns));
  BERTH_ASSIGN_OR_RETURN(plan.process, BuildProcessPlan(spec.process()));
  if (!spec.hostname().empty() && !(flags & CLONE_NEWUTS)) {
    return absl::InvalidArgumentError("hostname needs a new UTS namespace");
  }

  BERTH_ASSIGN_OR_RETURN(ChildEnds ends, MakeChildEnds(plan));
  BERTH_ASSIGN_OR_RETURN(pid_t pid, CloneChild(flags, pidns, plan, ends, RunInit));
  init_pid_ = pid;
  absl::Cleanup kill_child = [pid] { KillAndReap(pid); };
  if (plan.new_userns) {
    BERTH_RETURN_IF_ERROR(WriteIdMaps(pid, spec.uid_mappings(), spec.gid_mappings()));
  }
  BERTH_RETURN_IF_ERROR(PrepareChild(pid, cgroup_, spec.process()));
  BERTH_RETURN_IF_ERROR(SendSync(ends.parent.get(), SyncKind::kGo));
  BERTH_RETURN_IF_ERROR(ReadChildReply(ends.parent.get(), pid, plan, SyncKind::kReady));
  std::move(kill_child).Cancel();
  sync_ = std::move(ends.parent);
  stdout_ = std::move(ends.out_r);
  stderr_ = std::move(ends.err_r);
  // Start needs the candidates for its error message; keep only what it reads.
  exec_error_path_ = plan.process->args[0];
  return absl::OkStatus();
}

absl::Status Container::Start() {
  if (state_ != v1::CREATED || !sync_) {
    return absl::FailedPreconditionError(
        absl::StrCat("container is ", v1::ContainerState_Name(state_), ", not CREATED"));
  }
  BERTH_RETURN_IF_ERROR(SendSync(sync_.get(), SyncKind::kStart));
  SyncMsg msg;
  ssize_t n = RecvSync(sync_.get(), &msg);
  const int recv_err = errno;
  sync_.reset();
  if (n < 0 && recv_err == ETIMEDOUT) {
    // Stopped between its report and exec (a shared-PID pod's neighbour can
    // SIGSTOP it): it cannot be started now; Kill and Delete still end it.
    return absl::DeadlineExceededError(
        absl::StrCat("start: container init ", init_pid_, " did not exec within ",
                     kChildReplyTimeoutMs / 1000, " s (stopped or hung)"));
  }
  if (n == 0) {
    state_ = v1::RUNNING;
    started_at_ns_ = NowNs();
    return absl::OkStatus();
  }
  if (n == sizeof(msg) && msg.kind == SyncKind::kFailed) {
    return Annotate(ErrnoStatus(msg.err, msg.stage == Stage::kExec
                                             ? absl::StrCat("exec `", exec_error_path_, "`")
                                             : StageName(msg.stage)),
                    "start");
  }
  return absl::InternalError("start: container init ended without a report");
}

absl::Status Container::Kill(int signal, bool all) {
  if (state_ == v1::STOPPED) {
    return absl::NotFoundError("kill: the container's init has exited");
  }
  if (all && cgroup_) {
    BERTH_ASSIGN_OR_RETURN(std::vector<pid_t> pids, cgroup_->Pids());
    for (pid_t p : pids) {
      if (::kill(p, signal) != 0 && errno != ESRCH) return ErrnoStatus(errno, "kill");
    }
    return absl::OkStatus();
  }
  if (::kill(init_pid_, signal) != 0) return ErrnoStatus(errno, "kill");
  return absl::OkStatus();
}

absl::Status Container::Pause() {
  if (!cgroup_) return absl::FailedPreconditionError("pause: the container has no cgroup");
  if (state_ != v1::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("pause: container is ", v1::ContainerState_Name(state_)));
  }
  BERTH_RETURN_IF_ERROR(cgroup_->Freeze());
  state_ = v1::PAUSED;
  return absl::OkStatus();
}

absl::Status Container::Resume() {
  if (!cgroup_) return absl::FailedPreconditionError("resume: the container has no cgroup");
  if (state_ != v1::PAUSED) {
    return absl::FailedPreconditionError(
        absl::StrCat("resume: container is ", v1::ContainerState_Name(state_)));
  }
  BERTH_RETURN_IF_ERROR(cgroup_->Thaw());
  state_ = v1::RUNNING;
  return absl::OkStatus();
}

absl::Status Container::Update(const v1::Resources& resources) {
  if (!cgroup_) return absl::FailedPreconditionError("update: the container has no cgroup");
  if (state_ == v1::STOPPED) return absl::FailedPreconditionError("update: container has exited");
  return cgroup_->Apply(ToCgroupResources(resources));
}

absl::StatusOr<ExecChild> Container::Exec(const v1::Process& process, const int* stdio) {
  if (state_ != v1::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("exec: container is ", v1::ContainerState_Name(state_), ", not RUNNING"));
  }
  InitPlan plan;
  BERTH_ASSIGN_OR_RETURN(plan.process, BuildProcessPlan(process));
  std::vector<UniqueFd> fds;
  UniqueFd pidns;
  for (const NsInfo& n : kNamespaces) {
    const std::string theirs = absl::StrCat("/proc/", init_pid_, "/ns/", n.proc_name);
    const std::string ours = absl::StrCat("/proc/self/ns/", n.proc_name);
    struct stat a, b;
    if (stat(theirs.c_str(), &a) != 0) return ErrnoStatus(errno, "stat", theirs);
    if (stat(ours.c_str(), &b) != 0) return ErrnoStatus(errno, "stat", ours);
    if (a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
    BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(theirs, O_RDONLY));
    if (n.flag == CLONE_NEWPID) {
      pidns = std::move(fd);
    } else {
      fds.push_back(std::move(fd));
      plan.join.emplace_back(fds.back().get(), n.flag);
    }
  }
  BERTH_ASSIGN_OR_RETURN(ChildEnds ends, MakeChildEnds(plan));
  if (stdio != nullptr) {
    for (int i = 0; i < 3; ++i) plan.stdio[i] = stdio[i];
    ends.out_r.reset();
    ends.err_r.reset();
  }
  BERTH_ASSIGN_OR_RETURN(pid_t pid, CloneChild(0, pidns, plan, ends, RunJoined));
  absl::Cleanup kill_child = [pid] { KillAndReap(pid); };
  BERTH_RETURN_IF_ERROR(PrepareChild(pid, cgroup_, process));
  const int sync = ends.parent.get();
  BERTH_RETURN_IF_ERROR(SendSync(sync, SyncKind::kGo));
  BERTH_RETURN_IF_ERROR(Annotate(ReadChildReply(sync, pid, plan, SyncKind::kReady), "exec"));
  BERTH_RETURN_IF_ERROR(SendSync(sync, SyncKind::kStart));
  BERTH_RETURN_IF_ERROR(Annotate(ReadChildReply(sync, pid, plan, SyncKind::kStart), "exec"));
  std::move(kill_child).Cancel();
  ExecChild child;
  child.pid = pid;
  child.stdout_fd = std::move(ends.out_r);
  child.stderr_fd = std::move(ends.err_r);
  return child;
}

uint64_t Container::OomKills() const {
  if (!cgroup_) return 0;
  std::string dir = cgroup_->DirFor("memory");
  if (dir.empty()) return 0;
  // v1 memory.oom_control and v2 memory.events both carry "oom_kill N" (4.13+).
  for (const char* file : {"/memory.events", "/memory.oom_control"}) {
    absl::StatusOr<std::string> text = ReadFile(dir + file);
    if (!text.ok()) continue;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      uint64_t n = 0;
      if (absl::ConsumePrefix(&line, "oom_kill ") && absl::SimpleAtoi(line, &n)) return n;
    }
  }
  return 0;
}

const v1::ExitStatus& Container::OnInitExit(int wait_status) {
  bool oom = OomKills() > oom_kills_at_create_;
  exit_ = ExitStatusFromWait(wait_status, NowNs(), oom);
  state_ = v1::STOPPED;
  sync_.reset();
  return exit_;
}

absl::Status Container::Delete() {
  if (state_ != v1::STOPPED) {
    if (state_ == v1::PAUSED && cgroup_) (void)cgroup_->Thaw();
    ::kill(init_pid_, SIGKILL);
    int status = 0;
    pid_t r;
    do {
      r = waitpid(init_pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == init_pid_) OnInitExit(status);
  }
  if (cgroup_) BERTH_RETURN_IF_ERROR(cgroup_->Destroy());
  return absl::OkStatus();
}

}  // namespace berth::shim
