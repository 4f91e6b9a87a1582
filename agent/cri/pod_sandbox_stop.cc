// StopPodSandbox: every container of the pod killed, the pause process (if
// any) gone, the pinned namespaces released; the record says NOTREADY.
//
// CRI: "StopPodSandbox stops any running process that is part of the sandbox
// and reclaims network resources (e.g., IP addresses) allocated to the sandbox.
// If there are any running containers in the sandbox, they must be forcibly
// terminated. This call is idempotent, and must not return an error if all
// relevant resources have already been reclaimed." (api.proto, StopPodSandbox)
#include <signal.h>
#include <sys/mount.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "os/log.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::Status CriService::TeardownSandbox(lifecycle::SandboxObject& sandbox) {
  absl::Status first;
  auto keep = [&first](const absl::Status& s) {
    if (!s.ok() && first.ok()) first = s;
  };
  for (const auto& c : registry_.ContainersOf(sandbox.id)) {
    absl::MutexLock op(&c->op_mu);
    keep(KillContainer(*c, SIGKILL, absl::ZeroDuration()));
  }
  st::Sandbox r = Snapshot(sandbox);
  if (!r.pause_bundle().empty()) {
    absl::StatusOr<shim::v1::Response> deleted =
        shim::CallShim(r.pause_bundle() + "/shim.sock", shim::DeleteRequest());
    // No answer: never launched, deleted before, or crashed. Whatever is left
    // of it dies with its cgroup (DestroySandbox).
    if (!deleted.ok()) {
      BERTH_LOG(INFO) << "sandbox " << sandbox.id << ": pause: " << deleted.status();
    }
    if (r.pause_shim_pid() > 0) ReapChild(r.pause_shim_pid());
    keep(shim::RemovePauseRoot(r.pause_bundle()));
  }
  // DEL before the netns goes: the plugins remove the pod's end of the veth in
  // it. When DEL fails the namespaces stay pinned for the retry (Remove, or
  // recovery), so it can finish with everything as ADD left it.
  absl::Status network = TeardownPodNetwork(sandbox);
  keep(network);
  if (!r.ns_dir().empty() && network.ok()) {
    keep(Annotate(shim::UnpinNamespaces(r.ns_dir()), "pod namespaces"));
  }
  // The containers are dead; a process of the host still using the pod's
  // /dev/shm keeps the tmpfs alive, detached, until it lets go.
  if (const std::string shm = PodShmDir(r); !shm.empty()) {
    if (umount2(shm.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL &&
        errno != ENOENT) {
      keep(ErrnoStatus(errno, "unmount the pod's /dev/shm at", shm));
    }
  }
  return first;
}

absl::StatusOr<v1::StopPodSandboxResponse> CriService::StopPodSandbox(
    const v1::StopPodSandboxRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> sandbox,
                         registry_.LookupSandbox(request.pod_sandbox_id()));
  // Idempotent: a sandbox already removed is stopped (api.proto, above).
  if (sandbox == nullptr) return v1::StopPodSandboxResponse();
  absl::MutexLock op(&sandbox->op_mu);
  st::Phase phase = Snapshot(*sandbox).phase();
  if (phase == st::CREATING) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod_sandbox_id `", sandbox->id, "`: the sandbox is still being created"));
  }
  BERTH_RETURN_IF_ERROR(TeardownSandbox(*sandbox));
  if (phase == st::RUNNING) {
    BERTH_RETURN_IF_ERROR(Update(*sandbox, [](st::Sandbox& r) { r.set_phase(st::STOPPED); }));
    PublishContainerEvent(sandbox->id, sandbox->id, v1::CONTAINER_STOPPED_EVENT);
  }
  return v1::StopPodSandboxResponse();
}

}  // namespace berth
