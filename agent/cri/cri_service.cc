#include "agent/cri/cri_service.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "os/cgroup/cgroup.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth {

const std::vector<std::string>& BerthSchema() {
  // Append only: a released version's SQL never changes (Database::Open runs
  // the versions a file lacks, in order).
  static const std::vector<std::string> schema = {
      images::kImagesSchemaV1, lifecycle::kRuntimeSchemaV1, images::kImagesSchemaV2};
  return schema;
}

absl::StatusOr<std::unique_ptr<CriService>> CriService::Create(AgentOptions options,
                                                               prometheus::Registry* metrics) {
  std::unique_ptr<CriService> cri(new CriService(std::move(options)));
  if (metrics != nullptr) cri->agent_metrics_ = std::make_unique<AgentMetrics>(*metrics);
  const AgentOptions& o = cri->options_;
  BERTH_RETURN_IF_ERROR(Annotate(CheckCgroupPath(o.cgroup_root), "--cgroup-root"));
  BERTH_RETURN_IF_ERROR(MakeDirs(o.root_dir, 0711));
  BERTH_ASSIGN_OR_RETURN(store::Database db,
                         store::Database::Open(o.root_dir + "/berth.db", BerthSchema()));
  cri->db_ = std::make_unique<store::Database>(std::move(db));
  BERTH_ASSIGN_OR_RETURN(cri->store_,
                         lifecycle::RuntimeStore::Open(o.root_dir + "/berth.db", BerthSchema()));
  images::ImageManagerOptions io;
  io.root = o.root_dir + "/images";
  io.hosts_dir = o.registry_config_dir;
  io.max_layer_bytes = o.max_layer_bytes;
  io.max_layer_entries = o.max_layer_entries;
  BERTH_ASSIGN_OR_RETURN(cri->images_, images::ImageManager::Open(io, cri->db_.get()));
  CriService* self = cri.get();
  cri->images_->SetInUse([self](const std::string& id) { return self->registry_.ImageInUse(id); });
  for (const std::string& dir : o.import_dirs) {
    absl::StatusOr<std::vector<images::ImageRecord>> imported = cri->images_->ImportOciLayout(dir);
    if (!imported.ok()) return Annotate(imported.status(), absl::StrCat("--import ", dir));
    for (const images::ImageRecord& r : *imported) {
      BERTH_LOG(INFO) << "imported " << (r.repo_tags.empty() ? r.id : r.repo_tags[0]) << " from "
                      << dir;
    }
  }
  network::CniOptions cni;
  cni.conf_dir = o.cni_conf_dir;
  cni.bin_dirs = o.cni_bin_dirs;
  cni.cache_dir = o.root_dir + "/cni";
  cri->cni_ = std::make_unique<network::Cni>(std::move(cni));
  cri->cgroups_ = CgroupLayout::Detect();
  BERTH_RETURN_IF_ERROR(cri->ResolveCgroupDriver());
  if (!cri->cgroups_.ok()) {
    BERTH_LOG(WARNING) << "no cgroups: pods cannot run: " << cri->cgroups_.status();
  } else {
    cri->sampler_ = std::make_unique<metrics::Sampler>(*cri->cgroups_);
    cri->collector_ = std::make_unique<metrics::ContainerCollector>(
        *cri->sampler_,
        [self] {
          std::vector<metrics::ContainerTarget> targets;
          for (PodTargets& pod : self->LiveTargets()) {
            targets.push_back(std::move(pod.pod));
            for (metrics::ContainerTarget& c : pod.containers) targets.push_back(std::move(c));
          }
          return targets;
        },
        metrics::CollectorOptions{.max_age =
                                      absl::Seconds(std::max(0, o.metrics_max_age_seconds))});
  }
  for (const char* sub : {"/sandboxes", "/containers"}) {
    BERTH_RETURN_IF_ERROR(MakeDirs(o.state_dir + sub, 0700));
  }
  BERTH_RETURN_IF_ERROR(MakeDirs(o.root_dir + "/containers", 0700));
  cri->monitor_ = std::make_unique<lifecycle::ExitMonitor>();
  BERTH_RETURN_IF_ERROR(Annotate(cri->Recover(), "recover sandboxes and containers"));
  if (!o.streaming_address.empty()) {
    streaming::StreamingOptions so;
    so.address = o.streaming_address;
    absl::StatusOr<std::unique_ptr<streaming::StreamingServer>> server =
        streaming::StreamingServer::Start(so, cri.get());
    if (!server.ok()) return Annotate(server.status(), "--streaming-address");
    cri->streaming_ = std::move(*server);
    BERTH_LOG(INFO) << "streaming server on " << cri->streaming_->base_url();
  }
  return cri;
}

CriService::~CriService() {
  // The streaming sessions' and the monitor's threads call into this object:
  // stop them first.
  streaming_.reset();
  monitor_.reset();
}

absl::StatusOr<const CgroupLayout*> CriService::Cgroups() const {
  if (!cgroups_.ok()) return Annotate(cgroups_.status(), "cgroups");
  return &*cgroups_;
}

void CriService::AddChild(pid_t pid) {
  absl::MutexLock lock(&children_mu_);
  children_.insert(pid);
}

void CriService::ReapChild(pid_t pid) {
  {
    absl::MutexLock lock(&children_mu_);
    if (children_.erase(pid) == 0) return;
  }
  // After its delete the shim exits at once; a crashed one already has. A
  // pidfd (pidfd_open(2)) becomes readable when it exits, so the wait costs
  // nothing extra; one that has not exited within 2 s is stuck and is killed,
  // never waited for forever.
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd) {
    struct pollfd p = {pidfd.get(), POLLIN, 0};
    while (poll(&p, 1, 2000) < 0 && errno == EINTR) {
    }
  }
  pid_t r;
  while ((r = waitpid(pid, nullptr, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r != 0) return;  // reaped, or not ours after all
  BERTH_LOG(WARNING) << "berth-shim " << pid << " did not exit after its delete: killing it";
  kill(pid, SIGKILL);
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace berth
