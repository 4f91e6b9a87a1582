#include "shim/testing/shim_fixture.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "os/cgroup/cgroup.h"
#include "os/files.h"
#include "shim/cri_log.h"

namespace berth::shim::testing {

ProbeOutput ParseProbe(absl::string_view text) {
  ProbeOutput out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    out.emplace(kv.first, kv.second);
  }
  return out;
}

std::string One(const ProbeOutput& out, const std::string& key) {
  auto it = out.find(key);
  return it == out.end() ? "<missing " + key + ">" : it->second;
}

void ShimTest::SetUp() {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  dir_ = std::make_unique<berth::testing::TempDir>();
  rootfs_ = dir_->Join("rootfs");
  // Traversable by a user namespace's mapped root, as /run/berth would be.
  ASSERT_EQ(chmod(dir_->path().c_str(), 0711), 0);
  ASSERT_EQ(
      system(absl::StrCat("set -e; mkdir -p ", rootfs_, "/bin ", rootfs_, "/tmp; cp /bin/busybox ",
                          BERTH_PROBE_PATH, " ", rootfs_, "/bin/; cd ", rootfs_,
                          "/bin; mv berth-probe probe; for a in $(./busybox --list); do ",
                          "[ -e $a ] || ln -s busybox $a; done")
                 .c_str()),
      0);
  absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
  ASSERT_TRUE(layout.ok()) << layout.status();
  layout_ = *layout;
  std::random_device rd;
  cgroup_parent_ = absl::StrCat("/berth-test-", rd() % 1000000);
}

void ShimTest::TearDown() {
  for (const LaunchedShim& s : shims_) {
    (void)CallShim(s.socket, DeleteRequest());
    kill(s.shim_pid, SIGKILL);
    waitpid(s.shim_pid, nullptr, 0);
  }
  // Containers whose shim was killed: their cgroups still hold them.
  absl::StatusOr<Cgroup> parent = Cgroup::Open(layout_, cgroup_parent_);
  if (parent.ok()) {
    for (const char* c : {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}) {
      absl::StatusOr<Cgroup> child = Cgroup::Open(layout_, cgroup_parent_ + "/" + std::string(c));
      if (child.ok()) (void)child->Destroy();
    }
    EXPECT_TRUE(parent->Destroy().ok());
  }
  // Reap whatever was reparented to us.
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  for (const CgroupHierarchy& h : layout_.hierarchies()) {
    struct stat st;
    EXPECT_NE(stat((h.mount_point + cgroup_parent_).c_str(), &st), 0)
        << "left behind: " << h.mount_point << cgroup_parent_;
  }
  dir_.reset();
}

v1::ContainerSpec ShimTest::Spec(const std::vector<std::string>& args, bool cgroup) {
  v1::ContainerSpec spec = DefaultSpec(absl::StrCat("c", next_), rootfs_, args);
  if (cgroup) spec.set_cgroup_path(CgroupPath(absl::StrCat("c", next_)));
  return spec;
}

absl::StatusOr<LaunchedShim> ShimTest::Launch(const v1::ContainerSpec& in) {
  v1::ContainerSpec spec = in;
  const std::string bundle = dir_->Join(absl::StrCat("b", next_++));
  mkdir(bundle.c_str(), 0700);
  spec.set_log_path(bundle + "/ctr.log");
  absl::StatusOr<LaunchedShim> shim = LaunchShim(BERTH_SHIM_PATH, bundle, spec);
  if (shim.ok()) shims_.push_back(*shim);
  return shim;
}

v1::ExitStatus ShimTest::RunToExit(const LaunchedShim& shim) {
  absl::StatusOr<v1::Response> r = Call(shim, StartRequest());
  EXPECT_TRUE(r.ok()) << r.status();
  r = Call(shim, WaitRequest());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->exit() : v1::ExitStatus();
}

std::string ShimTest::LogText(const LaunchedShim& shim) {
  absl::StatusOr<std::string> text = ReadFile(LogPath(shim));
  if (!text.ok()) return "";
  std::string out;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    absl::StatusOr<CriLogRecord> rec = ParseCriLogLine(line);
    EXPECT_TRUE(rec.ok()) << rec.status() << " in `" << line << "`";
    if (!rec.ok()) continue;
    absl::StrAppend(&out, rec->content, rec->partial ? "" : "\n");
  }
  return out;
}

std::string ShimTest::CgroupDir(const std::string& controller, const std::string& name) const {
  const CgroupHierarchy* h = layout_.Find(controller);
  return h == nullptr ? "" : h->mount_point + CgroupPath(name);
}

}  // namespace berth::shim::testing
