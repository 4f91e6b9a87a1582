// AgentServer: berthd's listeners and services, from start to graceful stop.
//
// Start() takes the state locks, makes the directories, claims the unix socket
// (a stale one left by a crash is replaced; a live one refused), starts gRPC with
// the CRI, health and reflection services on the unix socket and the optional
// TCP listeners, and the /metrics endpoint. Shutdown() stops taking calls, lets
// in-flight calls finish (cancelling them after the grace period), and removes
// the socket.
//
//   BERTH_ASSIGN_OR_RETURN(auto server, AgentServer::Start(options));
//   ... wait for SIGTERM ...
//   server->Shutdown();
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server.h>
#include <prometheus/collectable.h>
#include <prometheus/registry.h>

#include <atomic>

#include "absl/status/statusor.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/rpc_boundary.h"
#include "agent/health_service.h"
#include "agent/metrics_server.h"
#include "agent/options.h"
#include "os/unique_fd.h"

namespace berth {

class AgentServer {
 public:
  static absl::StatusOr<std::unique_ptr<AgentServer>> Start(const AgentOptions& options);
  ~AgentServer();

  void Shutdown();

  // Addresses actually bound, e.g. "127.0.0.1:40123" when port 0 was asked.
  const std::vector<std::string>& tcp_addresses() const { return tcp_addresses_; }

 private:
  explicit AgentServer(const AgentOptions& options);
  absl::Status Claim();
  absl::Status Serve();
  absl::Status ServeMetrics();
  metrics::TextPage MetricsPage();

  AgentOptions options_;
  UniqueFd root_lock_;
  UniqueFd socket_lock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsServer> metrics_server_;
  // What /metrics serves; set once CriService exists (the server starts first,
  // so a taken port fails the start early).
  absl::Mutex metrics_mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_ ABSL_GUARDED_BY(metrics_mu_);
  CriService* metrics_cri_ ABSL_GUARDED_BY(metrics_mu_) = nullptr;
  std::unique_ptr<RpcBoundary> boundary_;
  std::unique_ptr<CriService> cri_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> grpc_;
  std::vector<std::string> tcp_addresses_;
  bool socket_bound_ = false;
  bool stopped_ = false;
};

}  // namespace berth
