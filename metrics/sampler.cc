#include "metrics/sampler.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "metrics/cgroup_reader.h"
#include "metrics/proc_reader.h"
#include "os/files.h"
#include "os/status.h"

namespace berth::metrics {
namespace {

// Walks one directory (given as an owned fd) and pushes its subdirectories.
struct Walk {
  dev_t dev;
  uint64_t max_entries;
  DirUsage usage;
  std::set<ino_t> linked;  // inodes with nlink > 1 already counted
  std::vector<int> pending;
};

void Count(Walk& w, const struct stat& st) {
  if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !w.linked.insert(st.st_ino).second) return;
  w.usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  ++w.usage.inodes;
}

absl::Status WalkOne(Walk& w, int fd) {
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "fdopendir", "layer dir");
  }
  while (struct dirent* e = ::readdir(d)) {
    absl::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (w.usage.inodes >= w.max_entries) {
      w.usage.truncated = true;
      break;
    }
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone
    if (st.st_dev != w.dev) continue;  // a mount inside: not the layer's
    Count(w, st);
    if (!S_ISDIR(st.st_mode)) continue;
    int sub = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub >= 0) w.pending.push_back(sub);
  }
  ::closedir(d);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DirUsage> MeasureDir(const std::string& dir, uint64_t max_entries) {
  int root = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) return ErrnoStatus(errno, "open", dir);
  struct stat st;
  if (::fstat(root, &st) != 0) {
    int err = errno;
    ::close(root);
    return ErrnoStatus(err, "fstat", dir);
  }
  Walk w{.dev = st.st_dev, .max_entries = max_entries};
  Count(w, st);
  w.pending.push_back(root);
  absl::Status status;
  while (!w.pending.empty()) {
    int fd = w.pending.back();
    w.pending.pop_back();
    if (w.usage.truncated || !status.ok()) {
      ::close(fd);
      continue;
    }
    status = WalkOne(w, fd);
  }
  if (!status.ok()) return Annotate(status, dir);
  return w.usage;
}

absl::StatusOr<uint64_t> ParseNofileSoft(absl::string_view limits) {
  for (absl::string_view line : absl::StrSplit(limits, '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.empty()) break;
    if (f[0] == "unlimited") return kUnlimited;
    uint64_t v;
    if (absl::SimpleAtoi(f[0], &v)) return v;
    break;
  }
  return absl::InvalidArgumentError("no \"Max open files\" line");
}

namespace {

size_t DefaultMaxOpenFiles() {
  struct rlimit r;
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 200'000;
  // What berthd needs besides: a socket per shim, clients, the database, a
  // scrape's transient opens; an eighth of the limit, at least 2048 (or half
  // of a small limit).
  const size_t soft = r.rlim_cur;
  const size_t reserve = std::max<size_t>(soft / 8, std::min<size_t>(2048, soft / 2));
  return std::min<size_t>(soft - reserve, 200'000);
}

}  // namespace

Sampler::Sampler(CgroupLayout layout, SamplerOptions options)
    : layout_(std::move(layout)),
      options_(std::move(options)),
      max_open_files_(options_.max_open_files != 0 ? options_.max_open_files
                                                   : DefaultMaxOpenFiles()) {}

void Sampler::Retain(const std::set<std::string>& live) {
  absl::MutexLock l(&files_mu_);
  for (auto it = files_.begin(); it != files_.end();) {
    it = live.count(it->first) > 0 ? std::next(it) : files_.erase(it);
  }
}

size_t Sampler::open_files() const { return open_total_; }

std::string Sampler::DeviceName(dev_t dev) {
  {
    absl::MutexLock l(&mu_);
    auto it = devices_.find(dev);
    if (it != devices_.end()) return it->second;
  }
  // The kernel's name for the block device (sysfs-dev ABI: /sys/dev/block/M:m
  // links to the device; its uevent holds DEVNAME). cAdvisor labels "/dev/<name>".
  std::string name = absl::StrCat(major(dev), ":", minor(dev));
  absl::StatusOr<std::string> uevent = ReadFile(
      absl::StrCat(options_.sys_root, "/dev/block/", major(dev), ":", minor(dev), "/uevent"));
  if (uevent.ok()) {
    for (absl::string_view line : absl::StrSplit(*uevent, '\n')) {
      if (absl::ConsumePrefix(&line, "DEVNAME=")) name = absl::StrCat("/dev/", line);
    }
  }
  absl::MutexLock l(&mu_);
  devices_.emplace(dev, name);
  return name;
}

std::optional<ContainerSample::Fs> Sampler::LayerUsage(const std::string& upper_dir,
                                                       std::vector<absl::Status>& errors) {
  const absl::Time now = absl::Now();
  {
    absl::MutexLock l(&mu_);
    auto it = fs_.find(upper_dir);
    if (it != fs_.end() && now - it->second.at < options_.fs_ttl) return it->second.fs;
  }
  struct stat st;
  struct statvfs vfs;
  if (::stat(upper_dir.c_str(), &st) != 0) {
    errors.push_back(ErrnoStatus(errno, "stat", upper_dir));
    return std::nullopt;
  }
  if (::statvfs(upper_dir.c_str(), &vfs) != 0) {
    errors.push_back(ErrnoStatus(errno, "statvfs", upper_dir));
    return std::nullopt;
  }
  absl::StatusOr<DirUsage> usage = MeasureDir(upper_dir, options_.fs_max_entries);
  if (!usage.ok()) {
    errors.push_back(usage.status());
    return std::nullopt;
  }
  ContainerSample::Fs fs{
      .device = DeviceName(st.st_dev),
      .used_bytes = usage->bytes,
      .inodes_used = usage->inodes,
      .capacity_bytes = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize,
      .inodes_total = vfs.f_files,
      .inodes_free = vfs.f_ffree,
  };
  absl::MutexLock l(&mu_);
  fs_[upper_dir] = CachedFs{fs, now};
  return fs;
}

void Sampler::Forget(const SampleTarget& target) {
  {
    absl::MutexLock l(&mu_);
    fs_.erase(target.upper_dir);
  }
  absl::MutexLock l(&files_mu_);
  files_.erase(target.cgroup_path);
}

std::optional<uint64_t> Sampler::NofileSoft(pid_t pid, Files* files) {
  if (files != nullptr) {
    absl::MutexLock l(&files->mu);
    if (files->nofile_pid == pid) return files->nofile;
  }
  absl::StatusOr<std::string> limits =
      ReadFile(absl::StrCat(options_.proc_root, "/", pid, "/limits"));
  if (!limits.ok()) return std::nullopt;
  absl::StatusOr<uint64_t> soft = ParseNofileSoft(*limits);
  if (!soft.ok()) return std::nullopt;
  if (files != nullptr) {
    // Read once per process (a new first pid is read again): a limit set
    // later with setrlimit/prlimit by the process itself is not seen. This is
    // the one value of a scrape that may be older than the scrape.
    absl::MutexLock l(&files->mu);
    files->nofile_pid = pid;
    files->nofile = *soft;
  }
  return *soft;
}

absl::StatusOr<ContainerSample> Sampler::Sample(const SampleTarget& target) {
  ContainerSample s;
  s.pod = target.pod;
  s.start_time = target.start_time;
  std::shared_ptr<Files> files;
  {
    absl::MutexLock l(&files_mu_);
    auto it = files_.find(target.cgroup_path);
    if (it != files_.end()) {
      files = it->second;
    } else if (open_total_ + kMaxFilesPerTarget <= max_open_files_) {
      files =
          files_.emplace(target.cgroup_path, std::make_shared<Files>(&open_total_)).first->second;
    }
  }
  if (files != nullptr) {
    // The entry's lock covers its cached files only: not the process and
    // layer walks below, which a CRI stats call on the same target need not
    // wait behind.
    absl::MutexLock l(&files->mu);
    absl::StatusOr<CgroupStats> stats = ReadCgroupStats(layout_, target.cgroup_path, &files->cache);
    files->Count();
    BERTH_ASSIGN_OR_RETURN(s.cgroup, std::move(stats));
  } else {
    BERTH_ASSIGN_OR_RETURN(s.cgroup, ReadCgroupStats(layout_, target.cgroup_path));
  }
  if (s.cgroup.blkio) {
    for (const BlkioDeviceStats& d : *s.cgroup.blkio) {
      s.blkio_device_names.push_back(DeviceName(makedev(d.major, d.minor)));
    }
  }
  if (!target.pod) {
    absl::StatusOr<std::vector<pid_t>> pids = ReadCgroupProcs(layout_, target.cgroup_path);
    if (pids.ok()) {
      s.processes = ReadProcessStats(*pids, options_.proc_root,
                                     /*threads=*/!s.cgroup.pids.current.has_value());
      for (absl::Status& e : s.processes->errors) s.cgroup.errors.push_back(std::move(e));
      s.processes->errors.clear();
      if (!pids->empty()) s.nofile_soft = NofileSoft(pids->front(), files.get());
    } else {
      s.cgroup.errors.push_back(pids.status());
    }
    if (!target.upper_dir.empty()) s.fs = LayerUsage(target.upper_dir, s.cgroup.errors);
  } else if (target.net_pid > 0) {
    absl::StatusOr<std::vector<NetInterfaceStats>> net =
        ReadNetDev(target.net_pid, options_.proc_root);
    if (net.ok()) {
      s.network = *std::move(net);
    } else if (net.status().code() != absl::StatusCode::kNotFound) {
      s.cgroup.errors.push_back(net.status());
    }
  }
  return s;
}

}  // namespace berth::metrics
