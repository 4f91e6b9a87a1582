// The gRPC side of CRI: runtime.v1.RuntimeService and runtime.v1.ImageService,
// every RPC routed through the RpcBoundary to CriService, or answered
// UNIMPLEMENTED naming the method when Berth does not serve it yet.
#pragma once

#include <memory>
#include <vector>

#include <grpcpp/impl/codegen/service_type.h>

#include "agent/cri/cri_service.h"
#include "agent/cri/rpc_boundary.h"

namespace berth {

// Full names, as reflection and health know them.
inline constexpr char kRuntimeServiceName[] = "runtime.v1.RuntimeService";
inline constexpr char kImageServiceName[] = "runtime.v1.ImageService";

std::unique_ptr<grpc::Service> NewRuntimeService(CriService& cri, RpcBoundary& boundary);
std::unique_ptr<grpc::Service> NewImageService(CriService& cri, RpcBoundary& boundary);

}  // namespace berth
