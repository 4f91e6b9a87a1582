// Root integration tests of berth-shim: real containers from a busybox-static
// rootfs plus berth-probe (tests/probe), cgroups under a /berth-test-<random>
// parent. The fixture makes the test process a child subreaper (so a shim
// whose starter died is still ours to reap), and its TearDown deletes every
// shim, reaps it, removes the cgroup parent and checks nothing is left.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "os/cgroup/layout.h"
#include "shim/client.h"
#include "tests/support/temp_dir.h"

namespace berth::shim::testing {

// key=value lines as berth-probe prints them; repeated keys keep every value.
using ProbeOutput = std::multimap<std::string, std::string>;
ProbeOutput ParseProbe(absl::string_view text);
std::string One(const ProbeOutput& out, const std::string& key);

class ShimTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // DefaultSpec for `args` with this test's rootfs and log path; `cgroup` adds
  // a cgroup below the test's parent.
  v1::ContainerSpec Spec(const std::vector<std::string>& args, bool cgroup = false);
  absl::StatusOr<LaunchedShim> Launch(const v1::ContainerSpec& spec);
  absl::StatusOr<v1::Response> Call(const LaunchedShim& shim, const v1::Request& request) {
    return CallShim(shim.socket, request);
  }
  // Start, wait; the exit status.
  v1::ExitStatus RunToExit(const LaunchedShim& shim);
  // The container's output, rebuilt from its CRI log.
  std::string LogText(const LaunchedShim& shim);
  std::string LogPath(const LaunchedShim& shim) const { return shim.bundle + "/ctr.log"; }
  // The cgroup directory of `shim`'s container for `controller`.
  std::string CgroupDir(const std::string& controller, const std::string& name) const;
  std::string CgroupPath(const std::string& name) const { return cgroup_parent_ + "/" + name; }

  std::unique_ptr<berth::testing::TempDir> dir_;
  std::string rootfs_;
  std::string cgroup_parent_;
  CgroupLayout layout_;
  std::vector<LaunchedShim> shims_;
  int next_ = 0;
};

}  // namespace berth::shim::testing
