// How berthd learns that a container's init ended: the exit monitor
// (agent/runtime/monitor.h) holds a WaitRequest open on each shim; its answer,
// or the shim's exit file when the shim is gone, becomes the record's exit
// code, time and reason.
//
// CRI reasons (research/cri-v1.md §3): "OOMKilled" when the cgroup's OOM
// killer ended it (required), else "Completed" for exit 0 and "Error" for any
// other code, as containerd sets them.
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "os/log.h"
#include "shim/exit_file.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::Status CriService::WatchExit(const std::shared_ptr<lifecycle::ContainerObject>& container) {
  std::weak_ptr<lifecycle::ContainerObject> weak = container;
  const std::string socket = Snapshot(*container).bundle() + "/shim.sock";
  return monitor_->Watch(socket, [this, weak](absl::StatusOr<shim::v1::ExitStatus> exit) {
    if (std::shared_ptr<lifecycle::ContainerObject> c = weak.lock()) OnExit(*c, exit);
  });
}

void CriService::OnExit(lifecycle::ContainerObject& container,
                        const absl::StatusOr<shim::v1::ExitStatus>& reported) {
  {
    absl::MutexLock lock(&container.mu);
    container.unresponsive.clear();  // it answered, or is gone
  }
  st::Container r = Snapshot(container);
  shim::v1::ExitStatus exit;
  std::string message;
  if (reported.ok()) {
    exit = *reported;
  } else {
    // The shim went away without answering: its exit file says how init
    // ended, if init did end before the shim.
    absl::StatusOr<shim::v1::ExitStatus> file = shim::ReadExitFile(r.bundle() + "/exit");
    if (file.ok()) {
      exit = *file;
    } else {
      exit.set_exit_code(255);
      exit.set_exited_at_ns(NowNs());
      message = absl::StrCat("the container's shim is gone and left no exit status (",
                             reported.status().message(), ")");
    }
  }
  bool changed = false;
  absl::Status saved = Update(container, [&](st::Container& rec) {
    if (rec.phase() != st::CREATED && rec.phase() != st::RUNNING) return;
    changed = true;
    rec.set_phase(st::STOPPED);
    rec.set_exit_code(exit.exit_code());
    rec.set_finished_at_ns(exit.exited_at_ns() > 0 ? exit.exited_at_ns() : NowNs());
    if (!message.empty()) {
      rec.set_reason("Unknown");
      rec.set_message(message);
    } else if (exit.oom_killed()) {
      rec.set_reason("OOMKilled");
    } else {
      rec.set_reason(exit.exit_code() == 0 ? "Completed" : "Error");
    }
  });
  if (!saved.ok()) BERTH_LOG(ERROR) << "container " << container.id << ": " << saved;
  if (!changed) return;
  {
    // A start in flight sends it after its STARTED (container_start.cc).
    absl::MutexLock lock(&container.mu);
    if (container.starting) {
      container.stop_event_deferred = true;
      return;
    }
  }
  PublishContainerEvent(container.id, container.sandbox_id, v1::CONTAINER_STOPPED_EVENT);
}

}  // namespace berth
