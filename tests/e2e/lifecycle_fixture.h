// A real berthd with the demo image imported, pods' cgroups under a
// /berth-test-<random> root, and a CRI RuntimeService stub; helpers that build
// pod and container configs; and the leak check every test ends with: no
// mount under the test's dir, no cgroup under the test's root, no berth-shim
// of this test alive.
#pragma once

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/cri/api.h"
#include "tests/support/berthd_process.h"
#include "tests/support/temp_dir.h"

namespace berth::testing {

namespace v1 = runtime::v1;

class LifecycleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  // (Re)starts berthd on the same dirs; Connect() makes new stubs.
  void StartBerthd();
  void Connect();

  std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 60);

  v1::PodSandboxConfig PodConfig(const std::string& name, bool host_network = false);
  v1::ContainerConfig ContainerConfig(const std::string& name, std::vector<std::string> command);

  // The RPCs, as StatusOr: errors carry the gRPC code.
  absl::StatusOr<std::string> RunPod(const v1::PodSandboxConfig& config);
  absl::StatusOr<std::string> CreateContainer(const std::string& pod,
                                              const v1::ContainerConfig& config,
                                              const v1::PodSandboxConfig& pod_config);
  absl::Status StartContainer(const std::string& id);
  absl::Status StopContainer(const std::string& id, int64_t timeout);
  absl::Status RemoveContainer(const std::string& id);
  absl::Status StopPod(const std::string& id);
  absl::Status RemovePod(const std::string& id);
  absl::StatusOr<v1::ContainerStatusResponse> ContainerStatus(const std::string& id,
                                                              bool verbose = false);
  absl::StatusOr<v1::PodSandboxStatusResponse> PodStatus(const std::string& id);
  absl::StatusOr<v1::ExecSyncResponse> ExecSync(const std::string& id, std::vector<std::string> cmd,
                                                int64_t timeout = 0);
  absl::StatusOr<std::vector<v1::Container>> ListContainers(const v1::ContainerFilter& filter = {});
  absl::StatusOr<std::vector<v1::PodSandbox>> ListPods(const v1::PodSandboxFilter& filter = {});
  // Polls ContainerStatus until the state is `state` (or 20 s pass).
  absl::StatusOr<v1::ContainerStatus> WaitState(const std::string& id, v1::ContainerState state);

  // Every pod removed, then the leak check.
  void RemoveEverything();
  void ExpectNoLeaks();

  static std::string demo_dir_;
  // More berthd flags; a subclass sets them before SetUp() starts berthd.
  std::vector<std::string> extra_flags_;
  // More OCI layouts to import beside the demo image.
  std::vector<std::string> extra_imports_;
  TempDir dir_;
  std::string cgroup_root_;
  std::unique_ptr<BerthdProcess> berthd_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
};

// A random hex string for names.
std::string RandomHex(int bytes);

}  // namespace berth::testing
