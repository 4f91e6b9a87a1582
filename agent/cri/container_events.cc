// GetContainerEvents: a server stream of every container and sandbox
// lifecycle change from the moment the client subscribes (research/cri-v1.md
// §6). Each event carries the pod's status and all its containers' statuses,
// as containerd sends them; sandbox events use the sandbox id as container_id.
#include "agent/cri/cri_service.h"

namespace berth {

namespace v1 = runtime::v1;

absl::Status CriService::GetContainerEvents(
    const v1::GetEventsRequest&, const std::function<bool(const v1::ContainerEventResponse&)>& send,
    const std::function<bool()>& cancelled) {
  std::unique_ptr<lifecycle::EventHub::Subscription> sub = events_.Subscribe();
  while (!cancelled()) {
    // A short wait so a cancelled client is noticed within this long.
    absl::StatusOr<std::optional<v1::ContainerEventResponse>> event =
        sub->Next(absl::Milliseconds(500));
    if (!event.ok()) return event.status();
    if (!event->has_value()) continue;
    if (!send(**event)) break;
  }
  return absl::OkStatus();
}

}  // namespace berth
