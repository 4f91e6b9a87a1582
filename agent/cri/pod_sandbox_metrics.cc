// ListMetricDescriptors and ListPodSandboxMetrics: the container_* families of
// /metrics (metrics/families.h) in CRI's shape, for kubelet's
// PodAndContainerStatsFromCRI mode, which serves /metrics/cadvisor from them
// (research/cri-v1.md §7).
//
// CRI carries values as uint64, so they are truncated toward zero as
// containerd does (CPU seconds lose their fraction); a negative value (an
// unlimited ulimit, -1) cannot be carried and is left out.
#include "absl/time/clock.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "metrics/families.h"

namespace berth {

namespace v1 = runtime::v1;

namespace {

class CriSink : public metrics::SampleSink {
 public:
  CriSink(const metrics::TargetLabels& labels, int64_t now,
          google::protobuf::RepeatedPtrField<v1::Metric>* out)
      : base_(labels.Values()), now_(now), out_(out) {}

  void Add(metrics::Family family, double value,
           std::initializer_list<absl::string_view> extra) override {
    if (value < 0) return;
    const metrics::FamilySpec& spec = metrics::Spec(family);
    v1::Metric* m = out_->Add();
    m->set_name(spec.name);
    m->set_timestamp(now_);
    m->set_metric_type(spec.type == metrics::MetricType::kCounter ? v1::COUNTER : v1::GAUGE);
    for (absl::string_view v : base_) m->add_label_values(std::string(v));
    for (absl::string_view v : extra) m->add_label_values(std::string(v));
    m->mutable_value()->set_value(static_cast<uint64_t>(value));
  }

 private:
  std::array<absl::string_view, metrics::kBaseLabelCount> base_;
  int64_t now_;
  google::protobuf::RepeatedPtrField<v1::Metric>* out_;
};

}  // namespace

absl::StatusOr<v1::ListMetricDescriptorsResponse> CriService::ListMetricDescriptors(
    const v1::ListMetricDescriptorsRequest&) {
  v1::ListMetricDescriptorsResponse response;
  for (int i = 0; i < metrics::kFamilyCount; ++i) {
    const metrics::FamilySpec& spec = metrics::Spec(static_cast<metrics::Family>(i));
    v1::MetricDescriptor* d = response.add_descriptors();
    d->set_name(spec.name);
    d->set_help(spec.help);
    for (const char* key : metrics::kBaseLabels) d->add_label_keys(key);
    for (const char* key : spec.extra_labels) d->add_label_keys(key);
  }
  return response;
}

absl::StatusOr<v1::ListPodSandboxMetricsResponse> CriService::ListPodSandboxMetrics(
    const v1::ListPodSandboxMetricsRequest&) {
  v1::ListPodSandboxMetricsResponse response;
  if (sampler_ == nullptr) return response;
  const absl::Time now = absl::Now();
  const int64_t now_ns = absl::ToUnixNanos(now);
  for (PodTargets& pod : LiveTargets()) {
    v1::PodSandboxMetrics* pm = response.add_pod_metrics();
    pm->set_pod_sandbox_id(pod.sandbox_id);
    absl::StatusOr<metrics::ContainerSample> ps = sampler_->Sample(pod.pod.sample);
    if (ps.ok()) {
      CriSink sink(pod.pod.labels, now_ns, pm->mutable_metrics());
      metrics::EmitSamples(*ps, now, sink);
    }
    for (size_t i = 0; i < pod.containers.size(); ++i) {
      absl::StatusOr<metrics::ContainerSample> cs = sampler_->Sample(pod.containers[i].sample);
      if (!cs.ok()) continue;  // exited and cleaned up meanwhile
      v1::ContainerMetrics* cm = pm->add_container_metrics();
      cm->set_container_id(pod.container_ids[i]);
      CriSink sink(pod.containers[i].labels, now_ns, cm->mutable_metrics());
      metrics::EmitSamples(*cs, now, sink);
    }
  }
  return response;
}

}  // namespace berth
