// What /metrics and the CRI stats RPCs sample: each ready pod's cgroup and each
// live container's, labelled as cAdvisor labels them (research/metrics.md §1).
// Built from record snapshots at scrape time; nothing is read on a timer.
#include "absl/strings/str_cat.h"
#include "agent/cri/agent_metrics.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "metrics/collector.h"
#include "metrics/process_collector.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

metrics::ContainerTarget CriService::TargetOf(const st::Sandbox& s, pid_t net_pid) const {
  metrics::ContainerTarget t;
  t.sample.pod = true;
  t.sample.cgroup_path = s.cgroup_path();
  const bool host_net =
      s.config().linux().security_context().namespace_options().network() == v1::NODE;
  t.sample.net_pid = host_net ? 0 : net_pid;
  t.sample.start_time = absl::FromUnixNanos(s.created_at_ns());
  t.labels.id = s.cgroup_path();
  t.labels.namespace_ = s.config().metadata().namespace_();
  t.labels.pod = s.config().metadata().name();
  return t;
}

metrics::ContainerTarget CriService::TargetOf(const st::Container& c) const {
  metrics::ContainerTarget t;
  t.sample.cgroup_path = c.cgroup_path();
  t.sample.upper_dir = c.rootfs_dir().empty() ? "" : c.rootfs_dir() + "/upper";
  t.sample.start_time =
      absl::FromUnixNanos(c.started_at_ns() != 0 ? c.started_at_ns() : c.created_at_ns());
  t.labels.container = c.config().metadata().name();
  t.labels.id = c.cgroup_path();
  t.labels.image = c.image_name();
  t.labels.name = c.id();
  return t;
}

// One pass over the containers and one over the sandboxes, each record read
// in place under its lock: a scrape of 500 pods neither copies 1000 records
// nor scans the container list once per pod.
std::vector<CriService::PodTargets> CriService::LiveTargets() const {
  struct Live {
    metrics::ContainerTarget target;
    std::string id;
    pid_t init_pid;
  };
  std::map<std::string, std::vector<Live>> by_pod;
  for (const std::shared_ptr<lifecycle::ContainerObject>& co : registry_.Containers()) {
    absl::MutexLock l(&co->mu);
    const st::Container& c = co->record;
    if (c.phase() != st::RUNNING || c.cgroup_path().empty()) continue;
    by_pod[co->sandbox_id].push_back({TargetOf(c), co->id, c.init_pid()});
  }
  std::vector<PodTargets> pods;
  for (const std::shared_ptr<lifecycle::SandboxObject>& so : registry_.Sandboxes()) {
    PodTargets pod;
    pid_t net_pid;
    {
      absl::MutexLock l(&so->mu);
      const st::Sandbox& s = so->record;
      if (s.phase() != st::RUNNING || s.cgroup_path().empty()) continue;
      net_pid = s.pause_pid();
      auto it = by_pod.find(so->id);
      if (it != by_pod.end()) {
        for (Live& c : it->second) {
          if (net_pid <= 0) net_pid = c.init_pid;
          c.target.labels.namespace_ = s.config().metadata().namespace_();
          c.target.labels.pod = s.config().metadata().name();
          pod.containers.push_back(std::move(c.target));
          pod.container_ids.push_back(std::move(c.id));
        }
      }
      pod.pod = TargetOf(s, net_pid);
    }
    pod.sandbox_id = so->id;
    pods.push_back(std::move(pod));
  }
  return pods;
}

StateCounts CriService::CountStates() const {
  std::map<std::string, double> sandboxes, containers;
  for (auto s : {v1::SANDBOX_READY, v1::SANDBOX_NOTREADY}) sandboxes[v1::PodSandboxState_Name(s)];
  for (auto c : {v1::CONTAINER_CREATED, v1::CONTAINER_RUNNING, v1::CONTAINER_EXITED,
                 v1::CONTAINER_UNKNOWN}) {
    containers[v1::ContainerState_Name(c)];
  }
  StateCounts out;
  // Read under each object's lock rather than copied out (Snapshot): a scrape
  // at 500 pods would copy 1000 records for a few fields.
  for (const auto& so : registry_.Sandboxes()) {
    absl::MutexLock l(&so->mu);
    const st::Sandbox& s = so->record;
    if (s.phase() == st::CREATING) continue;
    ++sandboxes[v1::PodSandboxState_Name(CriState(s))];
    if (s.pause_shim_pid() > 0 && s.phase() == st::RUNNING) ++out.shims;
  }
  for (const auto& co : registry_.Containers()) {
    absl::MutexLock l(&co->mu);
    const st::Container& c = co->record;
    if (c.phase() == st::CREATING) continue;
    ++containers[v1::ContainerState_Name(CriState(c))];
    // A shim serves its container from create until the container is removed.
    if (c.shim_pid() > 0) ++out.shims;
  }
  out.sandboxes.assign(sandboxes.begin(), sandboxes.end());
  out.containers.assign(containers.begin(), containers.end());
  return out;
}

std::vector<std::shared_ptr<prometheus::Collectable>> CriService::Collectables() {
  std::vector<std::shared_ptr<prometheus::Collectable>> out;
  out.push_back(std::make_shared<metrics::ProcessCollector>());
  out.push_back(std::make_shared<StateCollector>([this] { return CountStates(); }));
  return out;
}

metrics::TextPage CriService::ScrapeContainers(metrics::TextPage head) {
  if (collector_ == nullptr) return head;
  return collector_->Scrape(std::move(head));
}

}  // namespace berth
