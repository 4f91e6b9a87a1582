// The cAdvisor-compatible container_* families of every running container and
// pod, as Prometheus text: at each scrape the targets (from the agent) are
// sampled (sampler.h) and written out (families.h, text_sink.h).
//
//   ContainerCollector collector(sampler, [&] { return Targets(); });
//   std::string page = collector.Scrape();
//
// Values are read at scrape time: there is no housekeeping loop, so an agent
// nobody scrapes reads nothing. Targets are split across `threads` threads (a
// scrape of hundreds of cgroups is mostly waiting on the kernel's seq_files).
// A target whose cgroup is gone is skipped; a file that fails costs its series
// and sets container_scrape_error to 1.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metrics/families.h"
#include "metrics/sampler.h"

namespace berth::metrics {

struct ContainerTarget {
  SampleTarget sample;
  TargetLabels labels;
};

using TargetLister = std::function<std::vector<ContainerTarget>()>;

class ContainerCollector {
 public:
  ContainerCollector(Sampler& sampler, TargetLister lister, int threads = 2)
      : sampler_(sampler), lister_(std::move(lister)), threads_(threads) {}

  std::string Scrape() const;

 private:
  // Logs the first read error of a scrape, at most once a minute: a file that
  // keeps failing must not flood the log at every scrape.
  void LogError(const std::string& id, const absl::Status& error) const;

  Sampler& sampler_;
  TargetLister lister_;
  int threads_;
  mutable absl::Mutex log_mu_;
  mutable absl::Time last_log_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();
};

}  // namespace berth::metrics
