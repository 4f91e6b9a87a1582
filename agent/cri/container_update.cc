// UpdateContainerResources and ReopenContainerLog: requests the shim carries
// out for a live container.
//
// CRI: "UpdateContainerResources updates ContainerConfig of the container
// synchronously. If runtime fails to transactionally update the requested
// resources, an error is returned." "ReopenContainerLog asks runtime to reopen
// the stdout/stderr log file for the container. ... If reopening the container
// log fails for any reason, an error is returned." (api.proto)
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "agent/runtime/container_spec.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::StatusOr<v1::UpdateContainerResourcesResponse> CriService::UpdateContainerResources(
    const v1::UpdateContainerResourcesRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(request.container_id(), "container_id"));
  if (request.has_windows()) return absl::InvalidArgumentError("windows: not a Linux setting");
  absl::MutexLock op(&container->op_mu);
  st::Container r = Snapshot(*container);
  if (r.phase() != st::CREATED && r.phase() != st::RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container_id: container `", r.id(), "` is ",
                                                      v1::ContainerState_Name(CriState(r))));
  }
  absl::StatusOr<shim::v1::Resources> resources = lifecycle::ToShimResources(request.linux());
  if (!resources.ok()) return Annotate(resources.status(), "linux");
  shim::v1::Request update;
  *update.mutable_update()->mutable_resources() = *resources;
  BERTH_RETURN_IF_ERROR(Annotate(UpdateScope(r.cgroup_path(), *resources), "linux"));
  BERTH_RETURN_IF_ERROR(CallContainerShim(*container, update).status());
  BERTH_RETURN_IF_ERROR(
      Update(*container, [&](st::Container& rec) { *rec.mutable_resources() = request.linux(); }));
  return v1::UpdateContainerResourcesResponse();
}

absl::StatusOr<v1::ReopenContainerLogResponse> CriService::ReopenContainerLog(
    const v1::ReopenContainerLogRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(request.container_id(), "container_id"));
  st::Container r = Snapshot(*container);
  if (r.phase() != st::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container_id: container `", r.id(), "` is not running"));
  }
  if (r.log_path().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("container_id: container `", r.id(), "` has no log_path"));
  }
  shim::v1::Request reopen;
  reopen.mutable_reopen_log();
  BERTH_RETURN_IF_ERROR(CallContainerShim(*container, reopen).status());
  return v1::ReopenContainerLogResponse();
}

}  // namespace berth
