// The family catalog and the ContainerSample -> series mapping (units, labels,
// absent fields), without prometheus.
#include "metrics/families.h"

#include <map>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"

namespace berth::metrics {
namespace {

using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// Records "name{extra,...}" -> value.
class Recorder : public SampleSink {
 public:
  void Add(Family f, double v, std::initializer_list<absl::string_view> extra) override {
    EXPECT_EQ(extra.size(), Spec(f).extra_labels.size()) << Spec(f).name;
    std::string key = Spec(f).name;
    if (extra.size() > 0) key += "{" + absl::StrJoin(extra, ",") + "}";
    EXPECT_TRUE(series.emplace(key, v).second) << "duplicate series " << key;
  }
  std::map<std::string, double> series;
};

TEST(FamiliesTest, CatalogIsCompleteAndUnique) {
  std::set<std::string> names;
  for (int i = 0; i < kFamilyCount; ++i) {
    const FamilySpec& s = Spec(static_cast<Family>(i));
    EXPECT_TRUE(absl::StartsWith(s.name, "container_")) << s.name;
    EXPECT_NE(std::string(s.help), "") << s.name;
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    // Prometheus' naming rule (promtool): counters end in _total, nothing else does.
    EXPECT_EQ(s.type == MetricType::kCounter, absl::EndsWith(s.name, "_total")) << s.name;
  }
  EXPECT_EQ(std::string(Spec(Family::kCpuUsage).name), "container_cpu_usage_seconds_total");
  EXPECT_EQ(std::string(Spec(Family::kLastSeen).name), "container_last_seen");
  EXPECT_EQ(std::string(Spec(Family::kPressureIoStalled).name),
            "container_pressure_io_stalled_seconds_total");
}

TEST(FamiliesTest, EmptySampleGivesOnlyLastSeen) {
  Recorder r;
  EmitSamples(ContainerSample{}, absl::FromUnixSeconds(1700000000), r);
  EXPECT_THAT(r.series, UnorderedElementsAre(Pair("container_last_seen", 1700000000.0)));
}

TEST(FamiliesTest, UnitsAndLabels) {
  ContainerSample s;
  s.cgroup.cpu.usage_ns = 1'500'000'000;
  s.cgroup.cpu.throttled_ns = 250'000'000;
  s.cgroup.cpu_spec.quota_us = kUnlimited;
  s.cgroup.cpu_spec.period_us = 100000;
  s.cgroup.memory.working_set = 4096;
  s.cgroup.memory.limit = kUnlimited;
  s.cgroup.memory.pgfault = 7;
  s.cgroup.pids.current = 3;
  s.cgroup.pids.max = kUnlimited;
  s.cgroup.blkio = std::vector<BlkioDeviceStats>{{.major = 8, .minor = 16, .read_bytes = 512}};
  s.blkio_device_names = {"/dev/sdb"};
  s.cgroup.memory_pressure = PsiStats{.some_total_us = 2'000'000, .full_total_us = 500'000};
  s.processes = ProcessStats{.processes = 2, .threads = 9, .fds = 5, .sockets = 1};
  s.nofile_soft = 1024;
  s.network = {{.name = "eth0", .rx_bytes = 100, .tx_packets = 3}};
  s.start_time = absl::FromUnixSeconds(1600000000);
  Recorder r;
  EmitSamples(s, absl::FromUnixSeconds(1700000000), r);
  auto& m = r.series;
  EXPECT_EQ(m["container_cpu_usage_seconds_total{total}"], 1.5);
  EXPECT_EQ(m["container_cpu_cfs_throttled_seconds_total"], 0.25);
  EXPECT_EQ(m.count("container_spec_cpu_quota"), 0u);  // no quota: no series, as cAdvisor
  EXPECT_EQ(m["container_spec_cpu_period"], 100000);
  EXPECT_EQ(m["container_memory_working_set_bytes"], 4096);
  EXPECT_EQ(m["container_spec_memory_limit_bytes"], 18446744073709551615.0);
  EXPECT_EQ(m["container_memory_failures_total{pgfault,container}"], 7);
  EXPECT_EQ(m["container_memory_failures_total{pgfault,hierarchy}"], 7);
  EXPECT_EQ(m.count("container_memory_failures_total{pgmajfault,container}"), 0u);
  EXPECT_EQ(m["container_threads"], 3);      // pids.current, as cAdvisor
  EXPECT_EQ(m["container_threads_max"], 0);  // "max" is 0
  EXPECT_EQ(m["container_processes"], 2);
  EXPECT_EQ(m["container_file_descriptors"], 5);
  EXPECT_EQ(m["container_sockets"], 1);
  EXPECT_EQ(m["container_ulimits_soft{max_open_files}"], 1024);
  EXPECT_EQ(m["container_fs_reads_bytes_total{/dev/sdb}"], 512);
  EXPECT_EQ(m["container_blkio_device_usage_total{/dev/sdb,8,16,Read}"], 512);
  EXPECT_EQ(m.count("container_fs_writes_bytes_total{/dev/sdb}"), 0u);
  EXPECT_EQ(m["container_pressure_memory_waiting_seconds_total"], 2.0);
  EXPECT_EQ(m["container_pressure_memory_stalled_seconds_total"], 0.5);
  EXPECT_EQ(m["container_network_receive_bytes_total{eth0}"], 100);
  EXPECT_EQ(m["container_network_transmit_packets_total{eth0}"], 3);
  EXPECT_EQ(m["container_start_time_seconds"], 1600000000);
  EXPECT_EQ(m.count("container_memory_rss"), 0u);  // absent stays absent
}

TEST(FamiliesTest, QuotaAndUnknownDeviceName) {
  ContainerSample s;
  s.cgroup.cpu_spec.quota_us = 50000;
  s.cgroup.blkio = std::vector<BlkioDeviceStats>{{.major = 254, .minor = 0, .write_ops = 4}};
  Recorder r;
  EmitSamples(s, absl::Now(), r);
  EXPECT_EQ(r.series["container_spec_cpu_quota"], 50000);
  EXPECT_EQ(r.series["container_fs_writes_total{254:0}"], 4);
}

}  // namespace
}  // namespace berth::metrics
