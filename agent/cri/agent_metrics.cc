#include "agent/cri/agent_metrics.h"

#include <string>
#include <utility>

namespace berth {
namespace {

// Container start (the shim's exec) takes milliseconds; a slow one seconds.
prometheus::Histogram::BucketBoundaries StartBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// Pulls go from a cached manifest (ms) to gigabytes over a slow link (minutes).
prometheus::Histogram::BucketBoundaries PullBuckets() {
  return {0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

prometheus::MetricFamily ByState(const char* name, const char* help,
                                 const std::vector<std::pair<std::string, double>>& counts) {
  prometheus::MetricFamily f{name, help, prometheus::MetricType::Gauge, {}};
  for (const auto& [state, n] : counts) {
    prometheus::ClientMetric& m = f.metric.emplace_back();
    m.label.push_back({"state", state});
    m.gauge.value = n;
  }
  return f;
}

}  // namespace

AgentMetrics::AgentMetrics(prometheus::Registry& registry)
    : start_latency_(prometheus::BuildHistogram()
                         .Name("berth_container_start_duration_seconds")
                         .Help("Time StartContainer took to get the container's process running.")
                         .Register(registry)
                         .Add({}, StartBuckets())),
      pull_bytes_(prometheus::BuildCounter()
                      .Name("berth_image_pull_bytes_total")
                      .Help("Bytes (config and compressed layers) of images pulled.")
                      .Register(registry)
                      .Add({})),
      pull_durations_(prometheus::BuildHistogram()
                          .Name("berth_image_pull_duration_seconds")
                          .Help("Time PullImage took, by outcome.")
                          .Register(registry)) {}

void AgentMetrics::ContainerStarted(absl::Duration latency) {
  start_latency_.Observe(absl::ToDoubleSeconds(latency));
}

void AgentMetrics::ImagePulled(uint64_t bytes, absl::Duration duration, bool ok) {
  if (ok) pull_bytes_.Increment(static_cast<double>(bytes));
  pull_durations_.Add({{"outcome", ok ? "success" : "failure"}}, PullBuckets())
      .Observe(absl::ToDoubleSeconds(duration));
}

std::vector<prometheus::MetricFamily> StateCollector::Collect() const {
  StateCounts c = counts_();
  std::vector<prometheus::MetricFamily> out;
  out.push_back(ByState("berth_pod_sandboxes", "Pod sandboxes by CRI state.", c.sandboxes));
  out.push_back(ByState("berth_containers", "Containers by CRI state.", c.containers));
  prometheus::MetricFamily shims{
      "berth_shims", "berth-shim processes serving containers.", prometheus::MetricType::Gauge, {}};
  shims.metric.emplace_back().gauge.value = c.shims;
  out.push_back(std::move(shims));
  return out;
}

}  // namespace berth
