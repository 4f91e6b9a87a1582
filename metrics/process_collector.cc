#include "metrics/process_collector.h"

#include <unistd.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "metrics/proc_reader.h"
#include "metrics/sampler.h"
#include "os/files.h"
#include "os/status.h"

namespace berth::metrics {
namespace {

// /proc/<pid>/stat (proc(5)): fields after "(comm)", numbered from 3 (state).
absl::StatusOr<std::vector<absl::string_view>> StatFields(absl::string_view stat) {
  size_t close = stat.rfind(')');
  if (close == absl::string_view::npos) return absl::InvalidArgumentError("no comm in stat");
  std::vector<absl::string_view> f =
      absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipWhitespace());
  if (f.size() < 22) return absl::InvalidArgumentError("short stat");
  return f;
}

double Field(const std::vector<absl::string_view>& f, int number) {
  double v = 0;
  (void)absl::SimpleAtod(f[number - 3], &v);
  return v;
}

absl::StatusOr<double> BootTime(absl::string_view proc_root) {
  BERTH_ASSIGN_OR_RETURN(std::string stat, ReadFile(absl::StrCat(proc_root, "/stat")));
  for (absl::string_view line : absl::StrSplit(stat, '\n')) {
    double v;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &v)) return v;
  }
  return absl::InvalidArgumentError("no btime in /proc/stat");
}

prometheus::MetricFamily Gauge(const char* name, const char* help, double value,
                               prometheus::MetricType type = prometheus::MetricType::Gauge) {
  prometheus::MetricFamily f{name, help, type, {}};
  prometheus::ClientMetric& m = f.metric.emplace_back();
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return f;
}

}  // namespace

absl::StatusOr<SelfStats> ReadSelfStats(absl::string_view proc_root) {
  BERTH_ASSIGN_OR_RETURN(std::string stat, ReadFile(absl::StrCat(proc_root, "/self/stat")));
  BERTH_ASSIGN_OR_RETURN(std::vector<absl::string_view> f, StatFields(stat));
  BERTH_ASSIGN_OR_RETURN(double btime, BootTime(proc_root));
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  SelfStats s;
  s.cpu_seconds = (Field(f, 14) + Field(f, 15)) / ticks;  // utime + stime
  s.start_time_seconds = btime + Field(f, 22) / ticks;
  s.virtual_bytes = Field(f, 23);
  s.resident_bytes = Field(f, 24) * page;
  // berthd keeps cgroup files open between scrapes (Sampler), thousands of
  // them on a busy node: counted, not listed.
  BERTH_ASSIGN_OR_RETURN(uint64_t fds, CountOpenFds(absl::StrCat(proc_root, "/self/fd")));
  s.open_fds = static_cast<double>(fds);
  absl::StatusOr<std::string> limits = ReadFile(absl::StrCat(proc_root, "/self/limits"));
  if (limits.ok()) {
    absl::StatusOr<uint64_t> nofile = ParseNofileSoft(*limits);
    if (nofile.ok()) s.max_fds = static_cast<double>(*nofile);
  }
  return s;
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  absl::StatusOr<SelfStats> s = ReadSelfStats();
  if (!s.ok()) return {};
  return {
      Gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
            s->cpu_seconds, prometheus::MetricType::Counter),
      Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", s->resident_bytes),
      Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", s->virtual_bytes),
      Gauge("process_open_fds", "Number of open file descriptors.", s->open_fds),
      Gauge("process_max_fds", "Maximum number of open file descriptors.", s->max_fds),
      Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            s->start_time_seconds),
  };
}

}  // namespace berth::metrics
