// Real cgroups on this machine (v1 controllers plus a cgroup2 mount holding
// hugetlb), as root. Everything lives under a /berth-test-<random> parent made
// here and removed at the end even when a test fails; the only processes put in
// it are children this test forked.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <tuple>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "os/cgroup/cgroup.h"
#include "os/cgroup/device_filter.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "";
}

// A child that waits for a byte on a pipe, then runs `body` and _exits with its
// result. Forked before it is put in a cgroup, released after.
class Child {
 public:
  explicit Child(int (*body)()) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      char c;
      ::close(fds[1]);
      if (::read(fds[0], &c, 1) != 1) _exit(100);
      _exit(body());
    }
    ::close(fds[0]);
    go_ = fds[1];
  }
  ~Child() {
    if (go_ >= 0) ::close(go_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void Go() {
    EXPECT_EQ(::write(go_, "g", 1), 1);
    ::close(go_);
    go_ = -1;
  }
  int Wait() {  // the raw wait status
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
};

class CgroupRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto layout = CgroupLayout::Detect();
    if (!layout.ok() || layout->mode() == CgroupMode::kUnified) {
      GTEST_SKIP() << "these tests are for v1/hybrid hosts; v2 is covered by cgroup_test fakes";
    }
    layout_ = *layout;
    parent_ = "/berth-test-" + std::to_string(std::random_device()());
  }

  void TearDown() override {
    if (parent_.empty()) return;
    // Whatever a failed test left: kill its processes, remove leaf then parent.
    for (const CgroupHierarchy& h : layout_.hierarchies()) {
      for (const std::string& dir : {h.mount_point + parent_ + "/c", h.mount_point + parent_}) {
        for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) {
          auto procs = ReadFile(dir + "/cgroup.procs");
          if (procs.ok()) {
            for (absl::string_view p : absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
              int pid;
              if (absl::SimpleAtoi(p, &pid)) ::kill(pid, SIGKILL);
            }
          }
          ::usleep(10000);
        }
        EXPECT_NE(::access(dir.c_str(), F_OK), 0) << "left behind: " << dir;
      }
    }
  }

  CgroupLayout layout_;
  std::string parent_;
};

TEST_F(CgroupRootTest, CreateApplyAddFreezeDestroy) {
  auto cg = Cgroup::Create(layout_, parent_ + "/c");
  ASSERT_THAT(cg, IsOk());
  CgroupResources r;
  r.cpu_shares = 256;
  r.cpu_period_us = 100000;
  r.cpu_quota_us = 50000;
  r.cpuset_cpus = "0";
  r.memory_limit = 32 << 20;
  r.memory_swap = 32 << 20;
  r.pids_max = 16;
  r.devices = std::vector<DeviceRule>{{true, 'c', 1, 3, "rwm"}};
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(cg->DirFor("cpu") + "/cpu.shares"), "256");
  EXPECT_EQ(Read(cg->DirFor("cpu") + "/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Read(cg->DirFor("cpuset") + "/cpuset.cpus"), "0");
  EXPECT_EQ(Read(cg->DirFor("memory") + "/memory.limit_in_bytes"), "33554432");
  EXPECT_EQ(Read(cg->DirFor("pids") + "/pids.max"), "16");
  EXPECT_EQ(Read(cg->DirFor("devices") + "/devices.list"), "c 1:3 rwm");

  Child child([] { return ::pause(); });
  ASSERT_THAT(cg->AddProcess(child.pid()), IsOk());
  auto pids = cg->Pids();
  ASSERT_THAT(pids, IsOk());
  EXPECT_THAT(*pids, ::testing::ElementsAre(child.pid()));
  std::string self_cgroup = Read("/proc/" + std::to_string(child.pid()) + "/cgroup");
  EXPECT_THAT(self_cgroup, HasSubstr(":memory:" + parent_ + "/c"));
  // Absolute from the hierarchy root, not below the test's own memory cgroup.
  EXPECT_EQ(cg->DirFor("memory"), layout_.Find("memory")->mount_point + parent_ + "/c");

  ASSERT_THAT(cg->Freeze(), IsOk());
  EXPECT_EQ(Read(cg->DirFor("freezer") + "/freezer.state"), "FROZEN");
  ASSERT_THAT(cg->Thaw(), IsOk());

  ASSERT_THAT(cg->Destroy(), IsOk());  // kills the child, removes the dirs
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (const CgroupHierarchy& h : layout_.hierarchies()) {
    EXPECT_NE(::access((h.mount_point + parent_ + "/c").c_str(), F_OK), 0);
  }
  EXPECT_THAT(cg->Destroy(), IsOk());  // idempotent
}

TEST_F(CgroupRootTest, ACpusetDirItMadeHandsItsCpusToChildrenTheKernelMakes) {
  ASSERT_THAT(Cgroup::Create(layout_, parent_), IsOk());
  const CgroupHierarchy* cpuset = layout_.Find("cpuset");
  if (cpuset == nullptr || cpuset->v2) GTEST_SKIP() << "no v1 cpuset hierarchy";
  const std::string dir = cpuset->mount_point + parent_;
  EXPECT_EQ(Read(dir + "/cgroup.clone_children"), "1");
  // A child made by a bare mkdir has the cpus and mems without anyone writing
  // them (and so without the scheduler-domain rebuild a write costs).
  ASSERT_EQ(::mkdir((dir + "/c").c_str(), 0755), 0);
  EXPECT_EQ(Read(dir + "/c/cpuset.cpus"), Read(cpuset->mount_point + "/cpuset.cpus"));
  EXPECT_EQ(Read(dir + "/c/cpuset.mems"), Read(cpuset->mount_point + "/cpuset.mems"));
}

TEST_F(CgroupRootTest, AnEmptyCpusetParentAnotherCreateMadeIsFilledFirst) {
  const CgroupHierarchy* cpuset = layout_.Find("cpuset");
  if (cpuset == nullptr || cpuset->v2) GTEST_SKIP() << "no v1 cpuset hierarchy";
  // As a concurrent Create leaves it between its mkdir and its writes.
  const std::string dir = cpuset->mount_point + parent_;
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(Read(dir + "/cpuset.cpus"), "");
  auto cg = Cgroup::Create(layout_, parent_ + "/c");
  ASSERT_THAT(cg, IsOk());
  EXPECT_EQ(Read(dir + "/cpuset.cpus"), Read(cpuset->mount_point + "/cpuset.cpus"));
  EXPECT_EQ(Read(dir + "/c/cpuset.mems"), Read(cpuset->mount_point + "/cpuset.mems"));
  Child child([] { return ::pause(); });
  EXPECT_THAT(cg->AddProcess(child.pid()), IsOk());  // ENOSPC with an empty cpuset
  ::kill(child.pid(), SIGKILL);
  child.Wait();
  EXPECT_THAT(cg->Destroy(), IsOk());
}

TEST_F(CgroupRootTest, PidsLimitStopsFork) {
  auto cg = Cgroup::Create(layout_, parent_ + "/c");
  ASSERT_THAT(cg, IsOk());
  CgroupResources r;
  r.pids_max = 1;
  ASSERT_THAT(cg->Apply(r), IsOk());
  Child child([] {
    pid_t p = ::fork();
    if (p == 0) _exit(0);
    return p < 0 && errno == EAGAIN ? 0 : 1;  // 0: the fork was refused
  });
  ASSERT_THAT(cg->AddProcess(child.pid()), IsOk());
  child.Go();
  int status = child.Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "fork succeeded despite pids.max=1";
  EXPECT_THAT(cg->Destroy(), IsOk());
}

// A fork bomb racing the kills: Destroy freezes first (v1) or uses
// cgroup.kill (v2), so one pass empties the cgroup.
TEST_F(CgroupRootTest, DestroyEndsAForkBomb) {
  auto cg = Cgroup::Create(layout_, parent_ + "/c");
  ASSERT_THAT(cg, IsOk());
  CgroupResources r;
  r.pids_max = 256;
  ASSERT_THAT(cg->Apply(r), IsOk());
  Child child([] {
    for (;;) {
      if (::fork() < 0) ::usleep(100);
    }
    return 0;
  });
  ASSERT_THAT(cg->AddProcess(child.pid()), IsOk());
  child.Go();
  ::usleep(200000);
  auto pids = cg->Pids();
  ASSERT_THAT(pids, IsOk());
  EXPECT_GT(pids->size(), 10u);
  EXPECT_THAT(cg->Destroy(), IsOk());
  child.Wait();
  for (const CgroupHierarchy& h : layout_.hierarchies()) {
    EXPECT_NE(::access((h.mount_point + parent_ + "/c").c_str(), F_OK), 0);
  }
}

// A container that made cgroups of its own (a privileged one may): Destroy
// kills their processes too and removes them, deepest first.
TEST_F(CgroupRootTest, DestroyRemovesChildCgroupsAContainerMade) {
  auto cg = Cgroup::Create(layout_, parent_ + "/c");
  ASSERT_THAT(cg, IsOk());
  Child child([] { return ::pause(); });
  for (const CgroupHierarchy& h : layout_.hierarchies()) {
    const std::string nested = h.mount_point + parent_ + "/c/inner/deeper";
    ASSERT_EQ(::mkdir((h.mount_point + parent_ + "/c/inner").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(nested.c_str(), 0755), 0);
    if (!h.v2 && HasController(h, "cpuset")) {
      for (const std::string& d : {h.mount_point + parent_ + "/c/inner", nested}) {
        for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
          (void)WriteCgroupFile(d, f, Read(h.mount_point + "/" + f));
        }
      }
    }
    ASSERT_THAT(WriteCgroupFile(nested, "cgroup.procs", std::to_string(child.pid())), IsOk())
        << nested;
  }
  EXPECT_THAT(cg->Destroy(), IsOk());
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (const CgroupHierarchy& h : layout_.hierarchies()) {
    EXPECT_NE(::access((h.mount_point + parent_ + "/c").c_str(), F_OK), 0);
  }
}

TEST_F(CgroupRootTest, MemoryLimitOomKills) {
  auto cg = Cgroup::Create(layout_, parent_ + "/c");
  ASSERT_THAT(cg, IsOk());
  CgroupResources r;
  r.memory_limit = 16 << 20;
  r.memory_swap = 16 << 20;  // no swap to escape to
  ASSERT_THAT(cg->Apply(r), IsOk());
  Child child([] {
    const size_t size = 64 << 20;
    // volatile: the stores must happen, or the compiler drops the allocation.
    volatile char* p = static_cast<volatile char*>(std::malloc(size));
    for (size_t i = 0; p != nullptr && i < size; i += 4096) p[i] = 1;  // touch every page
    return 0;
  });
  ASSERT_THAT(cg->AddProcess(child.pid()), IsOk());
  child.Go();
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  EXPECT_THAT(Read(cg->DirFor("memory") + "/memory.oom_control"), HasSubstr("oom_kill 1"));
  EXPECT_THAT(cg->Destroy(), IsOk());
}

TEST_F(CgroupRootTest, HybridHugetlbNotDelegatedIsNamed) {
  const CgroupHierarchy* huge = layout_.Find("hugetlb");
  if (huge == nullptr || !huge->v2) GTEST_SKIP() << "hugetlb is not on cgroup2 here";
  auto cg = Cgroup::Create(layout_, parent_ + "/c");
  ASSERT_THAT(cg, IsOk());
  CgroupResources r;
  r.hugetlb_limits["2MB"] = 2 << 20;
  absl::Status s = cg->Apply(r);
  std::string root_subtree = Read(huge->mount_point + "/cgroup.subtree_control");
  if (absl::StrContains(root_subtree, "hugetlb")) {
    EXPECT_THAT(s, IsOk());
  } else {
    // The host's root does not delegate hugetlb and Berth never writes to a
    // cgroup it did not create: the error says what is missing.
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr("subtree_control lacks `hugetlb`")));
  }
  EXPECT_THAT(cg->Destroy(), IsOk());
}

// What a pure v2 host does with device rules, here on this host's cgroup2
// mount (the v1 devices controller leaves these children alone: they stay in
// its root): the kernel runs Berth's eBPF program on every open and mknod.
TEST_F(CgroupRootTest, OnCgroup2DeviceRulesBecomeAnEbpfFilterTheKernelEnforces) {
  const CgroupHierarchy* v2 = nullptr;
  for (const CgroupHierarchy& h : layout_.hierarchies()) {
    if (h.v2) v2 = &h;
  }
  if (v2 == nullptr) GTEST_SKIP() << "no cgroup2 mount here";
  // The layout of a host whose only hierarchy is this cgroup2 mount.
  auto only_v2 = CgroupLayout::FromHierarchies({*v2});
  ASSERT_THAT(only_v2, IsOk());
  auto cg = Cgroup::Create(*only_v2, parent_ + "/c");
  ASSERT_THAT(cg, IsOk());
  const std::string dir = v2->mount_point + parent_ + "/c";
  // /dev/null (c 1:3) is allowed; /dev/kmsg (c 1:11) is not, until a rule says so.
  CgroupResources r;
  r.devices = std::vector<DeviceRule>{{true, 'c', 1, 3, "rwm"}};
  ASSERT_THAT(cg->Apply(r), IsOk());
  auto first = AttachedDevicePrograms(dir);
  ASSERT_THAT(first, IsOk());
  ASSERT_EQ(first->size(), 1u);

  // Bit 0: /dev/null opened rw; bit 1: /dev/kmsg opened read-only; bit 2:
  // /dev/kmsg opened write-only.
  auto opens = [] {
    int result = 0;
    for (auto [bit, path, flags] :
         {std::tuple{1, "/dev/null", O_RDWR}, std::tuple{2, "/dev/kmsg", O_RDONLY | O_NONBLOCK},
          std::tuple{4, "/dev/kmsg", O_WRONLY}}) {
      int fd = ::open(path, flags | O_CLOEXEC);
      if (fd >= 0) {
        result |= bit;
        ::close(fd);
      } else if (errno != EPERM) {
        return 100 + errno;
      }
    }
    return result;
  };
  {
    Child child(+opens);
    ASSERT_THAT(WriteCgroupFile(dir, "cgroup.procs", std::to_string(child.pid())), IsOk());
    child.Go();
    int status = child.Wait();
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1) << "only /dev/null may open";
  }
  // Replaced, not added to: one program, which now lets /dev/kmsg be read.
  r.devices->push_back({true, 'c', 1, 11, "r"});
  ASSERT_THAT(cg->Apply(r), IsOk());
  auto second = AttachedDevicePrograms(dir);
  ASSERT_THAT(second, IsOk());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_NE((*second)[0], (*first)[0]);
  {
    Child child(+opens);
    ASSERT_THAT(WriteCgroupFile(dir, "cgroup.procs", std::to_string(child.pid())), IsOk());
    child.Go();
    int status = child.Wait();
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 3) << "/dev/null, and /dev/kmsg for reading only";
  }
  EXPECT_THAT(cg->Destroy(), IsOk());
}

}  // namespace
}  // namespace berth
