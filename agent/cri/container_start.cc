// StartContainer: the shim lets the held init exec the container's process.
//
// CRI: "StartContainer starts the container." (api.proto, StartContainer). A
// start that fails (the program is missing, say) leaves the container EXITED
// with reason "StartError" and exit code 128, as containerd reports it, and the
// error naming what failed goes back to the caller.
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::StatusOr<v1::StartContainerResponse> CriService::StartContainer(
    const v1::StartContainerRequest& request) {
  const absl::Time begin = absl::Now();
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(request.container_id(), "container_id"));
  absl::MutexLock op(&container->op_mu);
  st::Container r = Snapshot(*container);
  if (r.phase() != st::CREATED) {
    return absl::FailedPreconditionError(absl::StrCat("container_id: container `", r.id(), "` is ",
                                                      v1::ContainerState_Name(CriState(r)),
                                                      ", not CONTAINER_CREATED"));
  }
  {
    absl::MutexLock lock(&container->mu);
    container->starting = true;
  }
  // Whatever way this ends: the exit's STOPPED, if the monitor held it back, after ours.
  bool started_event = false;
  absl::Cleanup events = [&] {
    bool deferred;
    {
      absl::MutexLock lock(&container->mu);
      container->starting = false;
      deferred = std::exchange(container->stop_event_deferred, false);
    }
    if (started_event) PublishContainerEvent(r.id(), r.sandbox_id(), v1::CONTAINER_STARTED_EVENT);
    if (deferred) PublishContainerEvent(r.id(), r.sandbox_id(), v1::CONTAINER_STOPPED_EVENT);
  };
  absl::StatusOr<shim::v1::Response> started = CallContainerShim(*container, shim::StartRequest());
  const int64_t now = NowNs();
  if (!started.ok()) {
    bool already_stopped = false;
    BERTH_RETURN_IF_ERROR(Update(*container, [&](st::Container& rec) {
      // The exit monitor may have seen init die first (the exec failed in it)
      // and called it an Error: a process that never started is a StartError.
      already_stopped = rec.phase() == st::STOPPED;
      if (rec.phase() != st::CREATED && !(already_stopped && rec.started_at_ns() == 0)) return;
      rec.set_phase(st::STOPPED);
      rec.set_exit_code(128);
      rec.set_finished_at_ns(now);
      rec.set_reason("StartError");
      rec.set_message(std::string(started.status().message()));
    }));
    if (!already_stopped) {  // else the monitor's, held back (the cleanup above sends it)
      PublishContainerEvent(r.id(), r.sandbox_id(), v1::CONTAINER_STOPPED_EVENT);
    }
    return Annotate(started.status(), absl::StrCat("start container `", r.id(), "`"));
  }
  BERTH_RETURN_IF_ERROR(Update(*container, [&](st::Container& rec) {
    rec.set_started_at_ns(now);
    // The exit monitor may already have seen a short-lived process end.
    if (rec.phase() == st::CREATED) rec.set_phase(st::RUNNING);
  }));
  started_event = true;  // sent by the cleanup, before a held-back STOPPED
  if (agent_metrics_ != nullptr) agent_metrics_->ContainerStarted(absl::Now() - begin);
  return v1::StartContainerResponse();
}

}  // namespace berth
