#include "agent/cri/rpc_boundary.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "os/log.h"

namespace berth {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share the canonical numbering 0..16.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status NotImplemented(absl::string_view full_method) {
  return absl::UnimplementedError(absl::StrCat(full_method, " is not implemented by berth yet"));
}

RpcBoundary::RpcBoundary(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("berth_grpc_requests_total")
                    .Help("gRPC calls served by berthd, by method and status code")
                    .Register(registry)),
      durations_(prometheus::BuildHistogram()
                     .Name("berth_grpc_request_duration_seconds")
                     .Help("Time berthd took to answer a gRPC call, by method")
                     .Register(registry)) {}

absl::Status RpcBoundary::Enter() {
  absl::MutexLock lock(&mu_);
  if (draining_) return absl::UnavailableError("berthd is shutting down");
  ++in_flight_;
  return absl::OkStatus();
}

void RpcBoundary::Exit() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

int RpcBoundary::Drain(absl::Duration grace) {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  mu_.AwaitWithTimeout(absl::Condition(&idle), grace);
  return in_flight_;
}

grpc::Status RpcBoundary::Finish(absl::string_view method, absl::Time start,
                                 const absl::Status& status) {
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::string name(method);
  std::string code = absl::StatusCodeToString(status.code());
  requests_.Add({{"method", name}, {"code", code}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  durations_.Add({{"method", name}}, kBuckets).Observe(seconds);

  switch (status.code()) {
    case absl::StatusCode::kOk:
      BERTH_LOG(DEBUG) << method << " ok in " << seconds * 1e3 << " ms";
      break;
    case absl::StatusCode::kUnimplemented:
      // Clients probe optional RPCs (kubelet asks for metric descriptors, say):
      // not worth a line each at the default level.
      BERTH_LOG(DEBUG) << method << ": " << absl::StatusCodeToString(status.code());
      break;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      BERTH_LOG(ERROR) << method << " failed: " << status;
      break;
    default:
      BERTH_LOG(INFO) << method << ": " << status;
  }
  return ToGrpcStatus(status);
}

}  // namespace berth
