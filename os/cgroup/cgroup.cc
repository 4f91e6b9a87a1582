#include "os/cgroup/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "os/cgroup/device_filter.h"
#include "os/files.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth {
namespace {

constexpr absl::Duration kSettleTimeout = absl::Seconds(5);

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

absl::Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(errno, "mkdir", dir);
  return absl::OkStatus();
}

// v1 cpuset: a new child has empty cpuset.cpus/mems and refuses tasks until they
// are set; take the parent's. When a concurrent Create made the parent and has
// not filled it yet, the empty levels are filled top down from the hierarchy's
// root (which always has them), each from its own parent: the kernel takes
// only a subset of the parent's (EACCES otherwise). Then
// `cgroup.clone_children` makes the kernel copy them into this dir's own
// children at mkdir: every write of cpuset.cpus rebuilds the scheduler's
// domains, which cost ~1 ms per pod here.
absl::Status InheritCpuset(const std::string& mount_point, const std::string& dir) {
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    absl::StatusOr<std::string> mine = ReadFile(dir + "/" + file);
    if (!mine.ok() && !absl::IsNotFound(mine.status())) return mine.status();
    if (mine.ok() && !absl::StripAsciiWhitespace(*mine).empty()) continue;
    // The levels below the mount point down to `dir`, top first.
    std::vector<std::string> levels;
    for (std::string d = dir; d.size() > mount_point.size(); d.resize(d.rfind('/'))) {
      levels.insert(levels.begin(), d);
    }
    BERTH_ASSIGN_OR_RETURN(std::string value, ReadFile(mount_point + "/" + file));
    for (const std::string& level : levels) {
      absl::StatusOr<std::string> own = ReadFile(level + "/" + file);
      if (!own.ok() && !absl::IsNotFound(own.status())) return own.status();
      std::string v = own.ok() ? std::string(absl::StripAsciiWhitespace(*own)) : "";
      if (v.empty()) {
        v = std::string(absl::StripAsciiWhitespace(value));
        BERTH_RETURN_IF_ERROR(WriteCgroupFile(level, file, v));
      }
      value = std::move(v);
    }
  }
  return WriteCgroupFile(dir, "cgroup.clone_children", "1");
}

// v2: lets children of `dir` use every controller `dir` has - which are those its
// parent enabled for it (cgroup.controllers of a child = subtree_control of its parent).
absl::Status EnableSubtreeControllers(const std::string& parent, const std::string& dir) {
  BERTH_ASSIGN_OR_RETURN(std::string available, ReadFile(parent + "/cgroup.subtree_control"));
  std::string enable;
  for (absl::string_view c :
       absl::StrSplit(absl::StripAsciiWhitespace(available), ' ', absl::SkipEmpty())) {
    absl::ConsumePrefix(&c, "+");  // the kernel lists names bare; a fake tree may not
    absl::StrAppend(&enable, enable.empty() ? "" : " ", "+", c);
  }
  if (enable.empty()) return absl::OkStatus();
  return WriteCgroupFile(dir, "cgroup.subtree_control", enable);
}

// v2, an existing level: enables for its children every controller it has
// and does not hand down yet, one at a time (a level holding processes
// refuses; Apply then names what is missing). As runc's CreateCgroupPath and
// crun do for every ancestor: systemd enables only the controllers its units
// ask for (never hugetlb), and kubelet's cgroupfs pod cgroups none.
void EnableMissingControllers(const std::string& dir) {
  absl::StatusOr<std::string> available = ReadFile(dir + "/cgroup.controllers");
  absl::StatusOr<std::string> enabled = ReadFile(dir + "/cgroup.subtree_control");
  if (!available.ok() || !enabled.ok()) return;
  std::vector<absl::string_view> on = absl::StrSplit(*enabled, absl::ByAnyChar(" \n"));
  for (absl::string_view c :
       absl::StrSplit(absl::StripAsciiWhitespace(*available), ' ', absl::SkipEmpty())) {
    if (std::find(on.begin(), on.end(), c) != on.end()) continue;
    (void)WriteCgroupFile(dir, "cgroup.subtree_control", absl::StrCat("+", c));
  }
}

// `dir` and every cgroup below it, children before their parents (the order
// rmdir needs). A container may make child cgroups of its own (a privileged
// one, or one with a delegated systemd scope); depth is capped.
void Subtree(const std::string& dir, int depth, std::vector<std::string>& out) {
  if (depth < 32) {
    if (DIR* d = ::opendir(dir.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
        Subtree(absl::StrCat(dir, "/", e->d_name), depth + 1, out);
      }
      ::closedir(d);
    }
  }
  out.push_back(dir);
}

absl::StatusOr<std::vector<pid_t>> ReadPids(const std::string& dir) {
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile(dir + "/cgroup.procs"));
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    pid_t pid;
    if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
  }
  return pids;
}

}  // namespace

std::vector<std::string> CgroupProblems(const CgroupLayout& layout, absl::string_view root,
                                        bool delegation) {
  static constexpr const char* kNeeded[] = {"cpu", "memory", "pids"};
  std::vector<std::string> problems;
  if (absl::Status s = CheckCgroupPath(root); !s.ok()) return {std::string(s.message())};
  for (const char* c : kNeeded) {
    if (layout.Find(c) == nullptr) {
      problems.push_back(absl::StrCat("no cgroup hierarchy has the ", c, " controller"));
    }
  }
  for (const CgroupHierarchy& h : layout.hierarchies()) {
    std::string dir = h.mount_point + std::string(root);
    while (dir.size() > h.mount_point.size() && !Exists(dir)) dir.resize(dir.rfind('/'));
    if (::access(dir.c_str(), W_OK) != 0) {
      problems.push_back(absl::StrCat("cgroup directory `", dir, "` is not writable: ",
                                      ErrnoStatus(errno, "access").message()));
      continue;
    }
    if (!h.v2 || !delegation) continue;
    absl::StatusOr<std::string> enabled = ReadFile(dir + "/cgroup.subtree_control");
    if (!enabled.ok()) {
      problems.push_back(std::string(enabled.status().message()));
      continue;
    }
    std::vector<absl::string_view> on = absl::StrSplit(*enabled, absl::ByAnyChar(" \n"));
    for (const char* c : kNeeded) {
      if (layout.Find(c) != &h || std::find(on.begin(), on.end(), c) != on.end()) continue;
      problems.push_back(absl::StrCat("cgroup `", dir, "` does not delegate the ", c,
                                      " controller to its children (cgroup.subtree_control "
                                      "lacks it; enable it there, or give a --cgroup-root "
                                      "below a cgroup that has it)"));
    }
  }
  return problems;
}

absl::Status CheckCgroupPath(absl::string_view path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup path `", path, "` must be absolute from the hierarchy's root"));
  }
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup path `", path, "` has an empty, `.` or `..` component"));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteCgroupFile(const std::string& dir, absl::string_view file,
                             absl::string_view value) {
  std::string path = absl::StrCat(dir, "/", file);
  // O_CREAT only matters for fake trees in tests: cgroupfs files always exist.
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY | O_TRUNC | O_CREAT, 0644));
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n != static_cast<ssize_t>(value.size())) {
    return ErrnoStatus(n < 0 ? errno : EIO, absl::StrCat("write `", value, "` to"), path);
  }
  return absl::OkStatus();
}

bool HasController(const CgroupHierarchy& h, absl::string_view controller) {
  return std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end();
}

bool CgroupFileExists(const std::string& dir, absl::string_view file) {
  return ::access(absl::StrCat(dir, "/", file).c_str(), F_OK) == 0;
}

uint64_t CpuSharesToWeight(uint64_t shares) {
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

Cgroup::Cgroup(const CgroupLayout& layout, std::string path)
    : layout_(&layout), path_(std::move(path)) {}

absl::StatusOr<Cgroup> Cgroup::Open(const CgroupLayout& layout, std::string path) {
  BERTH_RETURN_IF_ERROR(CheckCgroupPath(path));
  return Cgroup(layout, std::move(path));
}

absl::StatusOr<Cgroup> Cgroup::Create(const CgroupLayout& layout, std::string path,
                                      bool for_children) {
  BERTH_RETURN_IF_ERROR(CheckCgroupPath(path));
  const std::string relative = path.substr(1);
  const std::vector<absl::string_view> parts = absl::StrSplit(relative, '/');
  // Rollback (STYLE.md 9): on any failure, remove every directory this call made,
  // deepest first, so a half-made cgroup leaks nowhere.
  std::vector<std::string> made;
  absl::Cleanup rollback = [&made] {
    for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
  };
  // On a pure v2 host the existing levels above hand their controllers down
  // too (EnableMissingControllers); elsewhere (a hybrid host's cgroup2 is
  // its own manager's) they are left as they are.
  const bool unified = layout.mode() == CgroupMode::kUnified;
  for (const CgroupHierarchy& h : layout.hierarchies()) {
    bool cpuset = !h.v2 && HasController(h, "cpuset");
    std::string dir = h.mount_point;
    if (h.v2 && unified) EnableMissingControllers(dir);
    for (size_t i = 0; i < parts.size(); ++i) {
      std::string parent = dir;
      dir = absl::StrCat(dir, "/", parts[i]);
      const bool leaf = i + 1 == parts.size();
      if (Exists(dir)) {
        if (h.v2 && unified && (!leaf || for_children)) EnableMissingControllers(dir);
        continue;
      }
      BERTH_RETURN_IF_ERROR(MakeDir(dir));
      made.push_back(dir);
      if (cpuset) BERTH_RETURN_IF_ERROR(Annotate(InheritCpuset(h.mount_point, dir), "cpuset"));
      if (h.v2 && (!leaf || for_children)) {
        BERTH_RETURN_IF_ERROR(EnableSubtreeControllers(parent, dir));
      }
    }
  }
  std::move(rollback).Cancel();
  return Cgroup(layout, std::move(path));
}

std::string Cgroup::DirFor(absl::string_view controller) const {
  const CgroupHierarchy* h = layout_->Find(controller);
  return h == nullptr ? "" : h->mount_point + path_;
}

absl::Status Cgroup::Apply(const CgroupResources& r) {
  if (r.memory_swap && r.swap_max) {
    return absl::InvalidArgumentError("memory_swap and swap_max both set: give one swap limit");
  }
  // Refuse what no hierarchy here can do before writing anything. Without a
  // v1 devices controller, device rules become cgroup2's eBPF device filter.
  const CgroupHierarchy* device_filter = nullptr;
  if (r.devices && layout_->Find("devices") == nullptr) {
    for (const CgroupHierarchy& h : layout_->hierarchies()) {
      if (h.v2) device_filter = &h;
    }
    if (device_filter == nullptr) {
      return absl::UnimplementedError(
          "device access rules need the v1 devices controller or cgroup2, and this host has "
          "neither");
    }
    BERTH_RETURN_IF_ERROR(DeviceFilterProgram(*r.devices).status());
  }
  for (const auto& [key, value] : r.unified) {
    const std::string controller = key.substr(0, key.find('.'));
    const CgroupHierarchy* h = layout_->Find(controller);
    if (key.find('/') != std::string::npos || controller == key || h == nullptr || !h->v2) {
      return absl::FailedPreconditionError(absl::StrCat(
          "unified[", key, "]: no cgroup v2 hierarchy here has the `", controller, "` controller"));
    }
  }
  if (!r.hugetlb_limits.empty() && layout_->Find("hugetlb") == nullptr) {
    return absl::FailedPreconditionError(
        "hugetlb limits asked for, but no cgroup hierarchy "
        "here has the hugetlb controller");
  }
  for (const CgroupHierarchy& h : layout_->hierarchies()) {
    std::string dir = h.mount_point + path_;
    absl::Status s = h.v2 ? ApplyV2(h, dir, r) : ApplyV1(h, dir, r);
    BERTH_RETURN_IF_ERROR(Annotate(s, absl::StrCat("cgroup ", path_)));
  }
  if (device_filter != nullptr) {
    BERTH_RETURN_IF_ERROR(
        Annotate(ApplyDeviceFilter(device_filter->mount_point + path_, *r.devices),
                 absl::StrCat("cgroup ", path_, ": devices")));
  }
  return absl::OkStatus();
}

absl::Status Cgroup::AddProcess(pid_t pid) {
  for (const CgroupHierarchy& h : layout_->hierarchies()) {
    BERTH_RETURN_IF_ERROR(
        WriteCgroupFile(h.mount_point + path_, "cgroup.procs", std::to_string(pid)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<pid_t>> Cgroup::Pids() const { return CollectPids(false); }

absl::StatusOr<std::vector<pid_t>> Cgroup::SubtreePids() const { return CollectPids(true); }

absl::StatusOr<std::vector<pid_t>> Cgroup::CollectPids(bool subtree) const {
  std::vector<pid_t> all;
  for (const CgroupHierarchy& h : layout_->hierarchies()) {
    std::vector<std::string> dirs;
    if (subtree) {
      Subtree(h.mount_point + path_, 0, dirs);
    } else {
      dirs.push_back(h.mount_point + path_);
    }
    for (const std::string& dir : dirs) {
      absl::StatusOr<std::vector<pid_t>> pids = ReadPids(dir);
      if (!pids.ok()) {
        if (absl::IsNotFound(pids.status())) continue;
        return pids.status();
      }
      all.insert(all.end(), pids->begin(), pids->end());
    }
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

absl::Status Cgroup::Freeze() {
  std::string dir = DirFor("freezer");
  if (!dir.empty()) {
    BERTH_RETURN_IF_ERROR(WriteCgroupFile(dir, "freezer.state", "FROZEN"));
    absl::Time deadline = absl::Now() + kSettleTimeout;
    for (;;) {  // FREEZING until every task has stopped
      BERTH_ASSIGN_OR_RETURN(std::string state, ReadFile(dir + "/freezer.state"));
      if (absl::StripAsciiWhitespace(state) == "FROZEN") return absl::OkStatus();
      if (absl::Now() > deadline) return absl::DeadlineExceededError("freezer: still FREEZING");
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  for (const CgroupHierarchy& h : layout_->hierarchies()) {
    if (!h.v2) continue;
    std::string v2dir = h.mount_point + path_;
    BERTH_RETURN_IF_ERROR(WriteCgroupFile(v2dir, "cgroup.freeze", "1"));
    absl::Time deadline = absl::Now() + kSettleTimeout;
    for (;;) {
      BERTH_ASSIGN_OR_RETURN(std::string events, ReadFile(v2dir + "/cgroup.events"));
      if (absl::StrContains(events, "frozen 1")) return absl::OkStatus();
      if (absl::Now() > deadline) return absl::DeadlineExceededError("cgroup.freeze: not frozen");
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  return absl::FailedPreconditionError("no freezer: neither a v1 freezer hierarchy nor cgroup2");
}

absl::Status Cgroup::Thaw() {
  if (std::string dir = DirFor("freezer"); !dir.empty()) {
    return WriteCgroupFile(dir, "freezer.state", "THAWED");
  }
  for (const CgroupHierarchy& h : layout_->hierarchies()) {
    if (h.v2) return WriteCgroupFile(h.mount_point + path_, "cgroup.freeze", "0");
  }
  return absl::FailedPreconditionError("no freezer: neither a v1 freezer hierarchy nor cgroup2");
}

absl::Status Cgroup::Kill() {
  bool killed = false;
  for (const CgroupHierarchy& h : layout_->hierarchies()) {
    const std::string dir = h.mount_point + path_;
    if (h.v2 && CgroupFileExists(dir, "cgroup.kill")) {
      killed = WriteCgroupFile(dir, "cgroup.kill", "1").ok() || killed;
    }
  }
  if (killed) return absl::OkStatus();
  const std::string freezer = DirFor("freezer");
  const bool frozen =
      !freezer.empty() && CgroupFileExists(freezer, "freezer.state") && Freeze().ok();
  absl::StatusOr<std::vector<pid_t>> pids = SubtreePids();
  // Every pid here is in a cgroup Berth made: ours to kill.
  if (pids.ok()) {
    for (pid_t pid : *pids) ::kill(pid, SIGKILL);
  }
  if (frozen) BERTH_RETURN_IF_ERROR(Thaw());  // a frozen task dies on thaw
  return pids.status();
}

absl::Status Cgroup::Destroy() {
  (void)Kill();  // the loop below finishes the job, or says why not
  absl::Time deadline = absl::Now() + kSettleTimeout;
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(std::vector<pid_t> pids, SubtreePids());
    if (pids.empty()) break;
    // Every pid here is in a cgroup Berth made: ours to kill.
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("cgroup ", path_, ": ", pids.size(), " process(es) survive SIGKILL"));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  for (const CgroupHierarchy& h : layout_->hierarchies()) {
    std::vector<std::string> dirs;
    Subtree(h.mount_point + path_, 0, dirs);
    // cgroupfs removes a cgroup with its control files, once its children are gone.
    for (const std::string& dir : dirs) {
      if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "rmdir", dir);
    }
  }
  return absl::OkStatus();
}

}  // namespace berth
