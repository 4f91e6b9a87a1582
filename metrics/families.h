// The container metric families Berth exports, with cAdvisor's names, types,
// units and labels (research/metrics.md §2), and the mapping from a sampled
// container or pod (ContainerSample) to their values.
//
// One catalog serves both ways out: the Prometheus collector (collector.h)
// and the CRI ListMetricDescriptors / ListPodSandboxMetrics RPCs. Each sample
// goes to a SampleSink with its family and the values of the family's extra
// labels; the sink adds the identity labels (kBaseLabels) of the target.
//
//   class Print : public SampleSink {
//     void Add(Family f, double v, std::initializer_list<absl::string_view> extra) override {
//       std::cout << Spec(f).name << " " << v << "\n";
//     }
//   } sink;
//   EmitSamples(sample, absl::Now(), sink);
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "metrics/cgroup_parse.h"
#include "metrics/cgroup_stats.h"
#include "metrics/proc_reader.h"

namespace berth::metrics {

enum class MetricType { kCounter, kGauge };

enum class Family : int {
  kCpuUsage,
  kCpuUser,
  kCpuSystem,
  kCpuCfsPeriods,
  kCpuCfsThrottledPeriods,
  kCpuCfsThrottledSeconds,
  kMemoryUsage,
  kMemoryMaxUsage,
  kMemoryWorkingSet,
  kMemoryRss,
  kMemoryCache,
  kMemoryMappedFile,
  kMemorySwap,
  kMemoryKernelUsage,
  kMemoryFailcnt,
  kMemoryFailures,
  kOomEvents,
  kSpecCpuPeriod,
  kSpecCpuQuota,
  kSpecCpuShares,
  kSpecMemoryLimit,
  kSpecMemorySwapLimit,
  kSpecMemoryReservationLimit,
  kProcesses,
  kThreads,
  kThreadsMax,
  kFileDescriptors,
  kSockets,
  kUlimitsSoft,
  kFsReadsBytes,
  kFsWritesBytes,
  kFsReads,
  kFsWrites,
  kBlkioDeviceUsage,
  kFsUsageBytes,
  kFsLimitBytes,
  kFsInodesTotal,
  kFsInodesFree,
  kNetworkReceiveBytes,
  kNetworkReceivePackets,
  kNetworkReceiveErrors,
  kNetworkReceiveDropped,
  kNetworkTransmitBytes,
  kNetworkTransmitPackets,
  kNetworkTransmitErrors,
  kNetworkTransmitDropped,
  kHugetlbUsage,
  kHugetlbMaxUsage,
  kHugetlbFailcnt,
  kPressureCpuWaiting,
  kPressureCpuStalled,
  kPressureMemoryWaiting,
  kPressureMemoryStalled,
  kPressureIoWaiting,
  kPressureIoStalled,
  kStartTime,
  kLastSeen,
  kCount,  // not a family
};
inline constexpr int kFamilyCount = static_cast<int>(Family::kCount);

struct FamilySpec {
  const char* name;
  const char* help;
  MetricType type;
  std::vector<const char*> extra_labels;  // after kBaseLabels, in this order
};

// The labels every container_* series carries, in cAdvisor's meaning: `id` the
// cgroup path, `name` the container id ("" for a pod), `image`, and the CRI
// metadata `namespace`, `pod`, `container` ("" for a pod).
inline constexpr const char* kBaseLabels[] = {"container", "id",        "image",
                                              "name",      "namespace", "pod"};
inline constexpr int kBaseLabelCount = 6;

const FamilySpec& Spec(Family family);

// The values of kBaseLabels for one target.
struct TargetLabels {
  std::string container;
  std::string id;
  std::string image;
  std::string name;
  std::string namespace_;
  std::string pod;
  // In kBaseLabels order.
  std::array<absl::string_view, kBaseLabelCount> Values() const {
    return {container, id, image, name, namespace_, pod};
  }
};

// What one scrape knows of one container or pod cgroup. Absent parts emit no
// series (a reader error costs that series, never the target or the scrape).
struct ContainerSample {
  bool pod = false;  // pod-level cgroup: network series live here
  CgroupStats cgroup;
  std::optional<ProcessStats> processes;
  std::optional<uint64_t> nofile_soft;  // RLIMIT_NOFILE soft of the first process
  std::vector<NetInterfaceStats> network;
  // The writable layer (containers only): bytes and inodes used, and the
  // capacity of the filesystem holding it.
  struct Fs {
    std::string device;
    uint64_t used_bytes = 0;
    uint64_t inodes_used = 0;
    uint64_t capacity_bytes = 0;
    uint64_t inodes_total = 0;
    uint64_t inodes_free = 0;
  };
  std::optional<Fs> fs;
  // Block device names by major:minor ("sda"), for the `device` label.
  std::vector<std::string> blkio_device_names;  // parallel to cgroup.blkio
  absl::Time start_time = absl::InfinitePast();
};

class SampleSink {
 public:
  virtual ~SampleSink() = default;
  // `extra` holds the values of Spec(family).extra_labels, in order.
  virtual void Add(Family family, double value,
                   std::initializer_list<absl::string_view> extra = {}) = 0;
};

// Emits every series `sample` has a value for; `now` is container_last_seen.
void EmitSamples(const ContainerSample& sample, absl::Time now, SampleSink& sink);

}  // namespace berth::metrics
