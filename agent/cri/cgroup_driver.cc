// The two cgroup drivers, as kubelet knows them (RuntimeConfig answers which):
// - cgroupfs: cgroup_parent is a cgroup path; berthd and the shims make the
//   directories (<parent>/<id>).
// - systemd: cgroup_parent is a slice name; a pod without one gets the
//   transient slice `<root>-<pod id>.slice`; each container and each pause
//   process is the transient scope `berth-<id>.scope` in its pod's slice,
//   made over D-Bus with the limits as unit properties and Delegate=yes, so
//   that the shim may write the rest into it (agent/runtime/systemd_units.h).
//
// A scope needs a process when it is made, and the shim moves the container's
// init in only later: a placeholder process (a bare clone of berthd that
// waits in pause(2)) holds the scope until then.
//
// Removal follows the record, not the flag: a leaf named `*.scope` and a pod
// cgroup named `*.slice` are systemd's units, anything else cgroupfs
// directories, so a berthd restarted with the other driver still removes what
// the previous one made.
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/runtime/systemd_units.h"
#include "os/cgroup/cgroup.h"
#include "os/log.h"
#include "os/status.h"

namespace berth {

namespace v1 = runtime::v1;

namespace {

// The unit properties for `r` (an update: only what it sets).
absl::StatusOr<lifecycle::UnitLimits> UnitLimitsFor(const shim::v1::Resources& r, bool update) {
  lifecycle::UnitLimits limits;
  if (r.has_cpu_shares()) limits.cpu_weight = CpuSharesToWeight(r.cpu_shares());
  if (r.has_cpu_quota_us() && r.cpu_quota_us() > 0) {
    const uint64_t period =
        r.has_cpu_period_us() && r.cpu_period_us() > 0 ? r.cpu_period_us() : 100000;
    // systemd keeps whole percents of a CPU (10 ms per second): round up, as runc does.
    uint64_t per_sec = static_cast<uint64_t>(r.cpu_quota_us()) * 1000000 / period;
    per_sec = (per_sec + 9999) / 10000 * 10000;
    limits.cpu_quota_per_sec_us = per_sec;
  }
  if (r.has_memory_limit() && r.memory_limit() > 0) limits.memory_max = r.memory_limit();
  // Unset is no limit, as with cgroupfs - not systemd's DefaultTasksMax (15%
  // of pid_max), which it would otherwise give every scope.
  if (r.has_pids_max() || !update) {
    limits.tasks_max =
        r.has_pids_max() && r.pids_max() > 0 ? static_cast<uint64_t>(r.pids_max()) : UINT64_MAX;
  }
  if (r.has_swap_max()) limits.memory_swap_max = r.swap_max() < 0 ? UINT64_MAX : r.swap_max();
  for (const char* key : {"memory.min", "memory.low", "memory.high"}) {
    auto it = r.unified().find(key);
    if (it == r.unified().end()) continue;
    uint64_t v = UINT64_MAX;
    if (it->second != "max" && !absl::SimpleAtoi(it->second, &v)) continue;  // the shim says why
    limits.memory_qos[key] = v;
  }
  if (r.has_cpu_period_us() && r.cpu_period_us() > 0)
    limits.cpu_quota_period_us = r.cpu_period_us();
  if (r.has_cpuset_cpus() && !r.cpuset_cpus().empty()) {
    absl::StatusOr<std::vector<uint8_t>> mask = lifecycle::CpuListMask(r.cpuset_cpus());
    if (!mask.ok()) return Annotate(mask.status(), "cpuset_cpus");
    limits.allowed_cpus = *std::move(mask);
  }
  return limits;
}

}  // namespace

absl::Status CriService::ResolveCgroupDriver() {
  const std::string& d = options_.cgroup_driver;
  const bool unified = cgroups_.ok() && cgroups_->mode() == CgroupMode::kUnified;
  if (d.empty()) {
    systemd_cgroups_ = unified && lifecycle::SystemdBooted();
  } else if (d == "systemd") {
    if (!unified) {
      return absl::InvalidArgumentError(
          "--cgroup-driver=systemd: berth's systemd driver needs a pure cgroup-v2 host");
    }
    if (!lifecycle::SystemdBooted()) {
      return absl::InvalidArgumentError(
          "--cgroup-driver=systemd: systemd is not the init system here (no /run/systemd/system)");
    }
    systemd_cgroups_ = true;
  } else if (d != "cgroupfs") {
    return absl::InvalidArgumentError(
        absl::StrCat("--cgroup-driver `", d, "`: not systemd or cgroupfs"));
  }
  if (systemd_cgroups_) {
    // The pods' slice family must be one systemd takes.
    absl::StatusOr<std::string> probe = PodCgroupPath("0", "");
    if (!probe.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cgroup-root `", options_.cgroup_root,
                       "`: with the systemd cgroup driver its last part names the pods' slices: ",
                       probe.status().message()));
    }
  }
  BERTH_LOG(INFO) << "cgroup driver: " << (systemd_cgroups_ ? "systemd" : "cgroupfs");
  return absl::OkStatus();
}

absl::StatusOr<std::string> CriService::PodCgroupPath(const std::string& pod_id,
                                                      const std::string& parent) const {
  const std::string field = "config.linux.cgroup_parent";
  if (!systemd_cgroups_) {
    if (parent.empty()) return absl::StrCat(options_.cgroup_root, "/", pod_id);
    if (parent[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " `", parent,
          "`: berth uses the cgroupfs driver here (RuntimeConfig says so): give an absolute "
          "path, or run berthd with --cgroup-driver=systemd for slice names"));
    }
    absl::Status s = CheckCgroupPath(parent);
    if (!s.ok()) return Annotate(s, field);
    return parent;
  }
  std::string slice = parent;
  if (slice.empty()) {
    // The root's last part names the slice family: /berth -> berth-<id>.slice.
    std::string root = options_.cgroup_root.substr(options_.cgroup_root.rfind('/') + 1);
    if (absl::EndsWith(root, ".slice")) root.resize(root.size() - strlen(".slice"));
    slice = absl::StrCat(root, "-", pod_id, ".slice");
  } else if (parent[0] == '/' || parent == "-.slice") {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " `", parent,
        "`: berth uses the systemd cgroup driver here (RuntimeConfig says so): give a slice "
        "name such as kubepods-burstable-pod<uid>.slice"));
  }
  absl::StatusOr<std::string> path = lifecycle::SliceCgroupPath(slice);
  if (!path.ok()) return Annotate(path.status(), field);
  return *path;
}

std::string CriService::ChildCgroupPath(const std::string& pod_path, const std::string& id) const {
  // The pod's cgroup says which driver made its pause's (see the top).
  return absl::EndsWith(pod_path, ".slice") ? absl::StrCat(pod_path, "/berth-", id, ".scope")
                                            : absl::StrCat(pod_path, "/", id);
}

std::string CriService::UnifiedDir(const std::string& path) const {
  return cgroups_.ok() && !cgroups_->hierarchies().empty()
             ? cgroups_->hierarchies()[0].mount_point + path
             : path;
}

absl::Status CriService::MakePodCgroup(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(const CgroupLayout* layout, Cgroups());
  if (!systemd_cgroups_) {
    return Cgroup::Create(*layout, path, /*for_children=*/true).status();
  }
  return lifecycle::StartSlice(lifecycle::SliceOfPath(path), UnifiedDir(path));
}

absl::Status CriService::RemovePodCgroup(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(const CgroupLayout* layout, Cgroups());
  if (absl::EndsWith(path, ".slice")) {
    return lifecycle::StopUnit(lifecycle::SliceOfPath(path), UnifiedDir(path));
  }
  absl::StatusOr<Cgroup> cg = Cgroup::Open(*layout, path);
  return cg.ok() ? cg->Destroy() : absl::OkStatus();
}

absl::Status CriService::RemoveLeafCgroup(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(const CgroupLayout* layout, Cgroups());
  // Killed and removed first (a scope stopped with live processes waits out
  // systemd's stop timeout); then the unit, if systemd still has it.
  absl::StatusOr<Cgroup> cg = Cgroup::Open(*layout, path);
  absl::Status destroyed = cg.ok() ? cg->Destroy() : cg.status();
  const std::string unit = path.substr(path.rfind('/') + 1);
  if (!absl::EndsWith(unit, ".scope")) return destroyed;
  // Stopped even when the directory would not go (a container's own child
  // cgroups): systemd trims the whole subtree.
  absl::Status stopped = lifecycle::StopUnit(unit, UnifiedDir(path));
  return stopped.ok() ? stopped : destroyed.ok() ? stopped : destroyed;
}

CriService::ScopeHold::~ScopeHold() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

absl::Status CriService::UpdateScope(const std::string& path, const shim::v1::Resources& r) {
  if (!absl::EndsWith(path, ".scope")) return absl::OkStatus();
  BERTH_ASSIGN_OR_RETURN(lifecycle::UnitLimits limits, UnitLimitsFor(r, /*update=*/true));
  return lifecycle::SetUnitLimits(path.substr(path.rfind('/') + 1), limits);
}

absl::StatusOr<std::unique_ptr<CriService::ScopeHold>> CriService::MakeScope(
    const std::string& path, const shim::v1::Resources& r) {
  auto hold = std::make_unique<ScopeHold>();
  if (!absl::EndsWith(path, ".scope")) return hold;
  BERTH_ASSIGN_OR_RETURN(lifecycle::UnitLimits limits, UnitLimitsFor(r, /*update=*/false));
  // A bare clone (no atfork handlers run in a threaded berthd) that only
  // waits; it dies with the thread that made it, should berthd die first.
  const pid_t parent = ::getpid();
  long pid = ::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid < 0) return ErrnoStatus(errno, "clone (scope placeholder)");
  if (pid == 0) {
    // Only raw system calls here (STYLE.md 10). No fd of berthd's stays open
    // in it (a pipe's end held here would delay someone's EOF), SIGTERM is
    // not blocked (systemd may stop the scope), and it does not outlive
    // berthd.
    ::syscall(SYS_close_range, 0, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof(uint64_t));
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) ::syscall(SYS_exit_group, 0);
    for (;;) ::pause();
  }
  hold->pid_ = static_cast<pid_t>(pid);
  const std::string slice = lifecycle::SliceOfPath(path.substr(0, path.rfind('/')));
  const std::string unit = path.substr(path.rfind('/') + 1);
  BERTH_RETURN_IF_ERROR(lifecycle::StartScope(unit, slice, hold->pid_, limits, UnifiedDir(path)));
  return hold;
}

}  // namespace berth
