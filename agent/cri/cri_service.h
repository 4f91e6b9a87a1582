// CriService: the CRI v1 handlers as plain C++ (no gRPC types but the generated
// messages). One file per RPC beside this header: version.cc, status.cc, ...
// Each returns absl::StatusOr<Response>; the gRPC services in grpc_services.cc
// route every call here through the RpcBoundary.
//
// CRI semantics: https://github.com/kubernetes/cri-api/blob/master/pkg/apis/runtime/v1/api.proto
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/status/statusor.h"
#include "agent/cri/agent_metrics.h"
#include "agent/cri/api.h"
#include "agent/images/images.h"
#include "agent/network/cni.h"
#include "agent/options.h"
#include "agent/runtime/events.h"
#include "agent/runtime/monitor.h"
#include "agent/runtime/objects.h"
#include "agent/runtime/store.h"
#include "agent/store/db.h"
#include "agent/streaming/server.h"
#include "metrics/collector.h"
#include "metrics/sampler.h"
#include "os/cgroup/layout.h"
#include "prometheus/collectable.h"
#include "prometheus/registry.h"
#include "shim/client.h"

namespace berth {

class CriService : public streaming::StreamRuntime {
 public:
  // Opens the state database (<root>/berth.db) and the image store
  // (<root>/images), imports the OCI layouts of options.import_dirs, and
  // recovers the sandboxes and containers of a previous run (recover.cc).
  // `metrics` receives berthd's own families (agent_metrics.h); may be null.
  static absl::StatusOr<std::unique_ptr<CriService>> Create(
      AgentOptions options, prometheus::Registry* metrics = nullptr);
  ~CriService();

  // Pod sandboxes (pod_sandbox_*.cc).
  absl::StatusOr<runtime::v1::RunPodSandboxResponse> RunPodSandbox(
      const runtime::v1::RunPodSandboxRequest& request);
  absl::StatusOr<runtime::v1::StopPodSandboxResponse> StopPodSandbox(
      const runtime::v1::StopPodSandboxRequest& request);
  absl::StatusOr<runtime::v1::RemovePodSandboxResponse> RemovePodSandbox(
      const runtime::v1::RemovePodSandboxRequest& request);
  absl::StatusOr<runtime::v1::PodSandboxStatusResponse> PodSandboxStatus(
      const runtime::v1::PodSandboxStatusRequest& request);
  absl::StatusOr<runtime::v1::ListPodSandboxResponse> ListPodSandbox(
      const runtime::v1::ListPodSandboxRequest& request);

  // Containers (container_*.cc).
  absl::StatusOr<runtime::v1::CreateContainerResponse> CreateContainer(
      const runtime::v1::CreateContainerRequest& request);
  absl::StatusOr<runtime::v1::StartContainerResponse> StartContainer(
      const runtime::v1::StartContainerRequest& request);
  absl::StatusOr<runtime::v1::StopContainerResponse> StopContainer(
      const runtime::v1::StopContainerRequest& request);
  absl::StatusOr<runtime::v1::RemoveContainerResponse> RemoveContainer(
      const runtime::v1::RemoveContainerRequest& request);
  absl::StatusOr<runtime::v1::ListContainersResponse> ListContainers(
      const runtime::v1::ListContainersRequest& request);
  absl::StatusOr<runtime::v1::ContainerStatusResponse> ContainerStatus(
      const runtime::v1::ContainerStatusRequest& request);
  absl::StatusOr<runtime::v1::UpdateContainerResourcesResponse> UpdateContainerResources(
      const runtime::v1::UpdateContainerResourcesRequest& request);
  absl::StatusOr<runtime::v1::ReopenContainerLogResponse> ReopenContainerLog(
      const runtime::v1::ReopenContainerLogRequest& request);
  absl::StatusOr<runtime::v1::ExecSyncResponse> ExecSync(
      const runtime::v1::ExecSyncRequest& request);
  // Streaming (container_stream.cc): URLs on the streaming server.
  absl::StatusOr<runtime::v1::ExecResponse> Exec(const runtime::v1::ExecRequest& request);
  absl::StatusOr<runtime::v1::PortForwardResponse> PortForward(
      const runtime::v1::PortForwardRequest& request);
  absl::StatusOr<runtime::v1::AttachResponse> Attach(const runtime::v1::AttachRequest& request);
  // streaming::StreamRuntime: what the sessions ask for.
  absl::StatusOr<UniqueFd> StartExec(const streaming::ExecTarget& target,
                                     const int stdio[3]) override;
  absl::StatusOr<UniqueFd> DialPod(const std::string& sandbox_id, uint16_t port) override;
  absl::StatusOr<UniqueFd> OpenTerminal(const streaming::ExecTarget& target) override;
  absl::StatusOr<UniqueFd> StartAttach(const streaming::ExecTarget& target,
                                       const int stdio[3]) override;

  // Runtime configuration (runtime_config.cc).
  absl::StatusOr<runtime::v1::UpdateRuntimeConfigResponse> UpdateRuntimeConfig(
      const runtime::v1::UpdateRuntimeConfigRequest& request);
  absl::StatusOr<runtime::v1::RuntimeConfigResponse> RuntimeConfig(
      const runtime::v1::RuntimeConfigRequest& request);

  // GetContainerEvents (events.cc): sends every event through `send` until it
  // returns false (the client went away) or `cancelled` says so.
  absl::Status GetContainerEvents(
      const runtime::v1::GetEventsRequest& request,
      const std::function<bool(const runtime::v1::ContainerEventResponse&)>& send,
      const std::function<bool()>& cancelled);

  // Stats and metrics (container_stats.cc, pod_sandbox_stats.cc,
  // pod_sandbox_metrics.cc), sampled when asked like /metrics.
  absl::StatusOr<runtime::v1::ContainerStatsResponse> ContainerStats(
      const runtime::v1::ContainerStatsRequest& request);
  absl::StatusOr<runtime::v1::ListContainerStatsResponse> ListContainerStats(
      const runtime::v1::ListContainerStatsRequest& request);
  absl::StatusOr<runtime::v1::PodSandboxStatsResponse> PodSandboxStats(
      const runtime::v1::PodSandboxStatsRequest& request);
  absl::StatusOr<runtime::v1::ListPodSandboxStatsResponse> ListPodSandboxStats(
      const runtime::v1::ListPodSandboxStatsRequest& request);
  absl::StatusOr<runtime::v1::ListMetricDescriptorsResponse> ListMetricDescriptors(
      const runtime::v1::ListMetricDescriptorsRequest& request);
  absl::StatusOr<runtime::v1::ListPodSandboxMetricsResponse> ListPodSandboxMetrics(
      const runtime::v1::ListPodSandboxMetricsRequest& request);

  // What /metrics serves beside the gRPC families: berthd's process metrics
  // and counts by state (metrics_targets.cc), and the container_* families as
  // text (ScrapeContainers; `head` alone without cgroups).
  std::vector<std::shared_ptr<prometheus::Collectable>> Collectables();
  // `head` (the agent's own families) comes first in the same buffer.
  metrics::TextPage ScrapeContainers(metrics::TextPage head);

  absl::StatusOr<runtime::v1::VersionResponse> Version(const runtime::v1::VersionRequest& request);
  absl::StatusOr<runtime::v1::StatusResponse> Status(const runtime::v1::StatusRequest& request);

  absl::StatusOr<runtime::v1::ListImagesResponse> ListImages(
      const runtime::v1::ListImagesRequest& request);
  absl::StatusOr<runtime::v1::ImageStatusResponse> ImageStatus(
      const runtime::v1::ImageStatusRequest& request);
  // `cancelled` (the gRPC call's) ends the pull early: images::ImageManager::Pull.
  absl::StatusOr<runtime::v1::PullImageResponse> PullImage(
      const runtime::v1::PullImageRequest& request, const images::Cancelled& cancelled = nullptr);
  absl::StatusOr<runtime::v1::RemoveImageResponse> RemoveImage(
      const runtime::v1::RemoveImageRequest& request);
  absl::StatusOr<runtime::v1::ImageFsInfoResponse> ImageFsInfo(
      const runtime::v1::ImageFsInfoRequest& request);

  const AgentOptions& options() const { return options_; }
  images::ImageManager& images() { return *images_; }

 private:
  explicit CriService(AgentOptions options) : options_(std::move(options)) {}

  // Records (records.cc): change under the object's mu, then save; events.
  using SandboxEdit = std::function<void(lifecycle::state::Sandbox&)>;
  using ContainerEdit = std::function<void(lifecycle::state::Container&)>;
  absl::Status Update(lifecycle::SandboxObject& sandbox, const SandboxEdit& edit);
  absl::Status Update(lifecycle::ContainerObject& container, const ContainerEdit& edit);
  lifecycle::state::Sandbox Snapshot(const lifecycle::SandboxObject& sandbox) const;
  lifecycle::state::Container Snapshot(const lifecycle::ContainerObject& container) const;
  void PublishContainerEvent(const std::string& container_id, const std::string& sandbox_id,
                             runtime::v1::ContainerEventType type);

  // Pieces shared by several verbs.
  absl::Status TeardownSandbox(lifecycle::SandboxObject& sandbox);     // pod_sandbox_stop.cc
  absl::Status SetupPodNetwork(lifecycle::SandboxObject& sandbox);     // pod_network.cc
  absl::Status TeardownPodNetwork(lifecycle::SandboxObject& sandbox);  // pod_network.cc
  absl::Status CheckPodNetwork(lifecycle::SandboxObject& sandbox);     // pod_network.cc
  absl::Status DestroySandbox(lifecycle::SandboxObject& sandbox);      // pod_sandbox_remove.cc
  absl::Status KillContainer(lifecycle::ContainerObject& container, int signal,
                             absl::Duration timeout);                    // container_stop.cc
  absl::Status DestroyContainer(lifecycle::ContainerObject& container);  // container_remove.cc
  absl::Status WatchExit(const std::shared_ptr<lifecycle::ContainerObject>& container);
  void OnExit(lifecycle::ContainerObject& container,
              const absl::StatusOr<shim::v1::ExitStatus>& exit);  // container_exit.cc
  absl::Status Recover();                                         // recover.cc
  // The container's record; FAILED_PRECONDITION naming container_id unless it
  // is running (exec, attach).
  absl::StatusOr<lifecycle::state::Container> RunningRecord(
      const lifecycle::ContainerObject& container) const;
  // The process an exec runs in a running container's record: its own, with `cmd`.
  static absl::StatusOr<shim::v1::Process> ExecProcess(const lifecycle::state::Container& r,
                                                       const std::vector<std::string>& cmd);

  // CallShim for container `c`'s shim, noting on `c` whether it answered in
  // time (ContainerObject::unresponsive).
  absl::StatusOr<shim::v1::Response> CallContainerShim(
      lifecycle::ContainerObject& c, const shim::v1::Request& request,
      absl::Duration timeout = shim::kShimCallTimeout);
  // The CRI state, reason and message of `r` as the shim's answers last left
  // it: UNKNOWN while the shim does not answer.
  void ApplyShimHealth(const lifecycle::ContainerObject& c, runtime::v1::ContainerStatus& s) const;

  // The cgroup hierarchies (detected at Create); an error when there are none.
  absl::StatusOr<const CgroupLayout*> Cgroups() const;

  // The cgroup driver (cgroup_driver.cc): cgroupfs, or systemd's slices and scopes.
  absl::Status ResolveCgroupDriver();
  // A pod's cgroup path from its cgroup_parent (empty: berthd's own under
  // --cgroup-root); INVALID_ARGUMENT naming the field when the parent is not
  // in the driver's form.
  absl::StatusOr<std::string> PodCgroupPath(const std::string& pod_id,
                                            const std::string& parent) const;
  // The cgroup of container (or pause) `id` in pod cgroup `pod_path`, by the
  // driver that made the pod's: `<pod>/<id>`, or in a slice the scope
  // `<pod>/berth-<id>.scope`.
  std::string ChildCgroupPath(const std::string& pod_path, const std::string& id) const;
  // A cgroup path's directory on the unified (first) hierarchy.
  std::string UnifiedDir(const std::string& path) const;
  absl::Status MakePodCgroup(const std::string& path);
  absl::Status RemovePodCgroup(const std::string& path);
  // Kills what is in a container's or pause's cgroup, removes it, and with the
  // systemd driver stops its scope.
  absl::Status RemoveLeafCgroup(const std::string& path);
  // A scope's placeholder process, killed when the hold ends (after the shim
  // has moved the container's init in).
  class ScopeHold {
   public:
    ScopeHold() = default;
    ScopeHold(const ScopeHold&) = delete;
    ScopeHold& operator=(const ScopeHold&) = delete;
    ~ScopeHold();

   private:
    friend class CriService;
    pid_t pid_ = -1;
  };
  // With the systemd driver, makes the scope for the leaf cgroup `path` with
  // `r` as unit properties; with cgroupfs, nothing (the shim makes the dir).
  // With the systemd driver, gives the scope of `path` what an update sets,
  // as unit properties (a daemon-reload then keeps it); else nothing.
  absl::Status UpdateScope(const std::string& path, const shim::v1::Resources& r);
  absl::StatusOr<std::unique_ptr<ScopeHold>> MakeScope(const std::string& path,
                                                       const shim::v1::Resources& r);
  // Shims berthd launched are its children: reaped after their delete. Shims
  // of a previous berthd are not (their parent is gone); they are no one's to
  // wait for here.
  void AddChild(pid_t pid);
  void ReapChild(pid_t pid);

  // Metrics targets (metrics_targets.cc) and stats (container_stats.cc).
  struct PodTargets {
    std::string sandbox_id;
    metrics::ContainerTarget pod;
    std::vector<metrics::ContainerTarget> containers;  // running ones
    std::vector<std::string> container_ids;            // parallel to containers
  };
  std::vector<PodTargets> LiveTargets() const;
  metrics::ContainerTarget TargetOf(const lifecycle::state::Sandbox& s, pid_t net_pid) const;
  // A container's target; its pod labels (namespace, pod) are the caller's to fill.
  metrics::ContainerTarget TargetOf(const lifecycle::state::Container& c) const;
  StateCounts CountStates() const;
  runtime::v1::ContainerStats StatsOf(const lifecycle::state::Container& c);
  runtime::v1::PodSandboxStats StatsOf(const lifecycle::state::Sandbox& s);
  void FillCpuMemory(const std::string& key, const metrics::ContainerSample& s, int64_t now,
                     runtime::v1::CpuUsage* cpu, runtime::v1::MemoryUsage* memory);
  void FillIo(const metrics::ContainerSample& s, int64_t now, runtime::v1::IoUsage* io);
  // What stats keep for a removed container or sandbox (cpu reading, open
  // cgroup files, layer usage) is dropped with it (container_remove.cc,
  // pod_sandbox_remove.cc).
  void ForgetStats(const std::string& id, const metrics::SampleTarget& target);

  std::string SandboxStateDir(const std::string& id) const;
  std::string ContainerBundle(const std::string& id) const;
  std::string ContainerRootfsDir(const std::string& id) const;

  AgentOptions options_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<images::ImageManager> images_;
  std::unique_ptr<lifecycle::RuntimeStore> store_;
  lifecycle::Registry registry_;
  lifecycle::EventHub events_;
  absl::StatusOr<CgroupLayout> cgroups_ = absl::UnavailableError("not detected yet");
  bool systemd_cgroups_ = false;
  absl::Mutex children_mu_;
  std::set<pid_t> children_ ABSL_GUARDED_BY(children_mu_);
  std::unique_ptr<network::Cni> cni_;
  std::unique_ptr<metrics::Sampler> sampler_;               // null without cgroups
  std::unique_ptr<metrics::ContainerCollector> collector_;  // null without cgroups
  std::unique_ptr<AgentMetrics> agent_metrics_;             // null without a registry
  // The previous CPU reading per container or pod id, for usage_nano_cores.
  struct CpuPoint {
    uint64_t usage_ns;
    int64_t at_ns;
  };
  absl::Mutex cpu_mu_;
  std::map<std::string, CpuPoint> cpu_points_ ABSL_GUARDED_BY(cpu_mu_);
  absl::Mutex config_mu_;
  std::string pod_cidr_ ABSL_GUARDED_BY(config_mu_);
  // State rows start-up could not read (recover.cc), said by Status.
  mutable absl::Mutex unreadable_mu_;
  std::vector<std::string> unreadable_ ABSL_GUARDED_BY(unreadable_mu_);
  // Last: its thread calls back into the members above.
  std::unique_ptr<lifecycle::ExitMonitor> monitor_;
  // Its sessions call StartExec and DialPod: stopped first in ~CriService.
  std::unique_ptr<streaming::StreamingServer> streaming_;
};

// The state database's schema, one entry per version (agent/store/db.h).
const std::vector<std::string>& BerthSchema();

// An image as CRI shows it.
runtime::v1::Image ToCriImage(const images::ImageRecord& record);

// Pod bandwidth annotations (kubernetes.io/{ingress,egress}-bandwidth), as
// the CNI bandwidth plugin takes them (pod_network.cc).
absl::StatusOr<uint64_t> ParseBandwidth(absl::string_view text);
absl::Status CheckPodBandwidth(const runtime::v1::PodSandboxConfig& config);

// The shim binary berthd launches: --shim-path, else berth-shim beside berthd.
std::string ShimPath(const AgentOptions& options);

}  // namespace berth
