#include "metrics/families.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace berth::metrics {
namespace {

constexpr MetricType kC = MetricType::kCounter;
constexpr MetricType kG = MetricType::kGauge;

// In Family order (checked by a test). Names, types and label keys are
// cAdvisor's (lib/metrics/prometheus.go), so dashboards written for kubelet's
// /metrics/cadvisor read them unchanged. One departure: cAdvisor types the two
// *_failcnt families as counters without the _total suffix, which `promtool
// check metrics` reports; they are gauges here. And container_fs_inodes_total,
// a gauge in cAdvisor, is typed counter: its name ends in _total, which
// promtool allows only for counters, and the inode count of a filesystem only
// changes when it is resized. Names and values are cAdvisor's, and PromQL does
// not look at types, so queries and dashboards are unaffected.
const std::vector<FamilySpec>& Table() {
  static const auto* table = new std::vector<FamilySpec>{
      {"container_cpu_usage_seconds_total",
       "Cumulative cpu time consumed in seconds.",
       kC,
       {"cpu"}},
      {"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", kC},
      {"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", kC},
      {"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", kC},
      {"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", kC},
      {"container_cpu_cfs_throttled_seconds_total",
       "Total time duration the container has been throttled.", kC},
      {"container_memory_usage_bytes",
       "Current memory usage in bytes, including all memory regardless of when it was accessed",
       kG},
      {"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", kG},
      {"container_memory_working_set_bytes", "Current working set in bytes.", kG},
      {"container_memory_rss", "Size of RSS in bytes.", kG},
      {"container_memory_cache", "Number of bytes of page cache memory.", kG},
      {"container_memory_mapped_file", "Size of memory mapped files in bytes.", kG},
      {"container_memory_swap", "Container swap usage in bytes.", kG},
      {"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", kG},
      {"container_memory_failcnt", "Number of memory usage hits limits", kG},
      {"container_memory_failures_total",
       "Cumulative count of memory allocation failures.",
       kC,
       {"failure_type", "scope"}},
      {"container_oom_events_total", "Count of out of memory events observed for the container",
       kC},
      {"container_spec_cpu_period", "CPU period of the container.", kG},
      {"container_spec_cpu_quota", "CPU quota of the container.", kG},
      {"container_spec_cpu_shares", "CPU share of the container.", kG},
      {"container_spec_memory_limit_bytes", "Memory limit for the container.", kG},
      {"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", kG},
      {"container_spec_memory_reservation_limit_bytes",
       "Memory reservation limit for the container.", kG},
      {"container_processes", "Number of processes running inside the container.", kG},
      {"container_threads", "Number of threads running inside the container", kG},
      {"container_threads_max",
       "Maximum number of threads allowed inside the container, "
       "infinity if value is zero",
       kG},
      {"container_file_descriptors", "Number of open file descriptors for the container.", kG},
      {"container_sockets", "Number of open sockets for the container.", kG},
      {"container_ulimits_soft",
       "Soft ulimit values for the container root process. Unlimited if -1, except priority "
       "and nice",
       kG,
       {"ulimit"}},
      {"container_fs_reads_bytes_total", "Cumulative count of bytes read", kC, {"device"}},
      {"container_fs_writes_bytes_total", "Cumulative count of bytes written", kC, {"device"}},
      {"container_fs_reads_total", "Cumulative count of reads completed", kC, {"device"}},
      {"container_fs_writes_total", "Cumulative count of writes completed", kC, {"device"}},
      {"container_blkio_device_usage_total",
       "Blkio Device bytes usage",
       kC,
       {"device", "major", "minor", "operation"}},
      {"container_fs_usage_bytes",
       "Number of bytes that are consumed by the container on this "
       "filesystem.",
       kG,
       {"device"}},
      {"container_fs_limit_bytes",
       "Number of bytes that can be consumed by the container on "
       "this filesystem.",
       kG,
       {"device"}},
      {"container_fs_inodes_total", "Number of Inodes", kC, {"device"}},
      {"container_fs_inodes_free", "Number of available Inodes", kG, {"device"}},
      {"container_network_receive_bytes_total",
       "Cumulative count of bytes received",
       kC,
       {"interface"}},
      {"container_network_receive_packets_total",
       "Cumulative count of packets received",
       kC,
       {"interface"}},
      {"container_network_receive_errors_total",
       "Cumulative count of errors encountered while receiving",
       kC,
       {"interface"}},
      {"container_network_receive_packets_dropped_total",
       "Cumulative count of packets dropped while receiving",
       kC,
       {"interface"}},
      {"container_network_transmit_bytes_total",
       "Cumulative count of bytes transmitted",
       kC,
       {"interface"}},
      {"container_network_transmit_packets_total",
       "Cumulative count of packets transmitted",
       kC,
       {"interface"}},
      {"container_network_transmit_errors_total",
       "Cumulative count of errors encountered while transmitting",
       kC,
       {"interface"}},
      {"container_network_transmit_packets_dropped_total",
       "Cumulative count of packets dropped while transmitting",
       kC,
       {"interface"}},
      {"container_hugetlb_usage_bytes", "Hugepage usage in bytes", kG, {"pagesize"}},
      {"container_hugetlb_max_usage_bytes", "Hugepage maximum usage in bytes", kG, {"pagesize"}},
      {"container_hugetlb_failcnt", "Number of hugepage usages hits limits", kG, {"pagesize"}},
      {"container_pressure_cpu_waiting_seconds_total",
       "Total time duration tasks in the container have waited due to CPU congestion.", kC},
      {"container_pressure_cpu_stalled_seconds_total",
       "Total time duration no tasks in the container could make progress due to CPU "
       "congestion.",
       kC},
      {"container_pressure_memory_waiting_seconds_total",
       "Total time duration tasks in the container have waited due to memory congestion.", kC},
      {"container_pressure_memory_stalled_seconds_total",
       "Total time duration no tasks in the container could make progress due to memory "
       "congestion.",
       kC},
      {"container_pressure_io_waiting_seconds_total",
       "Total time duration tasks in the container have waited due to IO congestion.", kC},
      {"container_pressure_io_stalled_seconds_total",
       "Total time duration no tasks in the container could make progress due to IO "
       "congestion.",
       kC},
      {"container_start_time_seconds", "Start time of the container since unix epoch in seconds.",
       kG},
      {"container_last_seen", "Last time a container was seen by the exporter", kG},
  };
  return *table;
}

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }
double Usec(uint64_t us) { return static_cast<double>(us) / 1e6; }
double D(uint64_t v) { return static_cast<double>(v); }

void Put(SampleSink& sink, Family f, const std::optional<uint64_t>& v, double (*conv)(uint64_t),
         std::initializer_list<absl::string_view> extra = {}) {
  if (v) sink.Add(f, conv(*v), extra);
}

void EmitCpu(const CgroupStats& s, SampleSink& sink) {
  Put(sink, Family::kCpuUsage, s.cpu.usage_ns, Seconds, {"total"});
  Put(sink, Family::kCpuUser, s.cpu.user_ns, Seconds);
  Put(sink, Family::kCpuSystem, s.cpu.system_ns, Seconds);
  Put(sink, Family::kCpuCfsPeriods, s.cpu.nr_periods, D);
  Put(sink, Family::kCpuCfsThrottledPeriods, s.cpu.nr_throttled, D);
  Put(sink, Family::kCpuCfsThrottledSeconds, s.cpu.throttled_ns, Seconds);
  Put(sink, Family::kSpecCpuPeriod, s.cpu_spec.period_us, D);
  // cAdvisor leaves the quota out when there is none.
  if (s.cpu_spec.quota_us && *s.cpu_spec.quota_us != kUnlimited) {
    sink.Add(Family::kSpecCpuQuota, D(*s.cpu_spec.quota_us));
  }
  Put(sink, Family::kSpecCpuShares, s.cpu_spec.shares, D);
}

void EmitMemory(const MemoryStats& m, SampleSink& sink) {
  Put(sink, Family::kMemoryUsage, m.usage, D);
  Put(sink, Family::kMemoryMaxUsage, m.max_usage, D);
  Put(sink, Family::kMemoryWorkingSet, m.working_set, D);
  Put(sink, Family::kMemoryRss, m.rss, D);
  Put(sink, Family::kMemoryCache, m.cache, D);
  Put(sink, Family::kMemoryMappedFile, m.mapped_file, D);
  Put(sink, Family::kMemorySwap, m.swap, D);
  Put(sink, Family::kMemoryKernelUsage, m.kernel_usage, D);
  Put(sink, Family::kMemoryFailcnt, m.failcnt, D);
  // cAdvisor reports the same memory.stat counter for both scopes.
  for (absl::string_view scope : {"container", "hierarchy"}) {
    Put(sink, Family::kMemoryFailures, m.pgfault, D, {"pgfault", scope});
    Put(sink, Family::kMemoryFailures, m.pgmajfault, D, {"pgmajfault", scope});
  }
  Put(sink, Family::kOomEvents, m.oom_kills, D);
  Put(sink, Family::kSpecMemoryLimit, m.limit, D);
  Put(sink, Family::kSpecMemorySwapLimit, m.swap_limit, D);
  Put(sink, Family::kSpecMemoryReservationLimit, m.soft_limit, D);
}

void EmitProcesses(const ContainerSample& s, SampleSink& sink) {
  if (s.processes) {
    sink.Add(Family::kProcesses, D(s.processes->processes));
    sink.Add(Family::kFileDescriptors, D(s.processes->fds));
    sink.Add(Family::kSockets, D(s.processes->sockets));
  }
  // cAdvisor: threads are pids.current (the pids controller counts tasks),
  // threads_max is pids.max with 0 for "max".
  if (s.cgroup.pids.current) {
    sink.Add(Family::kThreads, D(*s.cgroup.pids.current));
  } else if (s.processes) {
    sink.Add(Family::kThreads, D(s.processes->threads));
  }
  if (s.cgroup.pids.max) {
    sink.Add(Family::kThreadsMax, *s.cgroup.pids.max == kUnlimited ? 0 : D(*s.cgroup.pids.max));
  }
  if (s.nofile_soft) {
    sink.Add(Family::kUlimitsSoft, *s.nofile_soft == kUnlimited ? -1 : D(*s.nofile_soft),
             {"max_open_files"});
  }
}

void EmitBlkio(const ContainerSample& s, SampleSink& sink) {
  if (!s.cgroup.blkio) return;
  for (size_t i = 0; i < s.cgroup.blkio->size(); ++i) {
    const BlkioDeviceStats& d = (*s.cgroup.blkio)[i];
    const std::string fallback = absl::StrCat(d.major, ":", d.minor);
    absl::string_view device = i < s.blkio_device_names.size() && !s.blkio_device_names[i].empty()
                                   ? absl::string_view(s.blkio_device_names[i])
                                   : absl::string_view(fallback);
    Put(sink, Family::kFsReadsBytes, d.read_bytes, D, {device});
    Put(sink, Family::kFsWritesBytes, d.write_bytes, D, {device});
    Put(sink, Family::kFsReads, d.read_ops, D, {device});
    Put(sink, Family::kFsWrites, d.write_ops, D, {device});
    const std::string major = absl::StrCat(d.major);
    const std::string minor = absl::StrCat(d.minor);
    Put(sink, Family::kBlkioDeviceUsage, d.read_bytes, D, {device, major, minor, "Read"});
    Put(sink, Family::kBlkioDeviceUsage, d.write_bytes, D, {device, major, minor, "Write"});
  }
}

void EmitFs(const ContainerSample::Fs& fs, SampleSink& sink) {
  sink.Add(Family::kFsUsageBytes, D(fs.used_bytes), {fs.device});
  sink.Add(Family::kFsLimitBytes, D(fs.capacity_bytes), {fs.device});
  sink.Add(Family::kFsInodesTotal, D(fs.inodes_total), {fs.device});
  sink.Add(Family::kFsInodesFree, D(fs.inodes_free), {fs.device});
}

void EmitNetwork(const std::vector<NetInterfaceStats>& ifaces, SampleSink& sink) {
  for (const NetInterfaceStats& i : ifaces) {
    sink.Add(Family::kNetworkReceiveBytes, D(i.rx_bytes), {i.name});
    sink.Add(Family::kNetworkReceivePackets, D(i.rx_packets), {i.name});
    sink.Add(Family::kNetworkReceiveErrors, D(i.rx_errors), {i.name});
    sink.Add(Family::kNetworkReceiveDropped, D(i.rx_dropped), {i.name});
    sink.Add(Family::kNetworkTransmitBytes, D(i.tx_bytes), {i.name});
    sink.Add(Family::kNetworkTransmitPackets, D(i.tx_packets), {i.name});
    sink.Add(Family::kNetworkTransmitErrors, D(i.tx_errors), {i.name});
    sink.Add(Family::kNetworkTransmitDropped, D(i.tx_dropped), {i.name});
  }
}

void EmitPressure(const std::optional<PsiStats>& p, Family waiting, Family stalled,
                  SampleSink& sink) {
  if (!p) return;
  Put(sink, waiting, p->some_total_us, Usec);
  Put(sink, stalled, p->full_total_us, Usec);
}

}  // namespace

const FamilySpec& Spec(Family family) { return Table()[static_cast<int>(family)]; }

void EmitSamples(const ContainerSample& s, absl::Time now, SampleSink& sink) {
  EmitCpu(s.cgroup, sink);
  EmitMemory(s.cgroup.memory, sink);
  EmitProcesses(s, sink);
  EmitBlkio(s, sink);
  if (s.fs) EmitFs(*s.fs, sink);
  EmitNetwork(s.network, sink);
  for (const HugetlbStats& h : s.cgroup.hugetlb) {
    Put(sink, Family::kHugetlbUsage, h.usage, D, {h.page_size});
    Put(sink, Family::kHugetlbMaxUsage, h.max_usage, D, {h.page_size});
    Put(sink, Family::kHugetlbFailcnt, h.failcnt, D, {h.page_size});
  }
  EmitPressure(s.cgroup.cpu_pressure, Family::kPressureCpuWaiting, Family::kPressureCpuStalled,
               sink);
  EmitPressure(s.cgroup.memory_pressure, Family::kPressureMemoryWaiting,
               Family::kPressureMemoryStalled, sink);
  EmitPressure(s.cgroup.io_pressure, Family::kPressureIoWaiting, Family::kPressureIoStalled, sink);
  if (s.start_time != absl::InfinitePast()) {
    sink.Add(Family::kStartTime, absl::ToDoubleSeconds(s.start_time - absl::UnixEpoch()));
  }
  sink.Add(Family::kLastSeen, absl::ToDoubleSeconds(now - absl::UnixEpoch()));
}

}  // namespace berth::metrics
