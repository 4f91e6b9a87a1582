// What a CRI conformance run and real base images broke, through a real
// berthd (issue 16): pods named as conformance suites name them and without a
// hostname; privileged containers where berthd lacks capabilities; a real
// Debian image (merged-/usr, /var/run -> /run, dash) with kubelet's
// service-account mount; the container's own view of its cgroups;
// BIDIRECTIONAL and HOST_TO_CONTAINER propagation; AppArmor options on a node
// without AppArmor.
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "os/cgroup/layout.h"
#include "os/files.h"
#include "tests/e2e/lifecycle_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::testing {
namespace {

using ::testing::HasSubstr;

// A /proc/<pid>/status capability line ("CapBnd") as a number.
uint64_t CapLine(pid_t pid, const std::string& key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (absl::StartsWith(line, key + ":")) {
      uint64_t v = 0;
      absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line.substr(key.size() + 1)), &v);
      return v;
    }
  }
  return 0;
}

class RealWorldTest : public LifecycleTest {
 protected:
  v1::PodSandboxConfig Privileged(v1::PodSandboxConfig pod) {
    pod.mutable_linux()->mutable_security_context()->set_privileged(true);
    return pod;
  }
  // Runs `config` in `pod` and waits until it runs; the container's id.
  std::string Run(const std::string& pod, const v1::ContainerConfig& config,
                  const v1::PodSandboxConfig& pod_config) {
    absl::StatusOr<std::string> id = CreateContainer(pod, config, pod_config);
    EXPECT_THAT(id.status(), IsOk());
    if (!id.ok()) return "";
    EXPECT_THAT(StartContainer(*id), IsOk());
    return *id;
  }
  std::string Exec(const std::string& id, std::vector<std::string> cmd) {
    absl::StatusOr<v1::ExecSyncResponse> out = ExecSync(id, std::move(cmd), 20);
    EXPECT_THAT(out.status(), IsOk());
    if (!out.ok()) return "";
    EXPECT_EQ(out->exit_code(), 0) << out->stderr();
    return out->stdout();
  }
};

// 54 of 81 conformance specs failed here: the pod's 68-byte name became its
// hostname, and sethostname refused it.
TEST_F(RealWorldTest, AConformancePodWithoutHostnameRunsWithTheNodesHostname) {
  v1::PodSandboxConfig pod_config =
      PodConfig("create-PodSandbox-for-container-" + RandomHex(18));  // 32 + 36 bytes
  ASSERT_GE(pod_config.metadata().name().size(), 68u);
  pod_config.clear_hostname();
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  std::string id = Run(*pod, ContainerConfig("c", {"sleep", "1000"}), pod_config);
  char node[256] = {};
  ASSERT_EQ(gethostname(node, sizeof(node) - 1), 0);
  EXPECT_EQ(Exec(id, {"hostname"}), std::string(node) + "\n");

  // An explicit hostname too long for the kernel is the client's error.
  v1::PodSandboxConfig bad = PodConfig("toolong");
  bad.set_hostname(std::string(65, 'h'));
  EXPECT_THAT(RunPod(bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.hostname")));
}

// Root here has no CAP_SYS_RESOURCE; the test drops CAP_SYS_MODULE as well
// before starting berthd, as a hardened unit or a nested container would.
// "container init: capset: Operation not permitted" failed 5 specs.
TEST_F(RealWorldTest, PrivilegedAndAllCapabilitiesMeanBerthdsBoundingSet) {
  ASSERT_THAT(berthd_->Stop(SIGTERM).status(), IsOk());
  ASSERT_EQ(prctl(PR_CAPBSET_DROP, CAP_SYS_MODULE, 0, 0, 0), 0);
  StartBerthd();
  const uint64_t bounding = CapLine(berthd_->pid(), "CapBnd");
  ASSERT_EQ(bounding & (uint64_t{1} << CAP_SYS_MODULE), 0u);

  v1::PodSandboxConfig pod_config = Privileged(PodConfig("priv"));
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig priv = ContainerConfig("priv", {"sleep", "1000"});
  priv.mutable_linux()->mutable_security_context()->set_privileged(true);
  std::string id = Run(*pod, priv, pod_config);
  std::string capeff = Exec(id, {"sh", "-c", "grep CapEff /proc/1/status | cut -f2"});
  uint64_t eff = 0;
  ASSERT_TRUE(absl::SimpleHexAtoi(absl::StripAsciiWhitespace(capeff), &eff)) << capeff;
  EXPECT_EQ(eff, bounding);

  v1::ContainerConfig all = ContainerConfig("all", {"sleep", "1000"});
  all.mutable_linux()->mutable_security_context()->mutable_capabilities()->add_add_capabilities(
      "ALL");
  id = Run(*pod, all, pod_config);
  capeff = Exec(id, {"sh", "-c", "grep CapEff /proc/1/status | cut -f2"});
  ASSERT_TRUE(absl::SimpleHexAtoi(absl::StripAsciiWhitespace(capeff), &eff)) << capeff;
  EXPECT_EQ(eff, bounding);

  // Named, a capability berthd lacks is refused before any process is made.
  v1::ContainerConfig one = ContainerConfig("one", {"sleep", "1000"});
  one.mutable_linux()->mutable_security_context()->mutable_capabilities()->add_add_capabilities(
      "SYS_MODULE");
  EXPECT_THAT(CreateContainer(*pod, one, pod_config).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("add_capabilities[0]: CAP_SYS_MODULE is not in berthd's")));
}

// JVMs, Go and Node size themselves from these files.
TEST_F(RealWorldTest, AContainerSeesItsOwnCgroupsAndMemoryLimit) {
  v1::PodSandboxConfig pod_config = PodConfig("cg");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig config = ContainerConfig("c", {"sleep", "1000"});
  config.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  std::string id = Run(*pod, config, pod_config);

  for (const char* who : {"self", "1"}) {
    std::string cgroup = Exec(id, {"cat", absl::StrCat("/proc/", who, "/cgroup")});
    ASSERT_FALSE(cgroup.empty());
    for (absl::string_view line : absl::StrSplit(cgroup, '\n', absl::SkipEmpty())) {
      EXPECT_TRUE(absl::EndsWith(line, ":/")) << who << ": " << line;
    }
  }
  absl::StatusOr<CgroupLayout> layout = CgroupLayout::Detect();
  ASSERT_THAT(layout.status(), IsOk());
  const std::string limit = layout->mode() == CgroupMode::kUnified
                                ? "/sys/fs/cgroup/memory.max"
                                : "/sys/fs/cgroup/memory/memory.limit_in_bytes";
  EXPECT_EQ(Exec(id, {"cat", limit}), "67108864\n");
  // Read-only: not even root with CAP_DAC_OVERRIDE may raise it.
  absl::StatusOr<v1::ExecSyncResponse> write =
      ExecSync(id, {"sh", "-c", "echo 999999999 > " + limit}, 20);
  ASSERT_THAT(write.status(), IsOk());
  EXPECT_NE(write->exit_code(), 0);
  EXPECT_THAT(write->stderr(), HasSubstr("Read-only"));
}

// CSI node plugins mount inside a BIDIRECTIONAL bind and the host must see
// it; HOST_TO_CONTAINER shows host mounts inside. Both need a shared host
// mount (kubelet's /var/lib/kubelet is one): the test makes its own.
TEST_F(RealWorldTest, BidirectionalMountsReachTheHostAndHostMountsReachIn) {
  const std::string shared = dir_.Join("shared");
  ASSERT_THAT(MakeDirs(shared, 0755), IsOk());
  ASSERT_EQ(mount("tmpfs", shared.c_str(), "tmpfs", 0, "size=1m"), 0);
  absl::Cleanup unmount = [&] { umount2(shared.c_str(), MNT_DETACH); };
  ASSERT_EQ(mount(nullptr, shared.c_str(), nullptr, MS_SHARED, nullptr), 0);

  v1::PodSandboxConfig pod_config = Privileged(PodConfig("csi"));
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig csi = ContainerConfig("csi", {"sleep", "1000"});
  csi.mutable_linux()->mutable_security_context()->set_privileged(true);
  v1::Mount* m = csi.add_mounts();
  m->set_container_path("/plugins");
  m->set_host_path(shared);
  m->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  std::string id = Run(*pod, csi, pod_config);
  Exec(id, {"sh", "-c",
            "mkdir -p /plugins/vol && mount -t tmpfs csi /plugins/vol && "
            "echo hi > /plugins/vol/f"});
  absl::StatusOr<std::string> seen = ReadFile(shared + "/vol/f");
  ASSERT_THAT(seen.status(), IsOk()) << "the container's mount did not reach the host";
  EXPECT_EQ(*seen, "hi\n");

  v1::ContainerConfig watcher = ContainerConfig("watcher", {"sleep", "1000"});
  m = watcher.add_mounts();
  m->set_container_path("/host");
  m->set_host_path(shared);
  m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  std::string w = Run(*pod, watcher, pod_config);
  ASSERT_THAT(MakeDirs(shared + "/late", 0755), IsOk());
  ASSERT_EQ(mount("tmpfs", (shared + "/late").c_str(), "tmpfs", 0, "size=1m"), 0);
  ASSERT_THAT(WriteFileAtomically(shared + "/late/g", "late\n"), IsOk());
  EXPECT_EQ(Exec(w, {"cat", "/host/late/g"}), "late\n");
  EXPECT_EQ(Exec(w, {"cat", "/host/vol/f"}), "hi\n");  // the CSI container's, through the host

  // The container's own mounts (its /proc, the bind itself) stayed inside.
  absl::StatusOr<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  ASSERT_THAT(mountinfo.status(), IsOk());
  for (absl::string_view line : absl::StrSplit(*mountinfo, '\n', absl::SkipEmpty())) {
    EXPECT_FALSE(absl::StrContains(line, "/plugins")) << line;
  }
  RemoveEverything();
}

// A real Debian 12 base image, built from Debian's own packages by
// tests/images/debian-image.sh: merged-/usr, /var/run -> /run, dash as
// /bin/sh, a real /etc/passwd. kubelet mounts every pod's service-account
// token at /var/run/secrets/kubernetes.io/serviceaccount; resolving it
// through /var/run failed with ELOOP.
class DebianTest : public RealWorldTest {
 protected:
  void SetUp() override {
    extra_imports_ = {BERTH_DEBIAN_IMAGE_DIR};
    RealWorldTest::SetUp();
  }
  v1::ContainerConfig Debian(const std::string& name, std::vector<std::string> command) {
    v1::ContainerConfig c = ContainerConfig(name, std::move(command));
    c.mutable_image()->set_image("docker.io/berth/debian:12");
    return c;
  }
};

TEST_F(DebianTest, TheServiceAccountMountThroughVarRunAndRealUsers) {
  const std::string sa = dir_.Join("serviceaccount");
  ASSERT_THAT(MakeDirs(sa, 0755), IsOk());
  ASSERT_THAT(WriteFileAtomically(sa + "/token", "eyJhbGciOi.token\n"), IsOk());
  v1::PodSandboxConfig pod_config = PodConfig("deb");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig config = Debian("app", {"sleep", "1000"});
  v1::Mount* m = config.add_mounts();
  m->set_container_path("/var/run/secrets/kubernetes.io/serviceaccount");
  m->set_host_path(sa);
  m->set_readonly(true);
  config.set_working_dir("/var/run/app");  // missing in the image: made, through the link
  std::string id = Run(*pod, config, pod_config);
  EXPECT_EQ(Exec(id, {"cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"}),
            "eyJhbGciOi.token\n");
  EXPECT_EQ(Exec(id, {"cat", "/run/secrets/kubernetes.io/serviceaccount/token"}),
            "eyJhbGciOi.token\n");
  EXPECT_EQ(Exec(id, {"pwd"}), "/run/app\n");  // made through the link, where it leads
  EXPECT_EQ(Exec(id, {"sh", "-c", "readlink /bin; readlink /var/run; readlink -f /bin/sh"}),
            "usr/bin\n/run\n/usr/bin/dash\n");

  // A user from Debian's own /etc/passwd, by name.
  v1::ContainerConfig nobody = Debian("nobody", {"sleep", "1000"});
  nobody.mutable_linux()->mutable_security_context()->set_run_as_username("nobody");
  std::string n = Run(*pod, nobody, pod_config);
  EXPECT_EQ(Exec(n, {"id", "-un"}), "nobody\n");
  EXPECT_EQ(Exec(n, {"id", "-u"}), "65534\n");
}

// This node has no AppArmor: RuntimeDefault and Unconfined are no-ops, as in
// containerd; a Localhost profile cannot be honoured and is refused.
TEST_F(RealWorldTest, AppArmorLocalhostIsRefusedWhereAppArmorIsOff) {
  absl::StatusOr<std::string> enabled = ReadFile("/sys/module/apparmor/parameters/enabled");
  if (enabled.ok() && absl::StartsWith(*enabled, "Y")) GTEST_SKIP() << "AppArmor is on here";
  v1::PodSandboxConfig pod_config = PodConfig("aa");
  absl::StatusOr<std::string> pod = RunPod(pod_config);
  ASSERT_THAT(pod.status(), IsOk());
  v1::ContainerConfig config = ContainerConfig("c", {"sleep", "1000"});
  v1::SecurityProfile* aa = config.mutable_linux()->mutable_security_context()->mutable_apparmor();
  aa->set_profile_type(v1::SecurityProfile::Localhost);
  aa->set_localhost_ref("k8s-apparmor-example-deny-write");
  EXPECT_THAT(CreateContainer(*pod, config, pod_config).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("AppArmor is not enabled on this node")));
  aa->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  aa->clear_localhost_ref();
  std::string id = Run(*pod, config, pod_config);
  EXPECT_THAT(WaitState(id, v1::CONTAINER_RUNNING).status(), IsOk());
}

}  // namespace
}  // namespace berth::testing
