#include "agent/health_service.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace berth {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthService::HealthService(RpcBoundary& boundary, const std::vector<std::string>& services)
    : boundary_(boundary) {
  absl::MutexLock lock(&mu_);
  statuses_[""] = HealthCheckResponse::SERVING;
  for (const std::string& name : services) statuses_[name] = HealthCheckResponse::SERVING;
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  for (auto& [name, status] : statuses_) status = HealthCheckResponse::NOT_SERVING;
}

HealthService::ServingStatus HealthService::StatusOf(const std::string& service) const {
  auto it = statuses_.find(service);
  return it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second;
}

grpc::Status HealthService::Check(grpc::ServerContext* context, const HealthCheckRequest* request,
                                  HealthCheckResponse* response) {
  return boundary_.Unary(
      "grpc.health.v1.Health/Check", *request, response,
      [this](const HealthCheckRequest& r) -> absl::StatusOr<HealthCheckResponse> {
        absl::MutexLock lock(&mu_);
        ServingStatus status = StatusOf(r.service());
        if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
          return absl::NotFoundError(absl::StrCat("service `", r.service(), "` is not served"));
        }
        HealthCheckResponse out;
        out.set_status(status);
        return out;
      });
}

grpc::Status HealthService::Watch(grpc::ServerContext* context, const HealthCheckRequest* request,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  absl::Time start = absl::Now();
  const char* kMethod = "grpc.health.v1.Health/Watch";
  if (absl::Status admitted = boundary_.Enter(); !admitted.ok()) {
    return boundary_.Finish(kMethod, start, admitted);
  }
  std::optional<ServingStatus> sent;
  mu_.Lock();
  for (;;) {
    ServingStatus now = StatusOf(request->service());
    if (!sent || *sent != now) {
      HealthCheckResponse response;
      response.set_status(now);
      mu_.Unlock();
      bool ok = writer->Write(response);
      mu_.Lock();
      if (!ok) break;  // The client went away.
      sent = now;
      // Look again before ending: a Shutdown while the lock was released for
      // the write changed the status, and the watcher must see NOT_SERVING.
      continue;
    }
    if (shutdown_ || context->IsCancelled()) break;
    // Wakes on a change, else re-checks cancellation every 200 ms.
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](bool* shutdown) { return *shutdown; }, &shutdown_),
                         absl::Milliseconds(200));
  }
  mu_.Unlock();
  boundary_.Exit();
  return boundary_.Finish(kMethod, start, absl::OkStatus());
}

}  // namespace berth
