// PodSandboxStats and ListPodSandboxStats: the pod cgroup's cpu and memory, the
// pod netns' interfaces, its task count, and the stats of its containers
// (research/cri-v1.md §8). Read when asked, like /metrics.
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "os/status.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

namespace {

void SetInterface(const metrics::NetInterfaceStats& i, v1::NetworkInterfaceUsage* out) {
  out->set_name(i.name);
  out->mutable_rx_bytes()->set_value(i.rx_bytes);
  out->mutable_rx_errors()->set_value(i.rx_errors);
  out->mutable_tx_bytes()->set_value(i.tx_bytes);
  out->mutable_tx_errors()->set_value(i.tx_errors);
}

}  // namespace

v1::PodSandboxStats CriService::StatsOf(const st::Sandbox& s) {
  v1::PodSandboxStats out;
  v1::PodSandboxAttributes* a = out.mutable_attributes();
  a->set_id(s.id());
  *a->mutable_metadata() = s.config().metadata();
  *a->mutable_labels() = s.config().labels();
  *a->mutable_annotations() = s.config().annotations();
  v1::LinuxPodSandboxStats* linux = out.mutable_linux();
  pid_t net_pid = s.pause_pid();
  for (const auto& co : registry_.ContainersOf(s.id())) {
    st::Container c = Snapshot(*co);
    if (c.phase() == st::CREATING) continue;
    if (net_pid <= 0 && c.phase() == st::RUNNING) net_pid = c.init_pid();
    *linux->add_containers() = StatsOf(c);
  }
  if (sampler_ == nullptr || s.phase() != st::RUNNING || s.cgroup_path().empty()) return out;
  absl::StatusOr<metrics::ContainerSample> sample = sampler_->Sample(TargetOf(s, net_pid).sample);
  if (!sample.ok()) return out;
  const int64_t now = NowNs();
  FillCpuMemory(s.id(), *sample, now, linux->mutable_cpu(), linux->mutable_memory());
  if (sample->cgroup.pids.current) {
    linux->mutable_process()->set_timestamp(now);
    linux->mutable_process()->mutable_process_count()->set_value(*sample->cgroup.pids.current);
  }
  if (!sample->network.empty()) {
    v1::NetworkUsage* net = linux->mutable_network();
    net->set_timestamp(now);
    const metrics::NetInterfaceStats* primary = &sample->network.front();
    for (const metrics::NetInterfaceStats& i : sample->network) {
      if (i.name == "eth0") primary = &i;  // CNI_IFNAME
      SetInterface(i, net->add_interfaces());
    }
    SetInterface(*primary, net->mutable_default_interface());
  }
  FillIo(*sample, now, linux->mutable_io());
  return out;
}

absl::StatusOr<v1::PodSandboxStatsResponse> CriService::PodSandboxStats(
    const v1::PodSandboxStatsRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> sandbox,
                         registry_.FindSandbox(request.pod_sandbox_id(), "pod_sandbox_id"));
  st::Sandbox s = Snapshot(*sandbox);
  if (s.phase() == st::CREATING) {
    return absl::NotFoundError(
        absl::StrCat("pod_sandbox_id: pod sandbox `", s.id(), "` is still being created"));
  }
  v1::PodSandboxStatsResponse response;
  *response.mutable_stats() = StatsOf(s);
  return response;
}

absl::StatusOr<v1::ListPodSandboxStatsResponse> CriService::ListPodSandboxStats(
    const v1::ListPodSandboxStatsRequest& request) {
  v1::ListPodSandboxRequest list;
  list.mutable_filter()->set_id(request.filter().id());
  *list.mutable_filter()->mutable_label_selector() = request.filter().label_selector();
  BERTH_ASSIGN_OR_RETURN(v1::ListPodSandboxResponse pods, ListPodSandbox(list));
  v1::ListPodSandboxStatsResponse response;
  for (const v1::PodSandbox& pod : pods.items()) {
    BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> so,
                           registry_.LookupSandbox(pod.id()));
    if (so != nullptr) *response.add_stats() = StatsOf(Snapshot(*so));
  }
  return response;
}

}  // namespace berth
