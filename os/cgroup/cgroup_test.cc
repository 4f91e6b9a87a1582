// Cgroup on fake cgroupfs trees in temp dirs (youki's way): v1, v2 and hybrid.
// The kernel is not there to make control files or to check values, so each test
// lays down the files the kernel would have and reads back what was written.
// Paths covered only here (not by cgroup_root_test on this v1/hybrid machine):
// every v2 write, v2 subtree_control delegation, v2 freeze.
#include "os/cgroup/cgroup.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include "absl/strings/strip.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text))
                   : "<" + text.status().ToString() + ">";
}

// A v1 machine: one dir per controller, root files as the kernel has them.
class FakeV1 {
 public:
  FakeV1() {
    std::string mountinfo;
    int id = 30;
    for (const char* c : {"cpu", "cpuset", "memory", "pids", "blkio", "devices", "freezer"}) {
      std::string dir = root_.Join(c);
      EXPECT_THAT(MakeDirs(dir, 0755), IsOk());
      mountinfo += std::to_string(id++) + " 25 0:1 / /" + c + " rw - cgroup cgroup rw," + c + "\n";
    }
    WriteFileOrDie(root_.Join("cpuset/cpuset.cpus"), "0-3\n");
    WriteFileOrDie(root_.Join("cpuset/cpuset.mems"), "0\n");
    layout_ = *CgroupLayout::FromMountInfo(mountinfo, root_.path());
  }
  std::string Dir(const std::string& controller, const std::string& path) {
    return root_.path() + "/" + controller + path;
  }
  // Optional files the kernel makes in a new cgroup dir on this fake machine.
  void KernelFiles(const std::string& path) {
    WriteFileOrDie(Dir("memory", path) + "/memory.memsw.limit_in_bytes", "9223372036854771712");
    WriteFileOrDie(Dir("blkio", path) + "/blkio.weight", "500");
  }
  const CgroupLayout& layout() { return layout_; }

 private:
  TempDir root_;
  CgroupLayout layout_;
};

TEST(CgroupPathTest, MustBeAbsoluteWithoutDotDot) {
  EXPECT_THAT(CheckCgroupPath("/berth/abc"), IsOk());
  for (const char* bad : {"", "berth/abc", "/berth/../etc", "/berth//x", "/berth/./x", "/"}) {
    EXPECT_THAT(CheckCgroupPath(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(CgroupV1Test, EmptyCpusetLevelsAreFilledTopDown) {
  FakeV1 fake;
  // Another Create made /berth and has not filled its cpuset yet (the kernel
  // shows a new dir's cpuset.cpus and cpuset.mems empty).
  ASSERT_THAT(MakeDirs(fake.Dir("cpuset", "/berth"), 0755), IsOk());
  WriteFileOrDie(fake.Dir("cpuset", "/berth/cpuset.cpus"), "\n");
  WriteFileOrDie(fake.Dir("cpuset", "/berth/cpuset.mems"), "\n");
  ASSERT_THAT(Cgroup::Create(fake.layout(), "/berth/pod/c1"), IsOk());
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/pod/cpuset.cpus")), "0-3");
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/pod/cpuset.mems")), "0");
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/pod/c1/cpuset.cpus")), "0-3");
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/pod/cgroup.clone_children")), "1");
  // Filled first: the kernel takes a child's only within its parent's.
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/cpuset.cpus")), "0-3");
}

TEST(CgroupV1Test, CreateInheritsCpusetAndApplyWritesEachFile) {
  FakeV1 fake;
  auto cg = Cgroup::Create(fake.layout(), "/berth/c1");
  ASSERT_THAT(cg, IsOk());
  fake.KernelFiles("/berth/c1");
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/cpuset.cpus")), "0-3");  // both new levels
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/c1/cpuset.cpus")), "0-3");
  EXPECT_EQ(cg->DirFor("memory"), fake.Dir("memory", "/berth/c1"));

  CgroupResources r;
  r.cpu_shares = 512;
  r.cpu_quota_us = 50000;
  r.cpu_period_us = 100000;
  r.cpuset_cpus = "1";
  r.memory_limit = 64 << 20;
  r.memory_swap = 128 << 20;
  r.pids_max = 42;
  r.blkio_weight = 300;
  r.devices = std::vector<DeviceRule>{{true, 'c', 1, 3, "rwm"}, {true, 'c', 136, -1, "rw"}};
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(fake.Dir("cpu", "/berth/c1/cpu.shares")), "512");
  EXPECT_EQ(Read(fake.Dir("cpu", "/berth/c1/cpu.cfs_quota_us")), "50000");
  EXPECT_EQ(Read(fake.Dir("cpu", "/berth/c1/cpu.cfs_period_us")), "100000");
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/c1/cpuset.cpus")), "1");
  EXPECT_EQ(Read(fake.Dir("cpuset", "/berth/c1/cpuset.mems")), "0");  // inherited
  EXPECT_EQ(Read(fake.Dir("memory", "/berth/c1/memory.limit_in_bytes")), "67108864");
  EXPECT_EQ(Read(fake.Dir("memory", "/berth/c1/memory.memsw.limit_in_bytes")), "134217728");
  EXPECT_EQ(Read(fake.Dir("pids", "/berth/c1/pids.max")), "42");
  EXPECT_EQ(Read(fake.Dir("blkio", "/berth/c1/blkio.weight")), "300");
  // Last write wins in a fake file: the final rule.
  EXPECT_EQ(Read(fake.Dir("devices", "/berth/c1/devices.deny")), "a");
  EXPECT_EQ(Read(fake.Dir("devices", "/berth/c1/devices.allow")), "c 136:* rw");
}

TEST(CgroupV1Test, UnlimitedPidsAndMissingFeaturesAreClear) {
  FakeV1 fake;
  auto cg = Cgroup::Create(fake.layout(), "/x");
  ASSERT_THAT(cg, IsOk());
  CgroupResources r;
  r.pids_max = -1;
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(fake.Dir("pids", "/x/pids.max")), "max");
  CgroupResources swap;
  swap.memory_limit = 1 << 20;
  swap.memory_swap = 2 << 20;  // no memory.memsw.* in /x
  EXPECT_THAT(cg->Apply(swap),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("swapaccount=1")));
  CgroupResources weight;
  weight.blkio_weight = 100;
  EXPECT_THAT(cg->Apply(weight),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("blkio.bfq.weight")));
  CgroupResources huge;
  huge.hugetlb_limits["2MB"] = 4 << 20;  // no hugetlb hierarchy at all
  EXPECT_THAT(cg->Apply(huge),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("hugetlb")));
}

// A pure v2 machine.
class FakeV2 {
 public:
  FakeV2() {
    WriteFileOrDie(root_.Join("cgroup.controllers"), "cpuset cpu io memory hugetlb pids\n");
    WriteFileOrDie(root_.Join("cgroup.subtree_control"), "cpuset cpu io memory hugetlb pids\n");
    layout_ =
        *CgroupLayout::FromMountInfo("25 21 0:22 / / rw - cgroup2 cgroup2 rw\n", root_.path());
  }
  std::string Dir(const std::string& path) { return root_.path() + path; }
  const CgroupLayout& layout() { return layout_; }

 private:
  TempDir root_;
  CgroupLayout layout_;
};

TEST(CgroupV2Test, CreateDelegatesControllersToLevelsItMakes) {
  FakeV2 fake;
  auto cg = Cgroup::Create(fake.layout(), "/berth/pod/c1");
  ASSERT_THAT(cg, IsOk());
  EXPECT_EQ(Read(fake.Dir("/berth/cgroup.subtree_control")),
            "+cpuset +cpu +io +memory +hugetlb +pids");
  EXPECT_EQ(Read(fake.Dir("/berth/pod/cgroup.subtree_control")),
            "+cpuset +cpu +io +memory +hugetlb +pids");
  // The leaf gets no subtree_control: processes live there (no internal processes rule).
  EXPECT_THAT(ReadFile(fake.Dir("/berth/pod/c1/cgroup.subtree_control")),
              StatusIs(absl::StatusCode::kNotFound));
}

// What broke on a real v2 guest: RunPodSandbox made the pod cgroup as a leaf,
// the container's Create found it existing and left it alone, and the
// container's cgroup had no cpu.max.
TEST(CgroupV2Test, APodCgroupMadeForChildrenHandsItsControllersToItsContainers) {
  FakeV2 fake;
  ASSERT_THAT(Cgroup::Create(fake.layout(), "/berth/pod", /*for_children=*/true), IsOk());
  EXPECT_EQ(Read(fake.Dir("/berth/pod/cgroup.subtree_control")),
            "+cpuset +cpu +io +memory +hugetlb +pids");
  ASSERT_THAT(Cgroup::Create(fake.layout(), "/berth/pod/c1"), IsOk());
  EXPECT_THAT(ReadFile(fake.Dir("/berth/pod/c1/cgroup.subtree_control")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(CgroupV2Test, ARootThatDoesNotDelegateWhatContainersNeedIsAProblem) {
  FakeV2 fake;
  EXPECT_THAT(CgroupProblems(fake.layout(), "/berth"), ::testing::IsEmpty());
  // As on a host whose manager enabled only some controllers for its children.
  WriteFileOrDie(fake.Dir("/cgroup.subtree_control"), "cpuset io memory\n");
  std::vector<std::string> problems = CgroupProblems(fake.layout(), "/berth/pods");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_THAT(problems[0], HasSubstr("does not delegate the cpu controller"));
  EXPECT_THAT(problems[1], HasSubstr("does not delegate the pids controller"));
  // A level that exists is what hands controllers down to the levels below.
  ASSERT_THAT(MakeDirs(fake.Dir("/berth"), 0755), IsOk());
  WriteFileOrDie(fake.Dir("/berth/cgroup.subtree_control"), "cpu memory pids\n");
  EXPECT_THAT(CgroupProblems(fake.layout(), "/berth/pods"), ::testing::IsEmpty());
}

TEST(CgroupV1Test, AMissingControllerIsAProblem) {
  TempDir root;
  ASSERT_THAT(MakeDirs(root.Join("memory"), 0755), IsOk());
  auto layout = CgroupLayout::FromMountInfo("35 31 0:32 / /memory rw - cgroup cgroup rw,memory\n",
                                            root.path());
  ASSERT_THAT(layout, IsOk());
  EXPECT_THAT(
      CgroupProblems(*layout, "/berth"),
      ::testing::ElementsAre(HasSubstr("the cpu controller"), HasSubstr("the pids controller")));
}

TEST(CgroupV1Test, FailedCreateRemovesWhatItMade) {
  TempDir root;
  ASSERT_THAT(MakeDirs(root.Join("memory"), 0755), IsOk());
  ASSERT_THAT(MakeDirs(root.Join("cpuset"), 0755), IsOk());
  // The cpuset root has no cpuset.cpus to inherit: Create fails in the second
  // hierarchy, after making dirs in the first.
  auto layout = CgroupLayout::FromMountInfo(
      "35 31 0:32 / /memory rw - cgroup cgroup rw,memory\n"
      "34 31 0:31 / /cpuset rw - cgroup cgroup rw,cpuset\n",
      root.path());
  ASSERT_THAT(layout, IsOk());
  EXPECT_THAT(Cgroup::Create(*layout, "/berth/c"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cpuset")));
  EXPECT_NE(::access(root.Join("memory/berth/c").c_str(), F_OK), 0);
  EXPECT_NE(::access(root.Join("memory/berth").c_str(), F_OK), 0);
  EXPECT_NE(::access(root.Join("cpuset/berth").c_str(), F_OK), 0);
}

TEST(CgroupV2Test, ApplyWritesV2Files) {
  FakeV2 fake;
  ASSERT_THAT(MakeDirs(fake.Dir("/c"), 0755), IsOk());
  for (const char* f : {"cpu.weight", "cpu.max", "memory.max", "memory.swap.max", "pids.max",
                        "io.weight", "hugetlb.2MB.max"}) {
    WriteFileOrDie(fake.Dir("/c/") + f, "");
  }
  auto cg = Cgroup::Open(fake.layout(), "/c");
  CgroupResources r;
  r.cpu_shares = 1024;
  r.cpu_quota_us = 25000;
  r.memory_limit = 100 << 20;
  r.memory_swap = 150 << 20;
  r.pids_max = -1;
  r.blkio_weight = 1000;
  r.cpuset_mems = "0";
  r.hugetlb_limits["2MB"] = 8 << 20;
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(fake.Dir("/c/cpu.weight")), "39");
  EXPECT_EQ(Read(fake.Dir("/c/cpu.max")), "25000 100000");
  EXPECT_EQ(Read(fake.Dir("/c/memory.max")), "104857600");
  EXPECT_EQ(Read(fake.Dir("/c/memory.swap.max")), "52428800");  // swap alone
  EXPECT_EQ(Read(fake.Dir("/c/pids.max")), "max");
  EXPECT_EQ(Read(fake.Dir("/c/io.weight")), "default 10000");
  EXPECT_EQ(Read(fake.Dir("/c/cpuset.mems")), "0");
  EXPECT_EQ(Read(fake.Dir("/c/hugetlb.2MB.max")), "8388608");
}

TEST(CgroupV2Test, SwapAloneNeedsNoMemoryLimit) {
  // kubelet's NoSwap on cgroup v2: memory.swap.max=0 for every container,
  // most without a memory limit.
  FakeV2 fake;
  ASSERT_THAT(MakeDirs(fake.Dir("/c"), 0755), IsOk());
  for (const char* f : {"memory.max", "memory.swap.max"}) WriteFileOrDie(fake.Dir("/c/") + f, "");
  auto cg = Cgroup::Open(fake.layout(), "/c");
  CgroupResources r;
  r.swap_max = 0;
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(fake.Dir("/c/memory.swap.max")), "0");
  EXPECT_EQ(Read(fake.Dir("/c/memory.max")), "");  // untouched
  r.swap_max = -1;
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(fake.Dir("/c/memory.swap.max")), "max");
  r.memory_swap = 1 << 20;
  EXPECT_THAT(cg->Apply(r), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("both set")));
  ASSERT_EQ(unlink(fake.Dir("/c/memory.swap.max").c_str()), 0);
  CgroupResources no_accounting;
  no_accounting.swap_max = 0;
  EXPECT_THAT(cg->Apply(no_accounting), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                 HasSubstr("memory.swap.max is missing")));
}

TEST(CgroupV1Test, SwapAloneBecomesMemoryPlusSwap) {
  FakeV1 fake;
  auto cg = Cgroup::Create(fake.layout(), "/c");
  ASSERT_THAT(cg, IsOk());
  fake.KernelFiles("/c");
  CgroupResources r;
  r.memory_limit = 64 << 20;
  r.swap_max = 16 << 20;
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(fake.Dir("memory", "/c/memory.limit_in_bytes")), "67108864");
  EXPECT_EQ(Read(fake.Dir("memory", "/c/memory.memsw.limit_in_bytes")), "83886080");
  CgroupResources alone;
  alone.swap_max = 0;
  EXPECT_THAT(cg->Apply(alone), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("needs a memory limit on cgroup v1")));
}

TEST(CgroupV2Test, BadDeviceRulesAndUndelegatedControllersAreNamed) {
  FakeV2 fake;
  ASSERT_THAT(MakeDirs(fake.Dir("/c"), 0755), IsOk());
  auto cg = Cgroup::Open(fake.layout(), "/c");
  CgroupResources devices;
  devices.devices = std::vector<DeviceRule>{{true, 'x', 1, 3, "rwm"}};
  EXPECT_THAT(cg->Apply(devices),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("type `x` is not a, b or c")));
  devices.devices = std::vector<DeviceRule>{{true, 'c', 1, 3, "rwx"}};
  EXPECT_THAT(cg->Apply(devices),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("access `rwx`")));
  CgroupResources mem;
  mem.memory_limit = 1 << 20;  // no memory.max: memory not delegated to /c
  EXPECT_THAT(cg->Apply(mem), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("subtree_control lacks `memory`")));
  CgroupResources swap;
  swap.memory_swap = 1 << 20;
  WriteFileOrDie(fake.Dir("/c/memory.swap.max"), "");
  EXPECT_THAT(cg->Apply(swap), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CgroupV2Test, UnifiedFilesAreWrittenWhereTheKernelHasThem) {
  FakeV2 fake;
  ASSERT_THAT(MakeDirs(fake.Dir("/c"), 0755), IsOk());
  WriteFileOrDie(fake.Dir("/c/memory.high"), "max");
  auto cg = Cgroup::Open(fake.layout(), "/c");
  CgroupResources r;
  r.unified["memory.high"] = "1073741824";
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(fake.Dir("/c/memory.high")), "1073741824");
  r.unified["memory.nosuch"] = "1";
  EXPECT_THAT(cg->Apply(r), StatusIs(absl::StatusCode::kFailedPrecondition,
                                     HasSubstr("unified[memory.nosuch]: this kernel has no")));
  CgroupResources v1only;
  v1only.unified["blkio.weight"] = "100";
  EXPECT_THAT(cg->Apply(v1only),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("unified[blkio.weight]: no cgroup v2 hierarchy here has the "
                                 "`blkio` controller")));
}

TEST(CgroupV2Test, FreezeWaitsForTheKernelsWord) {
  FakeV2 fake;
  ASSERT_THAT(MakeDirs(fake.Dir("/c"), 0755), IsOk());
  WriteFileOrDie(fake.Dir("/c/cgroup.events"), "populated 1\nfrozen 1\n");
  auto cg = Cgroup::Open(fake.layout(), "/c");
  ASSERT_THAT(cg->Freeze(), IsOk());
  EXPECT_EQ(Read(fake.Dir("/c/cgroup.freeze")), "1");
  ASSERT_THAT(cg->Thaw(), IsOk());
  EXPECT_EQ(Read(fake.Dir("/c/cgroup.freeze")), "0");
}

TEST(CgroupHybridTest, HugetlbGoesToCgroup2AndMemoryToV1) {
  TempDir root;
  ASSERT_THAT(MakeDirs(root.Join("memory/c"), 0755), IsOk());
  ASSERT_THAT(MakeDirs(root.Join("unified/c"), 0755), IsOk());
  WriteFileOrDie(root.Join("unified/cgroup.controllers"), "hugetlb\n");
  WriteFileOrDie(root.Join("unified/c/hugetlb.2MB.max"), "max");
  auto layout = CgroupLayout::FromMountInfo(
      "35 31 0:32 / /memory rw - cgroup cgroup rw,memory\n"
      "41 31 0:38 / /unified rw - cgroup2 cgroup2 rw\n",
      root.path());
  ASSERT_THAT(layout, IsOk());
  auto cg = Cgroup::Open(*layout, "/c");
  CgroupResources r;
  r.memory_limit = 1 << 20;
  r.hugetlb_limits["2MB"] = 2 << 20;
  ASSERT_THAT(cg->Apply(r), IsOk());
  EXPECT_EQ(Read(root.Join("memory/c/memory.limit_in_bytes")), "1048576");
  EXPECT_EQ(Read(root.Join("unified/c/hugetlb.2MB.max")), "2097152");
  EXPECT_THAT(ReadFile(root.Join("unified/c/memory.max")), StatusIs(absl::StatusCode::kNotFound));
}

TEST(CpuSharesToWeightTest, LinearMap) {
  EXPECT_EQ(CpuSharesToWeight(2), 1u);
  EXPECT_EQ(CpuSharesToWeight(1024), 39u);
  EXPECT_EQ(CpuSharesToWeight(262144), 10000u);
  EXPECT_EQ(CpuSharesToWeight(0), 1u);
  EXPECT_EQ(CpuSharesToWeight(1u << 30), 10000u);
}

}  // namespace
}  // namespace berth
