// berthd's own metrics beside the gRPC ones of rpc_boundary.h: container start
// latency, image pulls, and (computed at scrape from the registry) sandboxes
// and containers by state and the shims alive.
//
//   AgentMetrics m(registry);
//   m.ContainerStarted(absl::Now() - begin);
//   m.ImagePulled(bytes, duration, /*ok=*/true);
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace berth {

class AgentMetrics {
 public:
  explicit AgentMetrics(prometheus::Registry& registry);

  void ContainerStarted(absl::Duration latency);
  void ImagePulled(uint64_t bytes, absl::Duration duration, bool ok);

 private:
  prometheus::Histogram& start_latency_;
  prometheus::Counter& pull_bytes_;
  prometheus::Family<prometheus::Histogram>& pull_durations_;
};

// Counts by CRI state, as the registry holds them at scrape time.
struct StateCounts {
  std::vector<std::pair<std::string, double>> sandboxes;   // state name -> count
  std::vector<std::pair<std::string, double>> containers;  // state name -> count
  double shims = 0;
};

class StateCollector : public prometheus::Collectable {
 public:
  explicit StateCollector(std::function<StateCounts()> counts) : counts_(std::move(counts)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<StateCounts()> counts_;
};

}  // namespace berth
