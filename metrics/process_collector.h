// berthd's own process metrics with the names every Prometheus client library
// uses (client_golang's process collector): process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds. Read from
// /proc/self at scrape time.
//
//   exposer.RegisterCollectable(std::make_shared<ProcessCollector>());
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace berth::metrics {

struct SelfStats {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the epoch
  double open_fds = 0;
  double max_fds = 0;
};

// From <proc_root>/self/{stat,fd,limits} and <proc_root>/stat (btime).
absl::StatusOr<SelfStats> ReadSelfStats(absl::string_view proc_root = "/proc");

class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace berth::metrics
