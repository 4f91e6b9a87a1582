#include "tests/e2e/lifecycle_fixture.h"

#include <dirent.h>
#include <sys/random.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "os/files.h"
#include "os/status.h"
#include "tests/support/status_matchers.h"

namespace berth::testing {
namespace {

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Mount points of every cgroup hierarchy.
std::vector<std::string> CgroupMounts() {
  std::vector<std::string> out;
  for (const std::string& line : Lines("/proc/self/mountinfo")) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    auto dash = std::find(f.begin(), f.end(), "-");
    if (dash == f.end() || dash + 1 == f.end()) continue;
    if (*(dash + 1) == "cgroup" || *(dash + 1) == "cgroup2") out.push_back(f[4]);
  }
  return out;
}

}  // namespace

std::string LifecycleTest::demo_dir_;

std::string RandomHex(int bytes) {
  std::string raw(bytes, '\0');
  if (getrandom(raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size())) abort();
  return absl::BytesToHexString(raw);
}

void LifecycleTest::SetUpTestSuite() {
  if (geteuid() != 0) return;
  char tmpl[] = "/tmp/berth-demo-image-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  demo_dir_ = tmpl;
  ASSERT_EQ(Shell(absl::StrCat(BERTH_SOURCE_DIR, "/deploy/demo-image.sh ", demo_dir_,
                               "/demo >/dev/null")),
            0);
}

void LifecycleTest::TearDownTestSuite() {
  if (!demo_dir_.empty()) (void)RemoveTree(demo_dir_);
}

void LifecycleTest::SetUp() {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  cgroup_root_ = "/berth-test-" + RandomHex(6);
  StartBerthd();
}

void LifecycleTest::StartBerthd() {
  berthd_ = std::make_unique<BerthdProcess>(dir_);
  std::string imports = demo_dir_ + "/demo";
  for (const std::string& dir : extra_imports_) imports += "," + dir;
  std::vector<std::string> flags = {"--import=" + imports, "--cgroup-root=" + cgroup_root_};
  flags.insert(flags.end(), extra_flags_.begin(), extra_flags_.end());
  ASSERT_THAT(berthd_->Start(flags), ::berth::testing::IsOk());
  Connect();
}

void LifecycleTest::Connect() { runtime_ = v1::RuntimeService::NewStub(berthd_->Channel()); }

void LifecycleTest::TearDown() {
  if (geteuid() != 0) return;
  // A test that failed while berthd was down (killed, and not yet restarted)
  // leaves its pods to a berthd that recovers them: start one to remove them.
  if (berthd_ != nullptr && berthd_->pid() <= 0 && HasFailure()) {
    ADD_FAILURE() << "berthd was down at the end of the test: restarting it to clean up";
    StartBerthd();
  }
  if (berthd_ != nullptr && runtime_ != nullptr) RemoveEverything();
  if (berthd_ != nullptr) (void)berthd_->Stop(SIGTERM);
  ExpectNoLeaks();
}

std::unique_ptr<grpc::ClientContext> LifecycleTest::Ctx(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

v1::PodSandboxConfig LifecycleTest::PodConfig(const std::string& name, bool host_network) {
  v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_namespace_("e2e");
  c.mutable_metadata()->set_uid(name + "-uid");
  c.set_hostname(name + "-host");
  c.set_log_directory(dir_.Join("logs/" + name));
  (*c.mutable_labels())["app"] = name;
  (*c.mutable_annotations())["note"] = "kept verbatim";
  // As kubelet sends it: each container its own PID namespace.
  v1::NamespaceOption* ns =
      c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(v1::CONTAINER);
  if (host_network) ns->set_network(v1::NODE);
  return c;
}

v1::ContainerConfig LifecycleTest::ContainerConfig(const std::string& name,
                                                   std::vector<std::string> command) {
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_image()->set_image("docker.io/berth/demo:latest");
  for (std::string& a : command) c.add_command(std::move(a));
  c.set_log_path(name + "/0.log");
  (*c.mutable_labels())["container"] = name;
  return c;
}

absl::StatusOr<std::string> LifecycleTest::RunPod(const v1::PodSandboxConfig& config) {
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = config;
  v1::RunPodSandboxResponse resp;
  BERTH_RETURN_IF_ERROR(FromGrpcStatus(runtime_->RunPodSandbox(Ctx().get(), req, &resp)));
  return resp.pod_sandbox_id();
}

absl::StatusOr<std::string> LifecycleTest::CreateContainer(const std::string& pod,
                                                           const v1::ContainerConfig& config,
                                                           const v1::PodSandboxConfig& pod_config) {
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod);
  *req.mutable_config() = config;
  *req.mutable_sandbox_config() = pod_config;
  v1::CreateContainerResponse resp;
  BERTH_RETURN_IF_ERROR(FromGrpcStatus(runtime_->CreateContainer(Ctx().get(), req, &resp)));
  return resp.container_id();
}

absl::Status LifecycleTest::StartContainer(const std::string& id) {
  v1::StartContainerRequest req;
  req.set_container_id(id);
  v1::StartContainerResponse resp;
  return FromGrpcStatus(runtime_->StartContainer(Ctx().get(), req, &resp));
}

absl::Status LifecycleTest::StopContainer(const std::string& id, int64_t timeout) {
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(timeout);
  v1::StopContainerResponse resp;
  return FromGrpcStatus(runtime_->StopContainer(Ctx().get(), req, &resp));
}

absl::Status LifecycleTest::RemoveContainer(const std::string& id) {
  v1::RemoveContainerRequest req;
  req.set_container_id(id);
  v1::RemoveContainerResponse resp;
  return FromGrpcStatus(runtime_->RemoveContainer(Ctx().get(), req, &resp));
}

absl::Status LifecycleTest::StopPod(const std::string& id) {
  v1::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  v1::StopPodSandboxResponse resp;
  return FromGrpcStatus(runtime_->StopPodSandbox(Ctx().get(), req, &resp));
}

absl::Status LifecycleTest::RemovePod(const std::string& id) {
  v1::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  v1::RemovePodSandboxResponse resp;
  return FromGrpcStatus(runtime_->RemovePodSandbox(Ctx().get(), req, &resp));
}

absl::StatusOr<v1::ContainerStatusResponse> LifecycleTest::ContainerStatus(const std::string& id,
                                                                           bool verbose) {
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(verbose);
  v1::ContainerStatusResponse resp;
  BERTH_RETURN_IF_ERROR(FromGrpcStatus(runtime_->ContainerStatus(Ctx().get(), req, &resp)));
  return resp;
}

absl::StatusOr<v1::PodSandboxStatusResponse> LifecycleTest::PodStatus(const std::string& id) {
  v1::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  req.set_verbose(true);
  v1::PodSandboxStatusResponse resp;
  BERTH_RETURN_IF_ERROR(FromGrpcStatus(runtime_->PodSandboxStatus(Ctx().get(), req, &resp)));
  return resp;
}

absl::StatusOr<v1::ExecSyncResponse> LifecycleTest::ExecSync(const std::string& id,
                                                             std::vector<std::string> cmd,
                                                             int64_t timeout) {
  v1::ExecSyncRequest req;
  req.set_container_id(id);
  for (std::string& a : cmd) req.add_cmd(std::move(a));
  req.set_timeout(timeout);
  v1::ExecSyncResponse resp;
  BERTH_RETURN_IF_ERROR(FromGrpcStatus(runtime_->ExecSync(Ctx().get(), req, &resp)));
  return resp;
}

absl::StatusOr<std::vector<v1::Container>> LifecycleTest::ListContainers(
    const v1::ContainerFilter& filter) {
  v1::ListContainersRequest req;
  *req.mutable_filter() = filter;
  v1::ListContainersResponse resp;
  BERTH_RETURN_IF_ERROR(FromGrpcStatus(runtime_->ListContainers(Ctx().get(), req, &resp)));
  return std::vector<v1::Container>(resp.containers().begin(), resp.containers().end());
}

absl::StatusOr<std::vector<v1::PodSandbox>> LifecycleTest::ListPods(
    const v1::PodSandboxFilter& filter) {
  v1::ListPodSandboxRequest req;
  *req.mutable_filter() = filter;
  v1::ListPodSandboxResponse resp;
  BERTH_RETURN_IF_ERROR(FromGrpcStatus(runtime_->ListPodSandbox(Ctx().get(), req, &resp)));
  return std::vector<v1::PodSandbox>(resp.items().begin(), resp.items().end());
}

absl::StatusOr<v1::ContainerStatus> LifecycleTest::WaitState(const std::string& id,
                                                             v1::ContainerState state) {
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (true) {
    BERTH_ASSIGN_OR_RETURN(v1::ContainerStatusResponse s, ContainerStatus(id));
    if (s.status().state() == state) return s.status();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("container ", id, " stays ", v1::ContainerState_Name(s.status().state())));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void LifecycleTest::RemoveEverything() {
  absl::StatusOr<std::vector<v1::PodSandbox>> pods = ListPods();
  ASSERT_THAT(pods.status(), ::berth::testing::IsOk());
  for (const v1::PodSandbox& p : *pods) {
    EXPECT_THAT(StopPod(p.id()), ::berth::testing::IsOk());
    EXPECT_THAT(RemovePod(p.id()), ::berth::testing::IsOk());
  }
  absl::StatusOr<std::vector<v1::Container>> left = ListContainers();
  ASSERT_THAT(left.status(), ::berth::testing::IsOk());
  EXPECT_TRUE(left->empty()) << left->size() << " containers outlived their pods";
}

void LifecycleTest::ExpectNoLeaks() {
  // Mounts: none under the test's dir (rootfs overlays, pinned namespaces, pause roots).
  for (const std::string& line : Lines("/proc/self/mountinfo")) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() > 4) {
      EXPECT_FALSE(absl::StartsWith(f[4], dir_.path())) << "mount left: " << line;
    }
  }
  // Cgroups: the root berthd was given is empty in every hierarchy; it is ours
  // (the test's) to remove.
  for (const std::string& mount : CgroupMounts()) {
    std::string root = mount + cgroup_root_;
    DIR* d = opendir(root.c_str());
    if (d == nullptr) continue;
    while (struct dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') {
        ADD_FAILURE() << "cgroup left: " << root << "/" << e->d_name;
        rmdir((root + "/" + e->d_name).c_str());
      }
    }
    closedir(d);
    rmdir(root.c_str());
  }
  // Shims: none of this test's alive (zombies of shims whose berthd died are
  // init's to reap).
  DIR* proc = opendir("/proc");
  while (struct dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string base = std::string("/proc/") + e->d_name;
    absl::StatusOr<std::string> cmdline = ReadFile(base + "/cmdline");
    if (!cmdline.ok() || !absl::StrContains(*cmdline, dir_.path())) continue;
    if (!absl::StrContains(*cmdline, "berth-shim") && !absl::StrContains(*cmdline, "pause"))
      continue;
    absl::StatusOr<std::string> stat = ReadFile(base + "/stat");
    if (stat.ok() && absl::StrContains(*stat, ") Z ")) continue;
    ADD_FAILURE() << "process left: " << e->d_name << " "
                  << absl::StrReplaceAll(*cmdline, {{std::string(1, '\0'), " "}});
    kill(atoi(e->d_name), SIGKILL);
  }
  closedir(proc);
}

}  // namespace berth::testing
