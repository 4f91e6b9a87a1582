// RemovePodSandbox: the pod and everything of it gone - containers (forcibly),
// pause, namespaces, files, the cgroup berthd made - and its record deleted.
//
// CRI: "RemovePodSandbox removes the sandbox. If there are any running
// containers in the sandbox, they must be forcibly terminated and removed.
// This call is idempotent, and must not return an error if the sandbox has
// already been removed." (api.proto, RemovePodSandbox)
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "os/cgroup/cgroup.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

// Also the rollback of RunPodSandbox and the end of a removal cut short by a
// crash (recover.cc): it derives every step from the record and each step
// tolerates what is already gone. The record stays when a step fails, so a
// retry can finish the job.
absl::Status CriService::DestroySandbox(lifecycle::SandboxObject& sandbox) {
  BERTH_RETURN_IF_ERROR(TeardownSandbox(sandbox));
  for (const auto& c : registry_.ContainersOf(sandbox.id)) {
    absl::MutexLock op(&c->op_mu);
    BERTH_RETURN_IF_ERROR(DestroyContainer(*c));
  }
  st::Sandbox r = Snapshot(sandbox);
  // The pause process's cgroup normally went with its shim; the pod's own goes
  // here when berthd made it (an existing cgroup_parent is kubelet's).
  if (!r.pause_bundle().empty()) {
    BERTH_RETURN_IF_ERROR(
        Annotate(RemoveLeafCgroup(ChildCgroupPath(r.cgroup_path(), r.id())), "pause cgroup"));
  }
  if (r.cgroup_owned() && !r.cgroup_path().empty()) {
    BERTH_RETURN_IF_ERROR(Annotate(RemovePodCgroup(r.cgroup_path()), "pod cgroup"));
  }
  if (!r.files_dir().empty()) BERTH_RETURN_IF_ERROR(RemoveTree(r.files_dir()));
  BERTH_RETURN_IF_ERROR(store_->DeleteSandbox(sandbox.id));
  ForgetStats(sandbox.id, TargetOf(r, 0).sample);
  registry_.EraseSandbox(sandbox.id);
  registry_.Release(r.name());
  return absl::OkStatus();
}

absl::StatusOr<v1::RemovePodSandboxResponse> CriService::RemovePodSandbox(
    const v1::RemovePodSandboxRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> sandbox,
                         registry_.LookupSandbox(request.pod_sandbox_id()));
  if (sandbox == nullptr) return v1::RemovePodSandboxResponse();  // idempotent (above)
  absl::MutexLock op(&sandbox->op_mu);
  st::Phase phase = Snapshot(*sandbox).phase();
  if (phase == st::CREATING) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod_sandbox_id `", sandbox->id, "`: the sandbox is still being created"));
  }
  BERTH_RETURN_IF_ERROR(Update(*sandbox, [](st::Sandbox& r) { r.set_phase(st::REMOVING); }));
  BERTH_RETURN_IF_ERROR(DestroySandbox(*sandbox));
  PublishContainerEvent(sandbox->id, sandbox->id, v1::CONTAINER_DELETED_EVENT);
  return v1::RemovePodSandboxResponse();
}

}  // namespace berth
