// What needs no systemd: slice names as systemd expands them, and CPU lists as
// AllowedCPUs takes them. The D-Bus half runs in the VM lane (tests/vm).
#include "agent/runtime/systemd_units.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/status_matchers.h"

namespace berth::lifecycle {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SliceCgroupPathTest, DashesAreNesting) {
  absl::StatusOr<std::string> path = SliceCgroupPath("kubepods-burstable-pod1234_5678.slice");
  ASSERT_THAT(path.status(), IsOk());
  EXPECT_EQ(*path,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice");
  EXPECT_EQ(*SliceCgroupPath("system.slice"), "/system.slice");
  EXPECT_EQ(*SliceCgroupPath("-.slice"), "/");
}

TEST(SliceCgroupPathTest, WhatSystemdRefusesIsRefusedNamingTheSlice) {
  for (const char* bad :
       {"kubepods", ".slice", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", "a b.slice",
        "/kubepods.slice", "cpu-x.slice", "_a.slice", "memory.slice"}) {
    EXPECT_THAT(SliceCgroupPath(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr(absl::StrCat("slice `", bad, "`"))))
        << bad;
  }
}

TEST(SliceOfPathTest, TheLastPart) {
  EXPECT_EQ(SliceOfPath("/kubepods.slice/kubepods-pod1.slice"), "kubepods-pod1.slice");
  EXPECT_EQ(SliceOfPath("/"), "-.slice");
}

TEST(CpuListMaskTest, BitsPerCpu) {
  EXPECT_THAT(*CpuListMask("0"), ElementsAre(0x01));
  EXPECT_THAT(*CpuListMask("0-2,9"), ElementsAre(0x07, 0x02));
  EXPECT_THAT(CpuListMask("3-1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CpuListMask("x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace berth::lifecycle
