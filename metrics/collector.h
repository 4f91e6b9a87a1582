// The cAdvisor-compatible container_* families as a prometheus-cpp Collectable:
// at every scrape, the targets (the agent's running containers and their pods)
// are sampled (sampler.h) and mapped to families (families.h).
//
//   auto collector = std::make_shared<ContainerCollector>(sampler, [&] { return Targets(); });
//   exposer.RegisterCollectable(collector);
//
// Values are read at scrape time: there is no housekeeping loop, so an agent
// nobody scrapes reads nothing. A target whose cgroup is gone is skipped; a
// file that fails costs its series and sets container_scrape_error to 1.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metrics/families.h"
#include "metrics/sampler.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace berth::metrics {

struct ContainerTarget {
  SampleTarget sample;
  TargetLabels labels;
};

using TargetLister = std::function<std::vector<ContainerTarget>()>;

class ContainerCollector : public prometheus::Collectable {
 public:
  ContainerCollector(Sampler& sampler, TargetLister lister)
      : sampler_(sampler), lister_(std::move(lister)) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // Logs the first read error of a scrape, at most once a minute: a file that
  // keeps failing must not flood the log at every scrape.
  void LogError(const std::string& id, const absl::Status& error) const;

  Sampler& sampler_;
  TargetLister lister_;
  mutable absl::Mutex log_mu_;
  mutable absl::Time last_log_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();
};

// Maps samples of targets into families (empty families left out). Exposed for
// tests and the scrape bench.
class FamilyBuilder : public SampleSink {
 public:
  FamilyBuilder();
  void SetTarget(const TargetLabels& labels);
  void Add(Family family, double value, std::initializer_list<absl::string_view> extra) override;
  std::vector<prometheus::MetricFamily> Finish(bool scrape_error) &&;

 private:
  std::vector<prometheus::MetricFamily> families_;
  std::vector<prometheus::ClientMetric::Label> base_;
};

}  // namespace berth::metrics
