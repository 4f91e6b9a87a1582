// EventHub: GetContainerEvents' fan-out (CRI; research/cri-v1.md §6).
//
// Every lifecycle change of a container or sandbox is published once; each
// subscriber (one per open GetContainerEvents stream) has its own queue, so a
// slow client delays nobody. A subscriber that falls more than kMaxBacklog
// events behind is cut off (its stream ends with RESOURCE_EXHAUSTED) rather
// than letting berthd's memory grow without bound.
//
//   auto sub = hub.Subscribe();
//   while (auto event = sub->Next(absl::Seconds(1))) { ... }  // nullopt: timeout
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/cri/api.h"

namespace berth::lifecycle {

class EventHub {
 public:
  static constexpr size_t kMaxBacklog = 10000;

  class Subscription {
   public:
    ~Subscription();
    // The next event; nullopt when none came within `timeout`;
    // RESOURCE_EXHAUSTED once the subscriber fell too far behind.
    absl::StatusOr<std::optional<::runtime::v1::ContainerEventResponse>> Next(
        absl::Duration timeout);

   private:
    friend class EventHub;
    explicit Subscription(EventHub& hub) : hub_(hub) {}
    EventHub& hub_;
    std::deque<::runtime::v1::ContainerEventResponse> queue_;  // guarded by hub_.mu_
    bool overflowed_ = false;                                  // guarded by hub_.mu_
  };

  std::unique_ptr<Subscription> Subscribe();
  void Publish(const ::runtime::v1::ContainerEventResponse& event);
  size_t subscribers() const;

 private:
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::set<Subscription*> subscribers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::lifecycle
