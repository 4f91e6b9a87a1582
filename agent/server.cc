#include "agent/server.h"

#include <prometheus/text_serializer.h>

#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "agent/cri/grpc_services.h"
#include "agent/listen_address.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"

namespace berth {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;  // ExecSync answers up to 2 x 16 MiB.

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MutualTlsCredentials(
    const AgentOptions& o) {
  if (o.tls_cert.empty() || o.tls_key.empty() || o.tls_client_ca.empty()) {
    return absl::InvalidArgumentError(
        "--listen needs --tls-cert, --tls-key and --tls-client-ca: the remote listener takes "
        "only clients with a certificate signed by that CA (use --insecure-listen for plain "
        "TCP on loopback)");
  }
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  BERTH_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(o.tls_client_ca));
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  BERTH_ASSIGN_OR_RETURN(pair.private_key, ReadFile(o.tls_key));
  BERTH_ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(o.tls_cert));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

AgentServer::AgentServer(const AgentOptions& options) : options_(options) {}

AgentServer::~AgentServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Start(const AgentOptions& options) {
  std::unique_ptr<AgentServer> server(new AgentServer(options));
  BERTH_RETURN_IF_ERROR(server->Claim());
  BERTH_RETURN_IF_ERROR(server->Serve());
  return server;
}

// Directories, then the locks, then the socket path. The root lock keeps two
// agents off one state store; the socket lock closes the race between two
// agents that both find the same stale socket.
absl::Status AgentServer::Claim() {
  const std::string socket_dir = options_.socket_path.substr(0, options_.socket_path.rfind('/'));
  for (const std::string& dir : {options_.root_dir, options_.state_dir, socket_dir}) {
    if (dir.empty()) continue;
    BERTH_RETURN_IF_ERROR(MakeDirs(dir, 0711));
  }
  BERTH_ASSIGN_OR_RETURN(root_lock_, LockFile(options_.root_dir + "/berthd.lock"));
  absl::StatusOr<UniqueFd> socket_lock = LockFile(options_.socket_path + ".lock");
  if (!socket_lock.ok()) {
    return Annotate(socket_lock.status(),
                    absl::StrCat("another berthd serves `", options_.socket_path, "`"));
  }
  socket_lock_ = *std::move(socket_lock);
  BERTH_ASSIGN_OR_RETURN(SocketProbe probe, ProbeUnixSocket(options_.socket_path));
  switch (probe) {
    case SocketProbe::kLive:
      return absl::FailedPreconditionError(absl::StrCat(
          "`", options_.socket_path, "` is in use: another server accepts connections on it"));
    case SocketProbe::kStale:
      BERTH_LOG(WARNING) << "replacing stale socket " << options_.socket_path
                         << " (left by a process that is gone)";
      if (::unlink(options_.socket_path.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, "unlink", options_.socket_path);
      }
      break;
    case SocketProbe::kAbsent:
      break;
  }
  return absl::OkStatus();
}

absl::Status AgentServer::Serve() {
  registry_ = std::make_shared<prometheus::Registry>();
  BERTH_RETURN_IF_ERROR(ServeMetrics());
  boundary_ = std::make_unique<RpcBoundary>(*registry_);
  BERTH_ASSIGN_OR_RETURN(cri_, CriService::Create(options_, registry_.get()));
  {
    absl::MutexLock l(&metrics_mu_);
    collectables_ = cri_->Collectables();
    metrics_cri_ = cri_.get();
  }
  services_.push_back(NewRuntimeService(*cri_, *boundary_));
  services_.push_back(NewImageService(*cri_, *boundary_));
  health_ = std::make_unique<HealthService>(
      *boundary_, std::vector<std::string>{kRuntimeServiceName, kImageServiceName});

  // Reflection serves grpc.reflection.v1alpha (what grpcurl 1.8 speaks) for
  // every service registered below, from the generated descriptors.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  for (auto& service : services_) builder.RegisterService(service.get());
  builder.RegisterService(health_.get());

  // gRPC sets SO_REUSEPORT by default, which would let a second agent bind the
  // same TCP port and silently take half the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);

  // TCP listeners first and the unix socket last: once the socket accepts
  // connections, every listener is up (clients and tests wait on the socket).
  struct TcpPort {
    std::string address;
    int port = 0;
  };
  std::vector<TcpPort> tcp;
  tcp.reserve(2);  // AddListeningPort keeps a pointer to each port.
  if (!options_.listen.empty()) {
    BERTH_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(options_.listen));
    BERTH_ASSIGN_OR_RETURN(auto creds, MutualTlsCredentials(options_));
    tcp.push_back({hp.GrpcAddress()});
    builder.AddListeningPort(tcp.back().address, creds, &tcp.back().port);
  }
  if (!options_.insecure_listen.empty()) {
    BERTH_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(options_.insecure_listen));
    if (!IsLoopbackHost(hp.host)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--insecure-listen=", options_.insecure_listen,
          ": plain TCP is allowed on loopback addresses only; use --listen with mutual TLS"));
    }
    tcp.push_back({hp.GrpcAddress()});
    builder.AddListeningPort(tcp.back().address, grpc::InsecureServerCredentials(),
                             &tcp.back().port);
  }

  builder.AddListeningPort("unix:" + options_.socket_path, grpc::InsecureServerCredentials());

  // Claim() made sure the path is ours: whatever bind leaves there, we remove.
  socket_bound_ = true;
  // The socket is made by bind(); the umask keeps it 0660 from the first moment
  // instead of racing a chmod afterwards.
  mode_t old_umask = ::umask(0117);
  grpc_ = builder.BuildAndStart();
  ::umask(old_umask);
  if (!grpc_) {
    return absl::UnavailableError(
        absl::StrCat("gRPC could not listen on unix:", options_.socket_path,
                     tcp.empty() ? "" : " and the TCP listeners", " (see the log above)"));
  }
  if (::chmod(options_.socket_path.c_str(), 0660) != 0) {
    return ErrnoStatus(errno, "chmod", options_.socket_path);
  }
  BERTH_LOG(INFO) << "serving CRI v1 on unix:" << options_.socket_path;
  for (size_t i = 0; i < tcp.size(); ++i) {
    std::string bound =
        tcp[i].address.substr(0, tcp[i].address.rfind(':') + 1) + std::to_string(tcp[i].port);
    tcp_addresses_.push_back(bound);
    bool secure = i == 0 && !options_.listen.empty();
    if (secure) {
      BERTH_LOG(INFO) << "serving CRI v1 on " << bound << " (mutual TLS)";
    } else {
      BERTH_LOG(WARNING) << "serving CRI v1 on " << bound
                         << " over PLAIN TCP without authentication (--insecure-listen)";
    }
  }

  return absl::OkStatus();
}

absl::Status AgentServer::ServeMetrics() {
  if (options_.metrics_address.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start(options_.metrics_address, [this] { return MetricsPage(); });
  if (!server.ok()) {
    return absl::UnavailableError(absl::StrCat("metrics endpoint on ", options_.metrics_address,
                                               ": ", server.status().message()));
  }
  metrics_server_ = *std::move(server);
  BERTH_LOG(INFO) << "serving metrics on http://" << options_.metrics_address << "/metrics";
  return absl::OkStatus();
}

metrics::TextPage AgentServer::MetricsPage() {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  absl::MutexLock l(&metrics_mu_);
  for (const auto& c : collectables_) {
    for (prometheus::MetricFamily& f : c->Collect()) families.push_back(std::move(f));
  }
  std::string page = prometheus::TextSerializer().Serialize(families);
  // The container families (~11 MB at 500 pods) follow in pieces, not copied.
  if (metrics_cri_ == nullptr) return page;
  return metrics_cri_->ScrapeContainers(std::move(page));
}

void AgentServer::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  // Graceful: health turns NOT_SERVING (open Watch streams say so and end), new
  // calls answer UNAVAILABLE, and calls in flight get the grace period to finish.
  // Only then is gRPC shut down, with a short deadline: gRPC's own shutdown also
  // waits for idle client connections to close, which a connected kubelet never
  // does, so its deadline must not be the drain.
  if (health_) health_->Shutdown();
  if (boundary_) {
    int left = boundary_->Drain(absl::Seconds(options_.shutdown_grace_seconds));
    if (left > 0)
      BERTH_LOG(WARNING) << left
                         << " call(s) still running after the grace period: cancelling them";
  }
  if (grpc_) {
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    grpc_->Wait();
  }
  metrics_server_.reset();
  if (socket_bound_ && ::unlink(options_.socket_path.c_str()) != 0 && errno != ENOENT) {
    BERTH_LOG(WARNING) << ErrnoStatus(errno, "unlink", options_.socket_path);
  }
  socket_bound_ = false;
}

}  // namespace berth
