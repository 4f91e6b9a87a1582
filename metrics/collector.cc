#include "metrics/collector.h"

#include <utility>

#include "absl/time/clock.h"
#include "os/log.h"

namespace berth::metrics {

FamilyBuilder::FamilyBuilder() {
  families_.resize(kFamilyCount);
  for (int i = 0; i < kFamilyCount; ++i) {
    const FamilySpec& spec = Spec(static_cast<Family>(i));
    families_[i].name = spec.name;
    families_[i].help = spec.help;
    families_[i].type = spec.type == MetricType::kCounter ? prometheus::MetricType::Counter
                                                          : prometheus::MetricType::Gauge;
  }
  base_.resize(kBaseLabelCount);
  for (int i = 0; i < kBaseLabelCount; ++i) base_[i].name = kBaseLabels[i];
}

void FamilyBuilder::SetTarget(const TargetLabels& labels) {
  auto values = labels.Values();
  for (int i = 0; i < kBaseLabelCount; ++i) base_[i].value = std::string(values[i]);
}

void FamilyBuilder::Add(Family family, double value,
                        std::initializer_list<absl::string_view> extra) {
  const FamilySpec& spec = Spec(family);
  prometheus::MetricFamily& f = families_[static_cast<int>(family)];
  prometheus::ClientMetric& m = f.metric.emplace_back();
  m.label.reserve(kBaseLabelCount + spec.extra_labels.size());
  m.label = base_;
  size_t i = 0;
  for (absl::string_view v : extra) {
    if (i >= spec.extra_labels.size()) break;
    m.label.push_back({spec.extra_labels[i++], std::string(v)});
  }
  if (spec.type == MetricType::kCounter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

std::vector<prometheus::MetricFamily> FamilyBuilder::Finish(bool scrape_error) && {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families_.size() + 1);
  for (prometheus::MetricFamily& f : families_) {
    if (!f.metric.empty()) out.push_back(std::move(f));
  }
  // cAdvisor's own health series: 1 when a read failed during this scrape.
  prometheus::MetricFamily& err = out.emplace_back();
  err.name = "container_scrape_error";
  err.help = "1 if there was an error while getting container metrics, 0 otherwise";
  err.type = prometheus::MetricType::Gauge;
  err.metric.emplace_back().gauge.value = scrape_error ? 1 : 0;
  return out;
}

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

std::vector<prometheus::MetricFamily> ContainerCollector::Collect() const {
  const std::vector<ContainerTarget> targets = lister_();
  const absl::Time now = absl::Now();
  FamilyBuilder builder;
  bool error = false;
  for (const ContainerTarget& t : targets) {
    absl::StatusOr<ContainerSample> sample = sampler_.Sample(t.sample);
    if (!sample.ok()) {
      // Gone between listing and reading: the container exited and was cleaned up.
      if (sample.status().code() == absl::StatusCode::kNotFound) continue;
      LogError(t.labels.id, sample.status());
      error = true;
      continue;
    }
    for (const absl::Status& e : sample->cgroup.errors) {
      LogError(t.labels.id, e);
      error = true;
    }
    builder.SetTarget(t.labels);
    EmitSamples(*sample, now, builder);
  }
  return std::move(builder).Finish(error);
}

}  // namespace berth::metrics
