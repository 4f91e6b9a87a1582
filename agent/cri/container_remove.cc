// RemoveContainer: the shim told to delete (it kills init if it still runs and
// removes the container's cgroup), the rootfs unmounted and its dirs removed,
// the bundle removed, the record deleted. The log file stays: it is kubelet's
// (containerd keeps it too; kubelet deletes /var/log/pods itself).
//
// CRI: "RemoveContainer removes the container. If the container is running,
// the container must be forcibly removed. This call is idempotent, and must
// not return an error if the container has already been removed."
// (api.proto, RemoveContainer)
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "agent/rootfs/overlay.h"
#include "os/cgroup/cgroup.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

// Also the rollback of CreateContainer and the end of a create or remove cut
// short by a crash (recover.cc). Every step tolerates what is already gone; the
// record stays when one fails, so the next RemoveContainer finishes the job.
absl::Status CriService::DestroyContainer(lifecycle::ContainerObject& c) {
  BERTH_RETURN_IF_ERROR(Update(c, [](st::Container& r) { r.set_phase(st::REMOVING); }));
  st::Container r = Snapshot(c);
  if (!r.bundle().empty()) {
    absl::StatusOr<shim::v1::Response> deleted =
        shim::CallShim(r.bundle() + "/shim.sock", shim::DeleteRequest());
    // No shim (never started, crashed, or gone with a reboot): what it would
    // have cleaned is cleaned here; with the systemd driver, its scope too.
    if (!deleted.ok() || absl::EndsWith(r.cgroup_path(), ".scope")) {
      BERTH_RETURN_IF_ERROR(Annotate(RemoveLeafCgroup(r.cgroup_path()), "container cgroup"));
    }
    if (r.shim_pid() > 0) ReapChild(r.shim_pid());
  }
  if (!r.rootfs_dir().empty()) {
    BERTH_RETURN_IF_ERROR(rootfs::RemoveContainerRootfs(r.rootfs_dir()));
    BERTH_RETURN_IF_ERROR(RemoveTree(r.rootfs_dir()));
  }
  if (!r.bundle().empty()) BERTH_RETURN_IF_ERROR(RemoveTree(r.bundle()));
  BERTH_RETURN_IF_ERROR(store_->DeleteContainer(c.id));
  ForgetStats(c.id, TargetOf(r).sample);
  registry_.EraseContainer(c.id);
  registry_.Release(r.name());
  return absl::OkStatus();
}

absl::StatusOr<v1::RemoveContainerResponse> CriService::RemoveContainer(
    const v1::RemoveContainerRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.LookupContainer(request.container_id()));
  if (container == nullptr) return v1::RemoveContainerResponse();  // idempotent (above)
  absl::MutexLock op(&container->op_mu);
  st::Container r = Snapshot(*container);
  if (r.phase() == st::CREATING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container_id: container `", r.id(), "` is still being created"));
  }
  BERTH_RETURN_IF_ERROR(DestroyContainer(*container));
  PublishContainerEvent(r.id(), r.sandbox_id(), v1::CONTAINER_DELETED_EVENT);
  return v1::RemoveContainerResponse();
}

}  // namespace berth
