// CriService: the CRI v1 handlers as plain C++ (no gRPC types but the generated
// messages). One file per RPC beside this header: version.cc, status.cc, ...
// Each returns absl::StatusOr<Response>; the gRPC services in grpc_services.cc
// route every call here through the RpcBoundary.
//
// CRI semantics: https://github.com/kubernetes/cri-api/blob/master/pkg/apis/runtime/v1/api.proto
#pragma once

#include "absl/status/statusor.h"
#include "agent/cri/api.h"
#include "agent/options.h"

namespace berth {

class CriService {
 public:
  explicit CriService(AgentOptions options) : options_(std::move(options)) {}

  absl::StatusOr<runtime::v1::VersionResponse> Version(const runtime::v1::VersionRequest& request);
  absl::StatusOr<runtime::v1::StatusResponse> Status(const runtime::v1::StatusRequest& request);

  const AgentOptions& options() const { return options_; }

 private:
  AgentOptions options_;
};

// The shim binary berthd launches: --shim-path, else berth-shim beside berthd.
std::string ShimPath(const AgentOptions& options);

}  // namespace berth
