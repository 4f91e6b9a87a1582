// grpc.health.v1.Health (grpc/grpc doc/health-checking.md), through the
// RpcBoundary like every other service.
//
// The empty service name is the whole server; each served service is known by
// its full name ("runtime.v1.RuntimeService"). Unknown names answer NOT_FOUND
// from Check and SERVICE_UNKNOWN from Watch, as the protocol says. On shutdown
// everything turns NOT_SERVING and open Watch streams see it, then end.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/cri/rpc_boundary.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace berth {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  HealthService(RpcBoundary& boundary, const std::vector<std::string>& services);

  // Sets every service NOT_SERVING; open Watch streams send it and end.
  void Shutdown();

  grpc::Status Check(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(grpc::ServerContext* context,
                     const grpc::health::v1::HealthCheckRequest* request,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

 private:
  ServingStatus StatusOf(const std::string& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RpcBoundary& boundary_;
  mutable absl::Mutex mu_;
  std::map<std::string, ServingStatus> statuses_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace berth
