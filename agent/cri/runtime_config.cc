// UpdateRuntimeConfig and RuntimeConfig.
//
// UpdateRuntimeConfig: kubelet pushes the node's pod CIDR; berthd keeps it for
// CNI configs that ask for it (issue 6). RuntimeConfig: the cgroup driver
// berthd uses (cgroup_driver.cc), which kubelet follows when it asks
// (research/cri-v1.md §1, KubeletCgroupDriverFromCRI).
#include "agent/cri/cri_service.h"

namespace berth {

namespace v1 = runtime::v1;

absl::StatusOr<v1::UpdateRuntimeConfigResponse> CriService::UpdateRuntimeConfig(
    const v1::UpdateRuntimeConfigRequest& request) {
  absl::MutexLock lock(&config_mu_);
  pod_cidr_ = request.runtime_config().network_config().pod_cidr();
  return v1::UpdateRuntimeConfigResponse();
}

absl::StatusOr<v1::RuntimeConfigResponse> CriService::RuntimeConfig(
    const v1::RuntimeConfigRequest&) {
  v1::RuntimeConfigResponse response;
  response.mutable_linux()->set_cgroup_driver(systemd_cgroups_ ? v1::SYSTEMD : v1::CGROUPFS);
  return response;
}

}  // namespace berth
