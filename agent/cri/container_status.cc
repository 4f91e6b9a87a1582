// ContainerStatus and ListContainers: answered from memory (records copied
// under their locks), never from the kernel or the disk - kubelet relists every
// second (research/cri-v1.md §2).
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "nlohmann/json.hpp"
#include "os/status.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::StatusOr<v1::ContainerStatusResponse> CriService::ContainerStatus(
    const v1::ContainerStatusRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(request.container_id(), "container_id"));
  st::Container r = Snapshot(*container);
  if (r.phase() == st::CREATING) {
    return absl::NotFoundError(
        absl::StrCat("container_id: container `", r.id(), "` is still being created"));
  }
  v1::ContainerStatusResponse response;
  *response.mutable_status() = ToCriContainerStatus(r);
  ApplyShimHealth(*container, *response.mutable_status());
  if (request.verbose()) {
    nlohmann::json info = {
        {"pid", r.init_pid()},
        {"shimPid", r.shim_pid()},
        {"sandboxID", r.sandbox_id()},
        {"bundle", r.bundle()},
        {"rootfs", r.rootfs_dir() + "/rootfs"},
        {"cgroupPath", r.cgroup_path()},
        {"stopSignal", r.stop_signal()},
    };
    (*response.mutable_info())["info"] = info.dump();
  }
  return response;
}

absl::StatusOr<v1::ListContainersResponse> CriService::ListContainers(
    const v1::ListContainersRequest& request) {
  const v1::ContainerFilter& f = request.filter();
  std::string sandbox_id;
  if (!f.pod_sandbox_id().empty()) {
    BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> s,
                           registry_.LookupSandbox(f.pod_sandbox_id()));
    if (s == nullptr) return v1::ListContainersResponse();
    sandbox_id = s->id;
  }
  std::vector<std::shared_ptr<lifecycle::ContainerObject>> candidates;
  if (!f.id().empty()) {
    BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> c,
                           registry_.LookupContainer(f.id()));
    if (c != nullptr) candidates.push_back(std::move(c));
  } else if (!sandbox_id.empty()) {
    candidates = registry_.ContainersOf(sandbox_id);
  } else {
    candidates = registry_.Containers();
  }
  v1::ListContainersResponse response;
  for (const auto& c : candidates) {
    if (!sandbox_id.empty() && c->sandbox_id != sandbox_id) continue;
    st::Container r = Snapshot(*c);
    if (r.phase() == st::CREATING) continue;
    v1::Container out = ToCriContainer(r);
    {
      absl::MutexLock lock(&c->mu);
      if (!c->unresponsive.empty()) out.set_state(v1::CONTAINER_UNKNOWN);
    }
    if (f.has_state() && out.state() != f.state().state()) continue;
    if (!MatchesLabels(r.config().labels(), f.label_selector())) continue;
    *response.add_containers() = std::move(out);
  }
  return response;
}

absl::StatusOr<shim::v1::Response> CriService::CallContainerShim(lifecycle::ContainerObject& c,
                                                                 const shim::v1::Request& request,
                                                                 absl::Duration timeout) {
  const std::string socket = Snapshot(c).bundle() + "/shim.sock";
  absl::StatusOr<shim::v1::Response> response = shim::CallShim(socket, request, timeout);
  absl::MutexLock lock(&c.mu);
  if (response.ok()) {
    c.unresponsive.clear();
  } else if (response.status().code() == absl::StatusCode::kDeadlineExceeded) {
    c.unresponsive = std::string(response.status().message());
  }
  return response;
}

void CriService::ApplyShimHealth(const lifecycle::ContainerObject& c,
                                 v1::ContainerStatus& s) const {
  absl::MutexLock lock(&c.mu);
  if (c.unresponsive.empty()) return;
  // kubelet treats UNKNOWN as "cannot tell": it neither restarts nor counts
  // the container as running, and tries stop/remove again.
  s.set_state(v1::CONTAINER_UNKNOWN);
  s.set_reason("ShimUnresponsive");
  s.set_message(absl::StrCat("berth-shim did not answer: ", c.unresponsive));
}

}  // namespace berth
