#include "os/mountinfo.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/files.h"
#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

TEST(MountInfoTest, ParsesTheKernelsExample) {
  auto mounts = ParseMountInfo(
      "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n");
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 1u);
  const MountInfo& m = (*mounts)[0];
  EXPECT_EQ(m.id, 36);
  EXPECT_EQ(m.parent_id, 35);
  EXPECT_EQ(m.root, "/mnt1");
  EXPECT_EQ(m.mount_point, "/mnt2");
  EXPECT_EQ(m.options, "rw,noatime");
  EXPECT_EQ(m.fs_type, "ext3");
  EXPECT_EQ(m.source, "/dev/root");
  EXPECT_EQ(m.super_options, "rw,errors=continue");
  EXPECT_EQ(m.optional_fields, std::vector<std::string>{"master:1"});
}

TEST(MountInfoTest, SharedAndMasterTogether) {
  auto mounts = ParseMountInfo(
      "50 31 0:40 / /x rw shared:7 master:3 - tmpfs tmpfs rw\n"
      "51 31 0:41 / /y rw - tmpfs tmpfs rw\n");
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  EXPECT_EQ((*mounts)[0].optional_fields, (std::vector<std::string>{"shared:7", "master:3"}));
  EXPECT_TRUE((*mounts)[1].optional_fields.empty());
}

TEST(MountInfoTest, NoOptionalFieldsAndOctalEscapes) {
  auto mounts = ParseMountInfo("40 31 0:37 / /mnt/with\\040space\\134x rw - tmpfs tmpfs rw\n");
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  EXPECT_EQ((*mounts)[0].mount_point, "/mnt/with space\\x");
}

TEST(MountInfoTest, CapturedHybridMachine) {
  auto text = ReadFile(BERTH_SOURCE_DIR "/tests/fixtures/mountinfo/hybrid-debian12.txt");
  ASSERT_TRUE(text.ok());
  auto mounts = ParseMountInfo(*text);
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  int cgroup_v1 = 0, cgroup2 = 0;
  for (const MountInfo& m : *mounts) {
    cgroup_v1 += m.fs_type == "cgroup";
    cgroup2 += m.fs_type == "cgroup2";
  }
  EXPECT_EQ(cgroup_v1, 9);
  EXPECT_EQ(cgroup2, 1);
}

TEST(MountInfoTest, MalformedLineNamesIt) {
  EXPECT_THAT(ParseMountInfo("36 35 98:0 /mnt1 /mnt2 rw\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
  EXPECT_THAT(ParseMountInfo("x 35 98:0 / / rw - ext4 /dev/x rw\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not numbers")));
}

}  // namespace
}  // namespace berth
