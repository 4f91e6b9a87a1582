// Version: api.proto `rpc Version(VersionRequest) returns (VersionResponse)`.
#include "agent/cri/cri_service.h"

namespace berth {

// The CRI `version` field is the version of the kubelet runtime API the runtime
// speaks; every CRI runtime (containerd, CRI-O) answers "0.1.0" here and puts its
// own version in runtime_version.
constexpr char kKubeRuntimeApiVersion[] = "0.1.0";

absl::StatusOr<runtime::v1::VersionResponse> CriService::Version(
    const runtime::v1::VersionRequest& request) {
  runtime::v1::VersionResponse response;
  response.set_version(kKubeRuntimeApiVersion);
  response.set_runtime_name("berth");
  response.set_runtime_version(BERTH_VERSION);
  response.set_runtime_api_version("v1");
  return response;
}

}  // namespace berth
