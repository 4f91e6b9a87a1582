// The pod sandboxes and containers berthd knows, in memory (DESIGN.md, State).
//
// Each object carries two locks:
//   op_mu  orders the operations on it: Stop and Remove take it exclusively, so
//          calls on one object run one after the other while calls on
//          different objects run in parallel. A sandbox's op_mu is taken shared
//          by CreateContainer, so a pod cannot be stopped under a container
//          being created in it.
//   mu     guards the record, held only to read or change it (never across a
//          syscall, a shim call or a disk write): List and Status calls copy
//          records under it and never wait for an operation.
// Lock order: sandbox op_mu, then container op_mu, then any mu; Registry::mu_ last.
//
// `version` counts changes of the record; RuntimeStore keeps the newest.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/runtime/store.h"

namespace berth::lifecycle {

struct SandboxObject {
  explicit SandboxObject(state::Sandbox r) : id(r.id()), record(std::move(r)) {}
  const std::string id;
  absl::Mutex op_mu;
  mutable absl::Mutex mu;
  state::Sandbox record ABSL_GUARDED_BY(mu);
  uint64_t version ABSL_GUARDED_BY(mu) = 1;
};

struct ContainerObject {
  explicit ContainerObject(state::Container r)
      : id(r.id()), sandbox_id(r.sandbox_id()), image_id(r.image_id()), record(std::move(r)) {}
  const std::string id;
  const std::string sandbox_id;
  const std::string image_id;
  absl::Mutex op_mu;
  mutable absl::Mutex mu;
  state::Container record ABSL_GUARDED_BY(mu);
  uint64_t version ABSL_GUARDED_BY(mu) = 1;
  // The shim is berthd's own child (launched by this process, not re-adopted
  // after a restart): berthd reaps it after delete.
  bool shim_is_child ABSL_GUARDED_BY(mu) = false;
  // StartContainer is between its start request and its STARTED event; an
  // exit seen meanwhile (a process that ends at once) has its STOPPED event
  // sent by StartContainer after STARTED, so events keep their order.
  bool starting ABSL_GUARDED_BY(mu) = false;
  // Why the shim did not answer its last call within the deadline (a hostile
  // container can stop it); empty once it answers again. While set, CRI
  // reports the container UNKNOWN with this reason: its recorded state may be
  // stale. Not persisted: a restarted berthd asks every shim again.
  std::string unresponsive ABSL_GUARDED_BY(mu);
  bool stop_event_deferred ABSL_GUARDED_BY(mu) = false;
  // Signalled when the record reaches STOPPED (exit monitor).
  absl::CondVar exited;
};

class Registry {
 public:
  // CRI names are unique among live objects: ALREADY_EXISTS naming the holder.
  absl::Status Reserve(const std::string& name, const std::string& id);
  void Release(const std::string& name);

  void Add(std::shared_ptr<SandboxObject> sandbox);
  void Add(std::shared_ptr<ContainerObject> container);
  void EraseSandbox(const std::string& id);
  void EraseContainer(const std::string& id);

  // By full id or any unique prefix (as crictl allows). `field` names the
  // request field in errors: INVALID_ARGUMENT when empty or ambiguous,
  // NOT_FOUND when nothing matches.
  absl::StatusOr<std::shared_ptr<SandboxObject>> FindSandbox(const std::string& id,
                                                             const char* field) const;
  absl::StatusOr<std::shared_ptr<ContainerObject>> FindContainer(const std::string& id,
                                                                 const char* field) const;
  // Like the Find calls but nullptr when nothing matches (for filters and
  // idempotent calls); an ambiguous prefix is still an error.
  absl::StatusOr<std::shared_ptr<SandboxObject>> LookupSandbox(const std::string& id) const;
  absl::StatusOr<std::shared_ptr<ContainerObject>> LookupContainer(const std::string& id) const;

  std::vector<std::shared_ptr<SandboxObject>> Sandboxes() const;
  std::vector<std::shared_ptr<ContainerObject>> Containers() const;
  std::vector<std::shared_ptr<ContainerObject>> ContainersOf(const std::string& sandbox_id) const;
  bool ImageInUse(const std::string& image_id) const;
  size_t ContainerCount() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> names_ ABSL_GUARDED_BY(mu_);  // CRI name -> id
  std::map<std::string, std::shared_ptr<SandboxObject>> sandboxes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<ContainerObject>> containers_ ABSL_GUARDED_BY(mu_);
};

// A new object id: 64 hex digits from getrandom(2), as containerd and Docker make them.
std::string NewId();

// CRI names, as kubelet and containerd build them: a sandbox
// "<name>_<namespace>_<uid>_<attempt>", a container
// "<name>_<sandbox name>_<sandbox namespace>_<sandbox uid>_<attempt>".
std::string SandboxName(const ::runtime::v1::PodSandboxMetadata& m);
std::string ContainerName(const ::runtime::v1::ContainerMetadata& c,
                          const ::runtime::v1::PodSandboxMetadata& s);

}  // namespace berth::lifecycle
