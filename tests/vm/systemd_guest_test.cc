// berthd with the systemd cgroup driver on a pure cgroup-v2 kernel with
// systemd as PID 1 (issue 18): run in the QEMU guest by tests/vm/run-vm.sh
// --mode systemd (ctest label `vm`). Elsewhere the tests skip.
//
// kubelet's default on such nodes is cgroupDriver: systemd, and it sends a
// slice name as cgroup_parent; before, berthd refused it.
#include <unistd.h>

#include <cstdio>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/runtime/systemd_units.h"
#include "os/cgroup/layout.h"
#include "os/files.h"
#include "tests/e2e/lifecycle_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::testing {
namespace {

using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

// What `command` prints (stdout), trimmed.
std::string Output(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return "<popen failed>";
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  return std::string(absl::StripAsciiWhitespace(out));
}

std::string Property(const std::string& unit, const std::string& property) {
  return Output(absl::StrCat("systemctl show --value -p ", property, " ", unit));
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "<missing " + path + ">";
}

class SystemdGuestTest : public LifecycleTest {
 protected:
  void SetUp() override {
    absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
    if (!lifecycle::SystemdBooted() || !layout.ok() || layout->mode() != CgroupMode::kUnified) {
      GTEST_SKIP()
          << "not systemd on pure cgroup v2: run through tests/vm/run-vm.sh --mode systemd";
    }
    LifecycleTest::SetUp();  // no --cgroup-driver: systemd is the default here
  }
};

TEST_F(SystemdGuestTest, PodsAreSlicesContainersAreScopesAndNothingOutlivesThem) {
  v1::RuntimeConfigRequest creq;
  v1::RuntimeConfigResponse cresp;
  ASSERT_TRUE(runtime_->RuntimeConfig(Ctx().get(), creq, &cresp).ok());
  EXPECT_EQ(cresp.linux().cgroup_driver(), v1::SYSTEMD);

  // As kubelet names a Burstable pod's slice (dashes of the uid become _).
  const std::string uid = RandomHex(8);
  const std::string slice = absl::StrCat("kubepods-burstable-pod", uid, ".slice");
  const std::string slice_path = absl::StrCat("/kubepods.slice/kubepods-burstable.slice/", slice);
  // kubelet makes the pod's slice before it asks for the pod, and removes it.
  ASSERT_THAT(lifecycle::StartSlice(slice, "/sys/fs/cgroup" + slice_path), IsOk());
  v1::PodSandboxConfig pod_config = PodConfig("sd", /*host_network=*/true);
  pod_config.mutable_linux()->set_cgroup_parent(slice);
  // A shared PID namespace: the pod has a pause process, in a scope of its own.
  pod_config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      v1::POD);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  const std::string pause_scope = absl::StrCat("berth-", *pod, ".scope");
  EXPECT_EQ(Property(pause_scope, "ActiveState"), "active");
  EXPECT_EQ(Property(pause_scope, "ControlGroup"), slice_path + "/" + pause_scope);

  v1::ContainerConfig config = ContainerConfig("c", {"sleep", "1000"});
  v1::LinuxContainerResources* r = config.mutable_linux()->mutable_resources();
  r->set_memory_limit_in_bytes(64 << 20);
  r->set_cpu_period(100000);
  r->set_cpu_quota(50000);
  r->set_cpu_shares(512);
  r->set_cpuset_cpus("0");
  // As kubelet sends for every page size the node has, 0 when the pod asks
  // for none: systemd never hands hugetlb down its slices, berthd does.
  const bool hugetlb = ::access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0;
  if (hugetlb) {
    v1::HugepageLimit* h = r->add_hugepage_limits();
    h->set_page_size("2MB");
    h->set_limit(0);
  }
  absl::StatusOr<std::string> id = CreateContainer(*pod, config, pod_config);
  ASSERT_THAT(id.status(), IsOk());
  ASSERT_THAT(StartContainer(*id), IsOk());
  const std::string scope = absl::StrCat("berth-", *id, ".scope");
  const std::string dir = "/sys/fs/cgroup" + slice_path + "/" + scope;
  // The limits are the scope's properties, and in its cgroup.
  EXPECT_EQ(Property(scope, "ActiveState"), "active");
  EXPECT_EQ(Property(scope, "Delegate"), "yes");
  EXPECT_EQ(Property(scope, "MemoryMax"), "67108864");
  EXPECT_EQ(Property(scope, "CPUQuotaPerSecUSec"), "500ms");
  EXPECT_EQ(Property(scope, "AllowedCPUs"), "0");
  EXPECT_EQ(Property(scope, "TasksMax"), "infinity");  // not systemd's 15% of pid_max
  if (hugetlb) {
    EXPECT_EQ(Read(dir + "/hugetlb.2MB.max"), "0");
  }
  EXPECT_EQ(Read(dir + "/memory.max"), "67108864");
  EXPECT_EQ(Read(dir + "/cpu.max"), "50000 100000");
  // systemctl shows the scope in the pod's slice, and the container's process in it.
  std::string status = Output("systemctl --no-pager status " + slice);
  EXPECT_THAT(status, HasSubstr(scope)) << status;
  EXPECT_THAT(status, HasSubstr("sleep 1000")) << status;
  absl::StatusOr<v1::ExecSyncResponse> out = ExecSync(*id, {"cat", "/proc/self/cgroup"}, 60);
  ASSERT_THAT(out.status(), IsOk());
  EXPECT_EQ(out->stdout(), "0::/\n");

  // kill -9 and a restart: the scopes are found again (the records hold their
  // paths), the container still runs and answers exec.
  ASSERT_THAT(berthd_->Stop(SIGKILL).status(), IsOk());
  StartBerthd();
  absl::StatusOr<v1::ContainerStatusResponse> st = ContainerStatus(*id);
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->status().state(), v1::CONTAINER_RUNNING);
  out = ExecSync(*id, {"echo", "still here"}, 60);
  ASSERT_THAT(out.status(), IsOk());
  EXPECT_EQ(out->stdout(), "still here\n");

  // An update reaches the scope's properties too, so a daemon-reload keeps it.
  v1::UpdateContainerResourcesRequest update;
  update.set_container_id(*id);
  update.mutable_linux()->set_memory_limit_in_bytes(32 << 20);
  v1::UpdateContainerResourcesResponse updated;
  grpc::Status us = runtime_->UpdateContainerResources(Ctx().get(), update, &updated);
  ASSERT_TRUE(us.ok()) << us.error_message();
  EXPECT_EQ(Property(scope, "MemoryMax"), "33554432");
  EXPECT_EQ(Output("systemctl daemon-reload; cat " + dir + "/memory.max"), "33554432");

  // Removal leaves no unit: not the scopes, not the slice berthd made.
  ASSERT_THAT(StopPod(*pod), IsOk());
  ASSERT_THAT(RemovePod(*pod), IsOk());
  for (const std::string& unit : {scope, pause_scope}) {
    // A stopped unit is unloaded by systemd's garbage collection, soon after.
    std::string state;
    for (int i = 0; i < 50 && (state = Property(unit, "LoadState")) != "not-found"; ++i) {
      ::usleep(100000);
    }
    EXPECT_EQ(state, "not-found") << unit << " " << Property(unit, "ActiveState");
  }
  EXPECT_NE(::access(dir.c_str(), F_OK), 0);
  // The pod's slice is kubelet's: still there, until kubelet stops it.
  EXPECT_EQ(Property(slice, "ActiveState"), "active");
  EXPECT_THAT(lifecycle::StopUnit(slice, "/sys/fs/cgroup" + slice_path), IsOk());
}

TEST_F(SystemdGuestTest, APodWithoutParentGetsASliceOfBerthsAndPathsAreRefused) {
  v1::PodSandboxConfig pod_config = PodConfig("own", /*host_network=*/true);
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  absl::StatusOr<std::string> id =
      CreateContainer(*pod, ContainerConfig("c", {"sleep", "1000"}), pod_config);
  ASSERT_THAT(id.status(), IsOk());
  const std::string scope = absl::StrCat("berth-", *id, ".scope");
  const std::string cgroup = Property(scope, "ControlGroup");
  // --cgroup-root=/berth-test-<hex>: the slice family berth-test-<hex>-<pod>.slice.
  const std::string slice = absl::StrCat(cgroup_root_.substr(1), "-", *pod, ".slice");
  EXPECT_THAT(cgroup, HasSubstr(absl::StrCat(slice, "/", scope)));
  ASSERT_THAT(StopPod(*pod), IsOk());
  ASSERT_THAT(RemovePod(*pod), IsOk());
  EXPECT_EQ(Property(scope, "LoadState"), "not-found");
  // systemd makes up any slice asked about (`systemctl show nosuch.slice` is
  // "loaded", "inactive"): the slice berthd made is stopped, its cgroup gone.
  EXPECT_EQ(Property(slice, "ActiveState"), "inactive");
  EXPECT_NE(::access(("/sys/fs/cgroup" + cgroup.substr(0, cgroup.rfind('/'))).c_str(), F_OK), 0);

  v1::PodSandboxConfig path = PodConfig("path", /*host_network=*/true);
  path.mutable_linux()->set_cgroup_parent("/kubepods/pod1");
  EXPECT_THAT(RunPod(path).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("berth uses the systemd cgroup driver here")));
}

}  // namespace
}  // namespace berth::testing
