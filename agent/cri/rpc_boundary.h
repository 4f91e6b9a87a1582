// The one gRPC boundary (STYLE.md 2).
//
// CRI handlers are plain C++ returning absl::StatusOr<Response>. Every RPC of
// every service passes through RpcBoundary, which times the call, counts it in
// Prometheus by method and code, logs failures, and converts absl::Status to
// grpc::Status (the code numbering is the same by design). It also tracks calls
// in flight, so that a graceful shutdown can wait for exactly those: once
// Drain() begins, new calls answer UNAVAILABLE (retryable) and Drain() returns
// when the last in-flight call has finished.
//
//   grpc::Status Version(grpc::ServerContext*, const VersionRequest* req,
//                        VersionResponse* resp) override {
//     return boundary_.Unary("Version", *req, resp,
//                            [&](const auto& r) { return cri_.Version(r); });
//   }
#pragma once

#include <string>
#include <utility>

#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace berth {

grpc::Status ToGrpcStatus(const absl::Status& status);

// UNIMPLEMENTED naming the full method, for RPCs Berth does not serve yet.
absl::Status NotImplemented(absl::string_view full_method);

class RpcBoundary {
 public:
  // Registers berth_grpc_requests_total and berth_grpc_request_duration_seconds.
  explicit RpcBoundary(prometheus::Registry& registry);

  template <typename Request, typename Response, typename Handler>
  grpc::Status Unary(absl::string_view method, const Request& request, Response* response,
                     Handler&& handler) {
    absl::Time start = absl::Now();
    if (absl::Status admitted = Enter(); !admitted.ok()) return Finish(method, start, admitted);
    absl::StatusOr<Response> result = std::forward<Handler>(handler)(request);
    Exit();
    if (result.ok()) *response = *std::move(result);
    return Finish(method, start, result.status());
  }

  // For streaming handlers: Enter() before the work (UNAVAILABLE once draining),
  // Exit() after it, then Finish().
  absl::Status Enter();
  void Exit();

  // Refuses new calls from now on and waits up to `grace` for in-flight calls to
  // finish. Returns how many were still running at the deadline.
  int Drain(absl::Duration grace);

  // Records a finished call (unary or stream) and converts its status.
  grpc::Status Finish(absl::string_view method, absl::Time start, const absl::Status& status);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace berth
