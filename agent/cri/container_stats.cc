// ContainerStats and ListContainerStats: the same samples as /metrics
// (metrics/sampler.h), read when asked, in CRI's shape (research/cri-v1.md §8).
//
// CRI: usage_nano_cores is a rate; containerd computes it from a background
// sampler. Berth keeps no loop: the rate is taken over the time since the
// previous stats call for the same cgroup (absent on the first call).
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "os/status.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

namespace {

// Limits at or above 2^62 are "no limit" (v1's PAGE_COUNTER_MAX, v2's max).
bool Limited(const std::optional<uint64_t>& limit) { return limit && *limit < (uint64_t{1} << 62); }

void SetPsi(const std::optional<metrics::PsiStats>& p, v1::PsiStats* out) {
  // Cgroup files count stalls in µs; CRI's PsiData.Total is ns.
  if (p->full_total_us) out->mutable_full()->set_total(*p->full_total_us * 1000);
  if (p->some_total_us) out->mutable_some()->set_total(*p->some_total_us * 1000);
}

}  // namespace

void CriService::FillCpuMemory(const std::string& key, const metrics::ContainerSample& s,
                               int64_t now, v1::CpuUsage* cpu, v1::MemoryUsage* memory) {
  cpu->set_timestamp(now);
  if (s.cgroup.cpu.usage_ns) {
    const uint64_t usage = *s.cgroup.cpu.usage_ns;
    cpu->mutable_usage_core_nano_seconds()->set_value(usage);
    absl::MutexLock l(&cpu_mu_);
    auto [it, fresh] = cpu_points_.try_emplace(key, CpuPoint{usage, now});
    if (!fresh) {
      const int64_t dt = now - it->second.at_ns;
      if (dt > 0 && usage >= it->second.usage_ns) {
        cpu->mutable_usage_nano_cores()->set_value(
            static_cast<uint64_t>(static_cast<double>(usage - it->second.usage_ns) * 1e9 / dt));
      }
      it->second = CpuPoint{usage, now};
    }
  }
  if (s.cgroup.cpu_pressure) SetPsi(s.cgroup.cpu_pressure, cpu->mutable_psi());
  const metrics::MemoryStats& m = s.cgroup.memory;
  memory->set_timestamp(now);
  if (m.working_set) {
    memory->mutable_working_set_bytes()->set_value(*m.working_set);
    if (Limited(m.limit)) {
      memory->mutable_available_bytes()->set_value(
          *m.limit > *m.working_set ? *m.limit - *m.working_set : 0);
    }
  }
  if (m.usage) memory->mutable_usage_bytes()->set_value(*m.usage);
  if (m.rss) memory->mutable_rss_bytes()->set_value(*m.rss);
  if (m.pgfault) memory->mutable_page_faults()->set_value(*m.pgfault);
  if (m.pgmajfault) memory->mutable_major_page_faults()->set_value(*m.pgmajfault);
  if (s.cgroup.memory_pressure) SetPsi(s.cgroup.memory_pressure, memory->mutable_psi());
}

void CriService::FillIo(const metrics::ContainerSample& s, int64_t now, v1::IoUsage* io) {
  io->set_timestamp(now);
  if (s.cgroup.io_pressure) SetPsi(s.cgroup.io_pressure, io->mutable_psi());
}

v1::ContainerStats CriService::StatsOf(const st::Container& c) {
  v1::ContainerStats out;
  v1::ContainerAttributes* a = out.mutable_attributes();
  a->set_id(c.id());
  *a->mutable_metadata() = c.config().metadata();
  *a->mutable_labels() = c.config().labels();
  *a->mutable_annotations() = c.config().annotations();
  if (sampler_ == nullptr || c.cgroup_path().empty()) return out;
  absl::StatusOr<metrics::ContainerSample> sample = sampler_->Sample(TargetOf(c).sample);
  if (!sample.ok()) return out;  // the cgroup is gone: the container has exited
  const int64_t now = NowNs();
  FillCpuMemory(c.id(), *sample, now, out.mutable_cpu(), out.mutable_memory());
  const metrics::MemoryStats& m = sample->cgroup.memory;
  v1::SwapUsage* swap = out.mutable_swap();
  swap->set_timestamp(now);
  if (m.swap) {
    swap->mutable_swap_usage_bytes()->set_value(*m.swap);
    if (Limited(m.swap_limit)) {
      swap->mutable_swap_available_bytes()->set_value(
          *m.swap_limit > *m.swap ? *m.swap_limit - *m.swap : 0);
    }
  }
  FillIo(*sample, now, out.mutable_io());
  if (sample->fs) {
    v1::FilesystemUsage* fs = out.mutable_writable_layer();
    fs->set_timestamp(now);
    fs->mutable_fs_id()->set_mountpoint(options_.root_dir + "/containers");
    fs->mutable_used_bytes()->set_value(sample->fs->used_bytes);
    fs->mutable_inodes_used()->set_value(sample->fs->inodes_used);
  }
  return out;
}

absl::StatusOr<v1::ContainerStatsResponse> CriService::ContainerStats(
    const v1::ContainerStatsRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(request.container_id(), "container_id"));
  st::Container c = Snapshot(*container);
  if (c.phase() == st::CREATING) {
    return absl::NotFoundError(
        absl::StrCat("container_id: container `", c.id(), "` is still being created"));
  }
  v1::ContainerStatsResponse response;
  *response.mutable_stats() = StatsOf(c);
  return response;
}

absl::StatusOr<v1::ListContainerStatsResponse> CriService::ListContainerStats(
    const v1::ListContainerStatsRequest& request) {
  const v1::ContainerStatsFilter& f = request.filter();
  v1::ListContainersRequest list;
  list.mutable_filter()->set_id(f.id());
  list.mutable_filter()->set_pod_sandbox_id(f.pod_sandbox_id());
  *list.mutable_filter()->mutable_label_selector() = f.label_selector();
  BERTH_ASSIGN_OR_RETURN(v1::ListContainersResponse containers, ListContainers(list));
  v1::ListContainerStatsResponse response;
  for (const v1::Container& listed : containers.containers()) {
    BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> co,
                           registry_.LookupContainer(listed.id()));
    if (co == nullptr) continue;  // removed meanwhile
    *response.add_stats() = StatsOf(Snapshot(*co));
  }
  return response;
}

void CriService::ForgetStats(const std::string& id, const metrics::SampleTarget& target) {
  if (sampler_ != nullptr) sampler_->Forget(target);
  absl::MutexLock l(&cpu_mu_);
  cpu_points_.erase(id);
}

}  // namespace berth
