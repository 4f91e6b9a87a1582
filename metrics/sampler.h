// Samples one container's or pod's cgroup, processes, netns and writable layer
// into a ContainerSample (families.h): the one read path behind /metrics and
// the CRI stats RPCs (STYLE.md 7). No prometheus, no gRPC.
//
//   Sampler sampler(layout);
//   absl::StatusOr<ContainerSample> s = sampler.Sample(
//       {.cgroup_path = "/berth/<pod>/<ctr>", .upper_dir = ".../upper"});
//
// Everything is read when asked (a scrape or an RPC), nothing on a timer: an
// idle agent reads no cgroup file. The exception is the writable layer's disk
// usage, a directory walk (cAdvisor's `du` is the cost kubelet is blamed for,
// research/metrics.md §3): each layer is walked at most once per `fs_ttl`, and
// a walk stops after `fs_max_entries` entries (the figure is then a floor).
// Thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metrics/cgroup_reader.h"
#include "metrics/families.h"
#include "os/cgroup/layout.h"

namespace berth::metrics {

struct SampleTarget {
  bool pod = false;
  std::string cgroup_path;  // absolute from each hierarchy's root
  // A process in the pod's network namespace (pods only; 0: none, or the
  // host's network, which is not the pod's to report).
  pid_t net_pid = 0;
  std::string upper_dir;  // containers: the overlay upper dir; "" for none
  absl::Time start_time = absl::InfinitePast();
};

struct SamplerOptions {
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  absl::Duration fs_ttl = absl::Seconds(15);
  uint64_t fs_max_entries = 1'000'000;
  // Cgroup files kept open between samples (CgroupFileCache), at most this
  // many in all; 0: the soft RLIMIT_NOFILE less an eighth of it (at least
  // 2048, or half of a small limit) for everything else, at most 200 000.
  // Past the budget a target's files are opened and closed at each read.
  size_t max_open_files = 0;
};

class Sampler {
 public:
  explicit Sampler(CgroupLayout layout, SamplerOptions options = {});

  // NOT_FOUND when the cgroup is gone (the container exited and was cleaned
  // up); any other failure costs only the fields it feeds, listed in
  // sample.cgroup.errors.
  absl::StatusOr<ContainerSample> Sample(const SampleTarget& target);

  // Forgets what is cached for a target that is gone for good (its open
  // cgroup files, its layer usage): the owner calls it when it removes one.
  void Forget(const SampleTarget& target);
  // Closes the cached files of every cgroup not in `live` (called after a scrape).
  void Retain(const std::set<std::string>& live);
  size_t open_files() const;

  const CgroupLayout& layout() const { return layout_; }

 private:
  std::optional<ContainerSample::Fs> LayerUsage(const std::string& upper_dir,
                                                std::vector<absl::Status>& errors);
  std::string DeviceName(dev_t dev);
  struct Files;
  std::optional<uint64_t> NofileSoft(pid_t pid, Files* files);
  // At most this many files of one target are kept open (a v1 cgroup in every
  // hierarchy): what a new entry must fit in.
  static constexpr size_t kMaxFilesPerTarget = 40;

  const CgroupLayout layout_;
  const SamplerOptions options_;
  absl::Mutex mu_;
  struct CachedFs {
    ContainerSample::Fs fs;
    absl::Time at;
  };
  std::map<std::string, CachedFs> fs_ ABSL_GUARDED_BY(mu_);
  std::map<dev_t, std::string> devices_ ABSL_GUARDED_BY(mu_);
  // Per cgroup path; each entry's mutex keeps one reader at a time on it.
  struct Files {
    explicit Files(std::atomic<size_t>* total) : open_total(total) {}
    ~Files() { *open_total -= counted; }
    // Adds the change in this entry's open files to the sampler's total.
    void Count() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      const size_t now = cache.size();
      *open_total += now - counted;
      counted = now;
    }
    std::atomic<size_t>* const open_total;
    absl::Mutex mu;
    CgroupFileCache cache ABSL_GUARDED_BY(mu);
    size_t counted ABSL_GUARDED_BY(mu) = 0;  // in open_total
    // RLIMIT_NOFILE soft of the first process, read once per process.
    pid_t nofile_pid ABSL_GUARDED_BY(mu) = 0;
    uint64_t nofile ABSL_GUARDED_BY(mu) = 0;
  };
  // Files open in all entries of files_ (each adds its own; its destructor,
  // after the last reader lets go, takes them back). Declared first: the
  // entries' destructors use it.
  std::atomic<size_t> open_total_{0};
  mutable absl::Mutex files_mu_;
  std::map<std::string, std::shared_ptr<Files>> files_ ABSL_GUARDED_BY(files_mu_);
  size_t max_open_files_;
};

// Bytes (allocated blocks, as du(1)) and inodes under `dir`, hard links
// counted once, never crossing into another filesystem or following a link;
// at most `max_entries` entries.
struct DirUsage {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
  bool truncated = false;
};
absl::StatusOr<DirUsage> MeasureDir(const std::string& dir, uint64_t max_entries);

// "Max open files" soft limit from /proc/<pid>/limits text; kUnlimited for
// "unlimited".
absl::StatusOr<uint64_t> ParseNofileSoft(absl::string_view limits);

}  // namespace berth::metrics
