// Fake cgroupfs trees in temp dirs for the metrics tests, filled from the
// captured files under tests/fixtures/cgroup/ (test-only, header-only).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/cgroup/layout.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::metrics {

inline const std::string kFixtures = BERTH_SOURCE_DIR "/tests/fixtures/cgroup/";
inline constexpr char kV2MountInfo[] =
    "25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";
inline constexpr char kCgroup[] = "/kubepods/pod1/abc";

// Copies every file of fixture directory `from` into `to` (made if missing).
inline void CopyFixtures(const std::string& from, const std::string& to) {
  ASSERT_THAT(MakeDirs(to, 0755), ::berth::testing::IsOk());
  auto names = ListDir(kFixtures + from);
  ASSERT_THAT(names, ::berth::testing::IsOk());
  for (const std::string& name : *names) {
    ::berth::testing::WriteFileOrDie(to + "/" + name, *ReadFile(kFixtures + from + "/" + name));
  }
}

// A unified (v2) tree holding the captured container files at `cgroup`.
class V2Tree {
 public:
  explicit V2Tree(const std::string& cgroup = kCgroup) : cgroup_(cgroup) {
    EXPECT_THAT(MakeDirs(fake_.Join("sys/fs/cgroup"), 0755), ::berth::testing::IsOk());
    ::berth::testing::WriteFileOrDie(fake_.Join("sys/fs/cgroup/cgroup.controllers"),
                                     "cpuset cpu io memory hugetlb pids rdma misc\n");
    CopyFixtures("v2", Dir());
    layout_ = *CgroupLayout::FromMountInfo(kV2MountInfo, fake_.path());
  }
  std::string Dir() const { return fake_.Join("sys/fs/cgroup") + cgroup_; }
  const CgroupLayout& layout() const { return layout_; }

 private:
  std::string cgroup_;
  ::berth::testing::TempDir fake_;
  CgroupLayout layout_;
};

// <root>/<pid>/{status,fd/*,net/dev}; fd targets are symlink contents as the
// kernel shows them ("socket:[123]", "/dev/null").
inline void FakeProcess(const ::berth::testing::TempDir& root, pid_t pid,
                        const std::string& threads, const std::vector<std::string>& fd_targets) {
  const std::string dir = root.Join(std::to_string(pid));
  ASSERT_THAT(MakeDirs(dir + "/fd", 0755), ::berth::testing::IsOk());
  ASSERT_THAT(MakeDirs(dir + "/net", 0755), ::berth::testing::IsOk());
  ::berth::testing::WriteFileOrDie(
      dir + "/status", "Name:\tpause\nState:\tS (sleeping)\nThreads:\t" + threads + "\n");
  ::berth::testing::WriteFileOrDie(dir + "/net/dev", *ReadFile(kFixtures + "proc-net-dev"));
  for (size_t i = 0; i < fd_targets.size(); ++i) {
    const std::string link = dir + "/fd/" + std::to_string(i);
    ASSERT_EQ(::symlink(fd_targets[i].c_str(), link.c_str()), 0) << link;
  }
}

}  // namespace berth::metrics
