// ReadCgroupStats end to end on fake cgroupfs trees in temp dirs, one per
// layout (v1, unified v2, hybrid), filled from tests/fixtures/cgroup/.
#include "metrics/cgroup_reader.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "metrics/cgroup_parse.h"
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The Debian 12 hybrid mountinfo; `v1_only` drops its cgroup2 line and mounts
// hugetlb as a v1 hierarchy instead.
std::string DebianMountInfo(bool v1_only) {
  std::string text = *ReadFile(BERTH_SOURCE_DIR "/tests/fixtures/mountinfo/hybrid-debian12.txt");
  if (!v1_only) return text;
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (!absl::StrContains(line, "cgroup2")) absl::StrAppend(&out, line, "\n");
  }
  return out + "42 31 0:39 / /sys/fs/cgroup/hugetlb rw,relatime - cgroup cgroup rw,hugetlb\n";
}

// A v1 tree: the captured container files in every controller's cgroup dir.
class V1Tree {
 public:
  V1Tree() {
    for (const char* c :
         {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb"}) {
      CopyFixtures("v1", Dir(c));
    }
    CopyFixtures("v1-written", Dir("hugetlb"));
    layout_ = *CgroupLayout::FromMountInfo(DebianMountInfo(true), fake_.path());
  }
  std::string Dir(absl::string_view controller) const {
    return absl::StrCat(fake_.path(), "/sys/fs/cgroup/", controller, kCgroup);
  }
  const CgroupLayout& layout() const { return layout_; }

 private:
  TempDir fake_;
  CgroupLayout layout_;
};

TEST(ReadCgroupStatsTest, V1CapturedContainer) {
  V1Tree tree;
  ASSERT_EQ(tree.layout().mode(), CgroupMode::kV1);
  auto s = ReadCgroupStats(tree.layout(), kCgroup);
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(s->errors, IsEmpty());
  const uint64_t hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
  EXPECT_EQ(s->cpu.usage_ns, 599108612u);
  EXPECT_EQ(s->cpu.user_ns, TicksToNs(40, hz));
  EXPECT_EQ(s->cpu.system_ns, TicksToNs(19, hz));
  EXPECT_EQ(s->cpu.nr_periods, 0u);
  EXPECT_EQ(s->cpu.throttled_ns, 0u);
  EXPECT_EQ(s->cpu_spec.shares, 1024u);
  EXPECT_EQ(s->cpu_spec.quota_us, kUnlimited);
  EXPECT_EQ(s->cpu_spec.period_us, 100000u);
  EXPECT_EQ(s->memory.usage, 60547072u);
  EXPECT_EQ(s->memory.max_usage, 61837312u);
  EXPECT_EQ(s->memory.working_set, 60547072u);  // total_inactive_file is 0
  EXPECT_EQ(s->memory.rss, 59887616u);
  EXPECT_EQ(s->memory.cache, 40960u);
  EXPECT_EQ(s->memory.mapped_file, 0u);
  EXPECT_EQ(s->memory.swap, 0u);
  EXPECT_EQ(s->memory.failcnt, 0u);
  EXPECT_EQ(s->memory.pgfault, 23956u);
  EXPECT_EQ(s->memory.pgmajfault, 3u);
  EXPECT_EQ(s->memory.oom_kills, 0u);
  EXPECT_EQ(s->memory.limit, kUnlimited);
  EXPECT_EQ(s->memory.swap_limit, kUnlimited);
  EXPECT_EQ(s->memory.soft_limit, kUnlimited);
  EXPECT_EQ(s->pids.current, 2u);
  EXPECT_EQ(s->pids.max, 50u);
  ASSERT_TRUE(s->blkio.has_value());
  EXPECT_THAT(*s->blkio, IsEmpty());  // this machine's blkio counts nothing
  ASSERT_THAT(s->hugetlb, SizeIs(1));
  EXPECT_EQ(s->hugetlb[0].page_size, "2MB");
  EXPECT_EQ(s->hugetlb[0].usage, 4194304u);
  EXPECT_EQ(s->hugetlb[0].max_usage, 6291456u);
  EXPECT_EQ(s->hugetlb[0].failcnt, 2u);
  EXPECT_EQ(s->cpu_pressure, std::nullopt);  // v1 has no PSI per cgroup
}

TEST(ReadCgroupStatsTest, V1BlkioFallsBackToNonRecursiveFiles) {
  V1Tree tree;
  const std::string blkio = tree.Dir("blkio");
  ASSERT_EQ(::unlink((blkio + "/blkio.throttle.io_service_bytes_recursive").c_str()), 0);
  ASSERT_EQ(::unlink((blkio + "/blkio.throttle.io_serviced_recursive").c_str()), 0);
  WriteFileOrDie(blkio + "/blkio.throttle.io_service_bytes",
                 *ReadFile(kFixtures + "v1-written/blkio.throttle.io_service_bytes_recursive"));
  WriteFileOrDie(blkio + "/blkio.throttle.io_serviced",
                 *ReadFile(kFixtures + "v1-written/blkio.throttle.io_serviced_recursive"));
  auto s = ReadCgroupStats(tree.layout(), kCgroup);
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(s->errors, IsEmpty());
  ASSERT_TRUE(s->blkio.has_value());
  ASSERT_THAT(*s->blkio, SizeIs(2));
  EXPECT_EQ((*s->blkio)[1].read_bytes, 1459200u);
  EXPECT_EQ((*s->blkio)[1].write_ops, 353u);
}

TEST(ReadCgroupStatsTest, V1MissingFileLeavesItsGroupAbsent) {
  V1Tree tree;
  ASSERT_EQ(::unlink((tree.Dir("memory") + "/memory.stat").c_str()), 0);
  ASSERT_EQ(::unlink((tree.Dir("memory") + "/memory.memsw.limit_in_bytes").c_str()), 0);
  WriteFileOrDie(tree.Dir("pids") + "/pids.current", "lots\n");
  auto s = ReadCgroupStats(tree.layout(), kCgroup);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->memory.usage, 60547072u);
  EXPECT_EQ(s->memory.working_set, std::nullopt);
  EXPECT_EQ(s->memory.rss, std::nullopt);
  EXPECT_EQ(s->memory.pgfault, std::nullopt);
  EXPECT_EQ(s->memory.swap_limit, std::nullopt);  // optional file: no error
  EXPECT_EQ(s->pids.current, std::nullopt);
  EXPECT_EQ(s->pids.max, 50u);
  ASSERT_THAT(s->errors, SizeIs(2));
  EXPECT_THAT(s->errors[0], StatusIs(absl::StatusCode::kNotFound, HasSubstr("memory.stat")));
  EXPECT_THAT(s->errors[1],
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pids.current")));
}

TEST(ReadCgroupStatsTest, CgroupInNoHierarchyIsNotFound) {
  V1Tree tree;
  EXPECT_THAT(ReadCgroupStats(tree.layout(), "/kubepods/pod1/gone"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/kubepods/pod1/gone")));
  EXPECT_THAT(ReadCgroupStats(tree.layout(), "/kubepods/../etc"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ReadCgroupProcsTest, FromThePidsHierarchy) {
  V1Tree tree;
  EXPECT_THAT(*ReadCgroupProcs(tree.layout(), kCgroup), ElementsAre(1576, 1580));
}

TEST(ReadCgroupStatsTest, V2Unified) {
  V2Tree tree;
  ASSERT_EQ(tree.layout().mode(), CgroupMode::kUnified);
  auto s = ReadCgroupStats(tree.layout(), kCgroup);
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(s->errors, IsEmpty());
  EXPECT_EQ(s->cpu.usage_ns, 599108000u);
  EXPECT_EQ(s->cpu.user_ns, 400173000u);
  EXPECT_EQ(s->cpu.system_ns, 198935000u);
  EXPECT_EQ(s->cpu.nr_periods, 310u);
  EXPECT_EQ(s->cpu.nr_throttled, 27u);
  EXPECT_EQ(s->cpu.throttled_ns, 1830447000u);
  EXPECT_EQ(s->cpu_spec.shares, CpuWeightToShares(39));
  EXPECT_EQ(s->cpu_spec.quota_us, 50000u);
  EXPECT_EQ(s->cpu_spec.period_us, 100000u);
  EXPECT_EQ(s->memory.usage, 75767808u);
  EXPECT_EQ(s->memory.max_usage, 104857600u);
  EXPECT_EQ(s->memory.working_set, 75767808u - 12288000u);
  EXPECT_EQ(s->memory.rss, 52715520u);
  EXPECT_EQ(s->memory.cache, 20480000u);
  EXPECT_EQ(s->memory.mapped_file, 6758400u);
  EXPECT_EQ(s->memory.swap, 0u);
  EXPECT_EQ(s->memory.failcnt, std::nullopt);  // v2 has no failcnt
  EXPECT_EQ(s->memory.pgfault, 24412u);
  EXPECT_EQ(s->memory.pgmajfault, 7u);
  EXPECT_EQ(s->memory.oom_kills, 1u);
  EXPECT_EQ(s->memory.limit, 268435456u);
  EXPECT_EQ(s->memory.swap_limit, kUnlimited);
  EXPECT_EQ(s->memory.soft_limit, 67108864u);
  EXPECT_EQ(s->pids.current, 2u);
  EXPECT_EQ(s->pids.max, kUnlimited);
  ASSERT_TRUE(s->blkio.has_value());
  ASSERT_THAT(*s->blkio, SizeIs(2));
  EXPECT_EQ((*s->blkio)[0].write_bytes, 314773504u);
  ASSERT_THAT(s->hugetlb, SizeIs(2));
  EXPECT_EQ(s->hugetlb[0].page_size, "1GB");
  EXPECT_EQ(s->hugetlb[0].failcnt, 3u);
  EXPECT_EQ(s->hugetlb[1].page_size, "2MB");
  EXPECT_EQ(s->hugetlb[1].usage, 4194304u);
  EXPECT_EQ(s->hugetlb[1].max_usage, std::nullopt);
  ASSERT_TRUE(s->cpu_pressure.has_value());
  EXPECT_EQ(s->cpu_pressure->some_total_us, 41253u);
  EXPECT_EQ(s->cpu_pressure->full_total_us, 18760u);
  ASSERT_TRUE(s->memory_pressure.has_value());
  EXPECT_EQ(s->io_pressure->full_total_us, 8851u);
}

TEST(ReadCgroupStatsTest, V2MaxLimitsAndOldKernelFiles) {
  V2Tree tree;
  WriteFileOrDie(tree.Dir() + "/memory.max", "max\n");
  WriteFileOrDie(tree.Dir() + "/cpu.max", "max 100000\n");
  WriteFileOrDie(tree.Dir() + "/memory.events", "low 0\nhigh 0\nmax 0\noom 0\n");
  for (const char* gone : {"memory.peak", "memory.swap.current", "memory.swap.max", "cpu.pressure",
                           "memory.pressure", "io.pressure"}) {
    ASSERT_EQ(::unlink((tree.Dir() + "/" + gone).c_str()), 0) << gone;
  }
  auto s = ReadCgroupStats(tree.layout(), kCgroup);
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(s->errors, IsEmpty());
  EXPECT_EQ(s->memory.limit, kUnlimited);
  EXPECT_EQ(s->cpu_spec.quota_us, kUnlimited);
  EXPECT_EQ(s->cpu_spec.period_us, 100000u);
  EXPECT_EQ(s->memory.oom_kills, std::nullopt);
  EXPECT_EQ(s->memory.max_usage, std::nullopt);
  EXPECT_EQ(s->memory.swap, std::nullopt);
  EXPECT_EQ(s->cpu_pressure, std::nullopt);
}

TEST(ReadCgroupStatsTest, V2UnreadableIoStatLeavesBlkioAbsent) {
  V2Tree tree;
  WriteFileOrDie(tree.Dir() + "/io.stat", "sda rbytes=1\n");
  ASSERT_EQ(::unlink((tree.Dir() + "/memory.stat").c_str()), 0);
  auto s = ReadCgroupStats(tree.layout(), kCgroup);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->blkio, std::nullopt);
  EXPECT_EQ(s->memory.working_set, std::nullopt);
  EXPECT_EQ(s->memory.usage, 75767808u);
  ASSERT_THAT(s->errors, SizeIs(2));
  EXPECT_THAT(s->errors[0], StatusIs(absl::StatusCode::kNotFound, HasSubstr("memory.stat")));
  EXPECT_THAT(s->errors[1], StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("io.stat")));
}

TEST(ReadCgroupStatsTest, HybridDebian12) {
  TempDir fake;
  for (const char* c :
       {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"}) {
    CopyFixtures("v1", absl::StrCat(fake.path(), "/sys/fs/cgroup/", c, kCgroup));
  }
  const std::string unified = fake.Join("sys/fs/cgroup/unified");
  ASSERT_THAT(MakeDirs(unified + kCgroup, 0755), IsOk());
  WriteFileOrDie(unified + "/cgroup.controllers", "hugetlb\n");
  // The cgroup2 side: PSI captured on this machine, hugetlb written.
  CopyFixtures("hybrid-unified-root", unified + kCgroup);
  for (const char* f : {"hugetlb.2MB.current", "hugetlb.2MB.events", "hugetlb.2MB.max"}) {
    WriteFileOrDie(unified + kCgroup + "/" + f, *ReadFile(kFixtures + "v2/" + f));
  }
  auto layout = CgroupLayout::FromMountInfo(DebianMountInfo(false), fake.path());
  ASSERT_THAT(layout, IsOk());
  ASSERT_EQ(layout->mode(), CgroupMode::kHybrid);
  auto s = ReadCgroupStats(*layout, kCgroup);
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(s->errors, IsEmpty());
  EXPECT_EQ(s->cpu.usage_ns, 599108612u);  // v1 cpuacct, not the unified cpu.stat
  EXPECT_EQ(s->memory.usage, 60547072u);
  EXPECT_EQ(s->pids.max, 50u);
  ASSERT_THAT(s->hugetlb, SizeIs(1));
  EXPECT_EQ(s->hugetlb[0].usage, 4194304u);
  EXPECT_EQ(s->hugetlb[0].failcnt, 0u);
  ASSERT_TRUE(s->cpu_pressure.has_value());
  EXPECT_EQ(s->cpu_pressure->some_total_us, 3543912093u);
  EXPECT_EQ(s->memory_pressure->full_total_us, 24331u);
}

}  // namespace
}  // namespace berth::metrics
