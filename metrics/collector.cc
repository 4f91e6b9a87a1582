#include "metrics/collector.h"

#include <atomic>
#include <set>
#include <thread>
#include <utility>

#include "absl/time/clock.h"
#include "metrics/text_sink.h"
#include "os/log.h"

namespace berth::metrics {

// Fewer targets than this are read on the calling thread alone.
constexpr size_t kTargetsPerThread = 32;

void ContainerCollector::LogError(const std::string& id, const absl::Status& error) const {
  {
    absl::MutexLock l(&log_mu_);
    const absl::Time now = absl::Now();
    if (now - last_log_ < absl::Minutes(1)) return;
    last_log_ = now;
  }
  BERTH_LOG(WARNING) << "metrics of " << id << ": " << error
                     << " (further read errors within a minute are not logged)";
}

std::string ContainerCollector::Scrape() const {
  const std::vector<ContainerTarget> targets = lister_();
  const absl::Time now = absl::Now();
  const size_t n = targets.size();
  const size_t threads = std::max<size_t>(1, std::min<size_t>(threads_, n / kTargetsPerThread));
  std::vector<TextSink> sinks(threads);
  std::atomic<bool> error{false};
  // Thread t takes a contiguous share, so merging keeps the targets' order.
  auto work = [&](size_t t) {
    for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
      const ContainerTarget& target = targets[i];
      absl::StatusOr<ContainerSample> sample = sampler_.Sample(target.sample);
      if (!sample.ok()) {
        // Gone between listing and reading: the container exited and was cleaned up.
        if (sample.status().code() == absl::StatusCode::kNotFound) continue;
        LogError(target.labels.id, sample.status());
        error = true;
        continue;
      }
      for (const absl::Status& e : sample->cgroup.errors) {
        LogError(target.labels.id, e);
        error = true;
      }
      sinks[t].SetTarget(target.labels);
      EmitSamples(*sample, now, sinks[t]);
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work, t);
  work(0);
  for (std::thread& h : helpers) h.join();
  for (size_t t = 1; t < threads; ++t) sinks[0].Merge(std::move(sinks[t]));
  // Cached file handles of targets that are gone are closed.
  std::set<std::string> live;
  for (const ContainerTarget& t : targets) live.insert(t.sample.cgroup_path);
  sampler_.Retain(live);
  return std::move(sinks[0]).Finish(error);
}

}  // namespace berth::metrics
