// The one way a sandbox or container record changes: under the object's mu,
// with its version bumped, then written to the store outside the lock (the
// store keeps the newest version; agent/runtime/store.h). And the events each
// change sends to GetContainerEvents subscribers.
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::Status CriService::Update(lifecycle::SandboxObject& s, const SandboxEdit& edit) {
  st::Sandbox copy;
  uint64_t version;
  {
    absl::MutexLock lock(&s.mu);
    edit(s.record);
    version = ++s.version;
    copy = s.record;
  }
  return store_->SaveSandbox(copy, version);
}

absl::Status CriService::Update(lifecycle::ContainerObject& c, const ContainerEdit& edit) {
  st::Container copy;
  uint64_t version;
  {
    absl::MutexLock lock(&c.mu);
    edit(c.record);
    version = ++c.version;
    copy = c.record;
    if (copy.phase() == st::STOPPED || copy.phase() == st::REMOVING) c.exited.SignalAll();
  }
  return store_->SaveContainer(copy, version);
}

st::Sandbox CriService::Snapshot(const lifecycle::SandboxObject& s) const {
  absl::MutexLock lock(&s.mu);
  return s.record;
}

st::Container CriService::Snapshot(const lifecycle::ContainerObject& c) const {
  absl::MutexLock lock(&c.mu);
  return c.record;
}

void CriService::PublishContainerEvent(const std::string& container_id,
                                       const std::string& sandbox_id, v1::ContainerEventType type) {
  if (events_.subscribers() == 0) return;
  v1::ContainerEventResponse event;
  event.set_container_id(container_id);
  event.set_container_event_type(type);
  event.set_created_at(NowNs());
  absl::StatusOr<std::shared_ptr<lifecycle::SandboxObject>> sandbox =
      registry_.LookupSandbox(sandbox_id);
  if (sandbox.ok() && *sandbox != nullptr) {
    *event.mutable_pod_sandbox_status() = ToCriSandboxStatus(Snapshot(**sandbox));
  }
  for (const auto& c : registry_.ContainersOf(sandbox_id)) {
    st::Container r = Snapshot(*c);
    if (r.phase() == st::CREATING) continue;
    *event.add_containers_statuses() = ToCriContainerStatus(r);
  }
  events_.Publish(event);
}

std::string CriService::SandboxStateDir(const std::string& id) const {
  return absl::StrCat(options_.state_dir, "/sandboxes/", id);
}

std::string CriService::ContainerBundle(const std::string& id) const {
  return absl::StrCat(options_.state_dir, "/containers/", id);
}

std::string CriService::ContainerRootfsDir(const std::string& id) const {
  return absl::StrCat(options_.root_dir, "/containers/", id);
}

}  // namespace berth
