#include "agent/runtime/events.h"

namespace berth::lifecycle {

std::unique_ptr<EventHub::Subscription> EventHub::Subscribe() {
  std::unique_ptr<Subscription> sub(new Subscription(*this));
  absl::MutexLock lock(&mu_);
  subscribers_.insert(sub.get());
  return sub;
}

EventHub::Subscription::~Subscription() {
  absl::MutexLock lock(&hub_.mu_);
  hub_.subscribers_.erase(this);
}

void EventHub::Publish(const ::runtime::v1::ContainerEventResponse& event) {
  absl::MutexLock lock(&mu_);
  for (Subscription* s : subscribers_) {
    if (s->overflowed_) continue;
    if (s->queue_.size() >= kMaxBacklog) {
      s->overflowed_ = true;
      s->queue_.clear();
      continue;
    }
    s->queue_.push_back(event);
  }
  cv_.SignalAll();
}

absl::StatusOr<std::optional<::runtime::v1::ContainerEventResponse>> EventHub::Subscription::Next(
    absl::Duration timeout) {
  absl::MutexLock lock(&hub_.mu_);
  absl::Time deadline = absl::Now() + timeout;
  while (queue_.empty() && !overflowed_) {
    if (hub_.cv_.WaitWithDeadline(&hub_.mu_, deadline)) break;
  }
  if (overflowed_) {
    return absl::ResourceExhaustedError(
        "event stream fell more than 10000 events behind: reconnect and relist");
  }
  if (queue_.empty()) return std::nullopt;
  ::runtime::v1::ContainerEventResponse event = std::move(queue_.front());
  queue_.pop_front();
  return event;
}

size_t EventHub::subscribers() const {
  absl::MutexLock lock(&mu_);
  return subscribers_.size();
}

}  // namespace berth::lifecycle
