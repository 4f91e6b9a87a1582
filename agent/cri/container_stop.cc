// StopContainer: the stop signal, then SIGKILL once the timeout has passed.
//
// CRI: "StopContainer stops a running container with a grace period (i.e.,
// timeout). This call is idempotent, and must not return an error if the
// container has already been stopped." (api.proto, StopContainer). The signal
// is the config's stop_signal, else the image's StopSignal, else SIGTERM
// (resolved at create: agent/runtime/container_spec.h); timeout 0 kills at once.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "os/cgroup/cgroup.h"
#include "os/log.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth {
namespace {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

// How long to wait for a SIGKILLed container's exit to be reported.
constexpr absl::Duration kKillWait = absl::Seconds(10);

// Waits until the record says STOPPED (or REMOVING: a RemoveContainer beside
// this stop went ahead) or `deadline` passes; whether it stopped.
bool WaitStopped(lifecycle::ContainerObject& c, absl::Time deadline) {
  absl::MutexLock lock(&c.mu);
  auto stopped = [&] {
    return c.record.phase() == st::STOPPED || c.record.phase() == st::REMOVING;
  };
  while (!stopped()) {
    if (c.exited.WaitWithDeadline(&c.mu, deadline)) return stopped();
  }
  return true;
}

}  // namespace

absl::Status CriService::KillContainer(lifecycle::ContainerObject& c, int signal,
                                       absl::Duration timeout) {
  st::Container r = Snapshot(c);
  if (r.phase() != st::CREATED && r.phase() != st::RUNNING) return absl::OkStatus();
  if (signal != SIGKILL && timeout > absl::ZeroDuration()) {
    absl::StatusOr<shim::v1::Response> sent = CallContainerShim(c, shim::KillRequest(signal));
    if (!sent.ok()) BERTH_LOG(WARNING) << "container " << c.id << ": " << sent.status();
    if (WaitStopped(c, absl::Now() + timeout)) return absl::OkStatus();
  }
  // SIGKILL to everything in the container's cgroup: its init's children too,
  // when it shares the pod's or the host's PID namespace.
  absl::StatusOr<shim::v1::Response> killed =
      CallContainerShim(c, shim::KillRequest(SIGKILL, /*all=*/true));
  if (!killed.ok()) {
    BERTH_LOG(WARNING) << "container " << c.id << ": " << killed.status();
    // The shim cannot do it: the whole cgroup, from here (cgroup.kill on v2;
    // freeze, kill every pid, thaw on v1). The shim records the exit when it
    // can again.
    if (absl::StatusOr<const CgroupLayout*> layout = Cgroups();
        layout.ok() && !r.cgroup_path().empty()) {
      absl::StatusOr<Cgroup> cg = Cgroup::Open(**layout, r.cgroup_path());
      if (cg.ok()) {
        absl::Status k = cg->Kill();
        if (!k.ok()) BERTH_LOG(WARNING) << "container " << c.id << ": kill its cgroup: " << k;
      }
    }
  }
  if (WaitStopped(c, absl::Now() + kKillWait)) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat(
      "container `", c.id, "` did not exit within ", absl::FormatDuration(kKillWait), " of SIGKILL",
      killed.ok() ? "" : absl::StrCat(" (", killed.status().message(), ")")));
}

absl::StatusOr<v1::StopContainerResponse> CriService::StopContainer(
    const v1::StopContainerRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.LookupContainer(request.container_id()));
  // Idempotent: a container already removed is stopped (api.proto, above).
  if (container == nullptr) return v1::StopContainerResponse();
  if (request.timeout() < 0) return absl::InvalidArgumentError("timeout: negative");
  st::Container r;
  {
    absl::MutexLock op(&container->op_mu);
    r = Snapshot(*container);
  }
  if (r.phase() == st::CREATING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container_id: container `", r.id(), "` is still being created"));
  }
  // The grace period is waited without op_mu: a second stop with a shorter
  // timeout (kubelet's force delete), RemoveContainer or StopPodSandbox then
  // escalates to SIGKILL at once instead of queueing behind this one, as
  // containerd lets it. Signals and waits need no lock; the exit is recorded
  // by the monitor.
  BERTH_RETURN_IF_ERROR(KillContainer(*container, r.stop_signal() > 0 ? r.stop_signal() : SIGTERM,
                                      absl::Seconds(ClampTimeoutSeconds(request.timeout()))));
  return v1::StopContainerResponse();
}

}  // namespace berth
