// Sampler on a fake v2 tree and a fake /proc; MeasureDir on a real temp dir.
#include "metrics/sampler.h"

#include <fcntl.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/fake_cgroupfs.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::metrics {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A file of `kb` KiB of real (non-sparse) data.
void WriteKb(const std::string& path, int kb) { WriteFileOrDie(path, std::string(kb * 1024, 'x')); }

TEST(MeasureDirTest, CountsBlocksAndInodesOnceForHardLinks) {
  TempDir d;
  ASSERT_THAT(MakeDirs(d.Join("a/b"), 0755), IsOk());
  WriteKb(d.Join("a/b/f"), 64);
  WriteKb(d.Join("g"), 64);
  ASSERT_EQ(::link(d.Join("g").c_str(), d.Join("a/g2").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", d.Join("s").c_str()), 0);
  auto u = MeasureDir(d.path(), 1000);
  ASSERT_THAT(u, IsOk());
  // root, a, a/b, a/b/f, g (= a/g2), s
  EXPECT_EQ(u->inodes, 6u);
  EXPECT_GE(u->bytes, 128u * 1024);
  EXPECT_LT(u->bytes, 256u * 1024);  // the link target of s is not followed
  EXPECT_FALSE(u->truncated);
}

TEST(MeasureDirTest, StopsAtMaxEntries) {
  TempDir d;
  for (int i = 0; i < 20; ++i) WriteFileOrDie(d.Join("f" + std::to_string(i)), "x");
  auto u = MeasureDir(d.path(), 5);
  ASSERT_THAT(u, IsOk());
  EXPECT_TRUE(u->truncated);
  EXPECT_LE(u->inodes, 6u);
}

TEST(MeasureDirTest, MissingDirIsNotFound) {
  EXPECT_THAT(MeasureDir("/nonexistent/berth", 10), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ParseNofileSoftTest, Values) {
  constexpr char kLimits[] =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max cpu time              unlimited            unlimited            seconds   \n"
      "Max open files            1024                 524288               files     \n";
  EXPECT_EQ(*ParseNofileSoft(kLimits), 1024u);
  EXPECT_EQ(*ParseNofileSoft("Max open files            unlimited            unlimited  files\n"),
            kUnlimited);
  EXPECT_FALSE(ParseNofileSoft("Max cpu time 1 1 seconds\n").ok());
}

class SamplerTest : public ::testing::Test {
 protected:
  SamplerTest() {
    FakeProcess(proc_, 1576, "3", {"/dev/null", "socket:[1]"});
    WriteFileOrDie(proc_.Join("1576/limits"), "Max open files  4096  4096  files\n");
    // 1580 (also in cgroup.procs) has exited.
  }
  Sampler MakeSampler(absl::Duration ttl = absl::Seconds(15)) {
    return Sampler(tree_.layout(),
                   {.proc_root = proc_.path(), .sys_root = sys_.path(), .fs_ttl = ttl});
  }
  V2Tree tree_;
  TempDir proc_;
  TempDir sys_;
  TempDir upper_;
};

TEST_F(SamplerTest, ContainerReadsCgroupProcessesAndLayer) {
  ASSERT_THAT(MakeDirs(sys_.Join("dev/block/8:16"), 0755), IsOk());
  WriteFileOrDie(sys_.Join("dev/block/8:16/uevent"), "MAJOR=8\nMINOR=16\nDEVNAME=sdb\n");
  WriteKb(upper_.Join("data"), 8);
  Sampler sampler = MakeSampler();
  auto s = sampler.Sample({.cgroup_path = kCgroup, .upper_dir = upper_.path()});
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(s->cgroup.errors, IsEmpty());
  EXPECT_EQ(s->cgroup.memory.limit, 268435456u);
  ASSERT_TRUE(s->processes.has_value());
  EXPECT_EQ(s->processes->processes, 1u);
  EXPECT_EQ(s->processes->fds, 2u);
  EXPECT_EQ(s->processes->sockets, 1u);
  EXPECT_EQ(s->nofile_soft, 4096u);
  ASSERT_THAT(s->blkio_device_names, SizeIs(2));
  EXPECT_EQ(s->blkio_device_names[0], "/dev/sdb");
  EXPECT_EQ(s->blkio_device_names[1], "254:0");  // no sysfs entry: major:minor
  ASSERT_TRUE(s->fs.has_value());
  EXPECT_EQ(s->fs->inodes_used, 2u);
  EXPECT_GE(s->fs->used_bytes, 8u * 1024);
  EXPECT_GT(s->fs->capacity_bytes, 0u);
  EXPECT_THAT(s->network, IsEmpty());  // containers: network is the pod's
}

TEST_F(SamplerTest, LayerUsageIsCachedForTheTtl) {
  Sampler sampler = MakeSampler(absl::Hours(1));
  auto first = sampler.Sample({.cgroup_path = kCgroup, .upper_dir = upper_.path()});
  ASSERT_THAT(first, IsOk());
  WriteKb(upper_.Join("later"), 8);
  auto cached = sampler.Sample({.cgroup_path = kCgroup, .upper_dir = upper_.path()});
  EXPECT_EQ(cached->fs->inodes_used, first->fs->inodes_used);
  sampler.Forget({.cgroup_path = kCgroup, .upper_dir = upper_.path()});
  EXPECT_EQ(sampler.open_files(), 0u);
  auto fresh = sampler.Sample({.cgroup_path = kCgroup, .upper_dir = upper_.path()});
  EXPECT_EQ(fresh->fs->inodes_used, first->fs->inodes_used + 1);
}

TEST_F(SamplerTest, PodReadsNetworkOfItsProcess) {
  Sampler sampler = MakeSampler();
  auto s = sampler.Sample({.pod = true, .cgroup_path = kCgroup, .net_pid = 1576});
  ASSERT_THAT(s, IsOk());
  EXPECT_FALSE(s->processes.has_value());
  EXPECT_FALSE(s->network.empty());
  for (const NetInterfaceStats& i : s->network) EXPECT_NE(i.name, "lo");
}

TEST_F(SamplerTest, GoneCgroupIsNotFound) {
  Sampler sampler = MakeSampler();
  EXPECT_THAT(sampler.Sample({.cgroup_path = "/kubepods/gone"}),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace berth::metrics
