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
    if (f.has_state() && CriState(r) != f.state().state()) continue;
    if (!MatchesLabels(r.config().labels(), f.label_selector())) continue;
    *response.add_containers() = ToCriContainer(r);
  }
  return response;
}

}  // namespace berth
