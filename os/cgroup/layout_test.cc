#include "os/cgroup/layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/files.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::ElementsAre;

std::string Fixture(const std::string& name) {
  return *ReadFile(BERTH_SOURCE_DIR "/tests/fixtures/mountinfo/" + name);
}

TEST(CgroupLayoutTest, HybridDebian12) {
  TempDir fake;
  ASSERT_THAT(MakeDirs(fake.Join("sys/fs/cgroup/unified"), 0755), IsOk());
  WriteFileOrDie(fake.Join("sys/fs/cgroup/unified/cgroup.controllers"), "hugetlb\n");
  auto layout = CgroupLayout::FromMountInfo(Fixture("hybrid-debian12.txt"), fake.path());
  ASSERT_THAT(layout, IsOk());
  EXPECT_EQ(layout->mode(), CgroupMode::kHybrid);
  // name=systemd is no controller hierarchy; 8 v1 controllers + cgroup2.
  EXPECT_EQ(layout->hierarchies().size(), 9u);
  ASSERT_NE(layout->Find("memory"), nullptr);
  EXPECT_FALSE(layout->Find("memory")->v2);
  EXPECT_EQ(layout->Find("memory")->mount_point, fake.path() + "/sys/fs/cgroup/memory");
  ASSERT_NE(layout->Find("hugetlb"), nullptr);
  EXPECT_TRUE(layout->Find("hugetlb")->v2);
  EXPECT_EQ(layout->Find("io"), nullptr);
  EXPECT_EQ(layout->Find("rdma"), nullptr);
}

TEST(CgroupLayoutTest, PureV2) {
  TempDir fake;
  ASSERT_THAT(MakeDirs(fake.Join("sys/fs/cgroup"), 0755), IsOk());
  WriteFileOrDie(fake.Join("sys/fs/cgroup/cgroup.controllers"),
                 "cpuset cpu io memory hugetlb pids rdma misc\n");
  auto layout = CgroupLayout::FromMountInfo(
      "25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n",
      fake.path());
  ASSERT_THAT(layout, IsOk());
  EXPECT_EQ(layout->mode(), CgroupMode::kUnified);
  ASSERT_EQ(layout->hierarchies().size(), 1u);
  EXPECT_THAT(layout->hierarchies()[0].controllers,
              ElementsAre("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"));
  EXPECT_EQ(layout->Find("cpu"), layout->Find("memory"));
}

TEST(CgroupLayoutTest, CoMountedV1AndSubtreeMountsSkipped) {
  auto layout = CgroupLayout::FromMountInfo(
      "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "90 80 0:27 /kubepods /var/lib/x/memory rw - cgroup cgroup rw,memory\n");
  ASSERT_THAT(layout, IsOk());
  EXPECT_EQ(layout->mode(), CgroupMode::kV1);
  ASSERT_EQ(layout->hierarchies().size(), 2u);
  EXPECT_EQ(layout->Find("cpu"), layout->Find("cpuacct"));
  EXPECT_EQ(layout->Find("memory")->mount_point, "/sys/fs/cgroup/memory");
}

TEST(CgroupLayoutTest, NoCgroupsIsNotFound) {
  EXPECT_THAT(CgroupLayout::FromMountInfo("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(CgroupLayoutTest, FromHierarchiesRebuildsWhatDetectFound) {
  TempDir fake;
  ASSERT_THAT(MakeDirs(fake.Join("sys/fs/cgroup/unified"), 0755), IsOk());
  WriteFileOrDie(fake.Join("sys/fs/cgroup/unified/cgroup.controllers"), "hugetlb\n");
  auto found = CgroupLayout::FromMountInfo(Fixture("hybrid-debian12.txt"), fake.path());
  ASSERT_THAT(found, IsOk());
  auto again = CgroupLayout::FromHierarchies(found->hierarchies());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->mode(), CgroupMode::kHybrid);
  ASSERT_NE(again->Find("memory"), nullptr);
  EXPECT_EQ(again->Find("memory")->mount_point, found->Find("memory")->mount_point);
  EXPECT_TRUE(again->Find("hugetlb")->v2);

  auto v2 = CgroupLayout::FromHierarchies({{"/sys/fs/cgroup", true, {"memory", "cpu"}}});
  ASSERT_THAT(v2, IsOk());
  EXPECT_EQ(v2->mode(), CgroupMode::kUnified);
  auto v1 = CgroupLayout::FromHierarchies({{"/sys/fs/cgroup/memory", false, {"memory"}}});
  ASSERT_THAT(v1, IsOk());
  EXPECT_EQ(v1->mode(), CgroupMode::kV1);

  EXPECT_THAT(CgroupLayout::FromHierarchies({}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(CgroupLayout::FromHierarchies({{"sys/fs/cgroup", true, {}}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CgroupLayout::FromHierarchies({{"/a", true, {}}, {"/b", true, {}}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace berth
