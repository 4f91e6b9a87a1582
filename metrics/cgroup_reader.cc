#include "metrics/cgroup_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "metrics/cgroup_parse.h"
#include "os/cgroup/cgroup.h"
#include "os/files.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::metrics {
namespace {

using KeyedValues = absl::flat_hash_map<std::string, uint64_t>;

// One cgroup directory in one hierarchy, opened once (O_PATH) so that each
// file costs a one-component lookup instead of a walk down the whole path
// (the kernfs lookups were a third of a scrape's kernel time); failures go to
// `errors`.
// With a CgroupFileCache the files stay open instead.
struct Dir {
  Dir(std::string p, std::vector<absl::Status>* e, CgroupFileCache* c = nullptr)
      : path(std::move(p)),
        fd(c != nullptr ? -1 : ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)),
        errors(e),
        cache(c) {}
  std::string path;
  UniqueFd fd;
  std::vector<absl::Status>* errors;
  CgroupFileCache* cache;
};

// The whole of an open cgroup file into `out`, read from offset 0 (so a cached
// fd shows its file afresh): one pread(2) for the small files cgroupfs serves,
// more only when the buffer fills (memory.stat). 0, or the errno.
int PreadWhole(int fd, std::string& out) {
  char buf[8192];
  for (;;) {
    ssize_t r = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(out.size()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno;
    out.append(buf, static_cast<size_t>(r));
    if (r < static_cast<ssize_t>(sizeof(buf))) return 0;
  }
}

// `dir/name` read whole, from the cache when there is one.
absl::StatusOr<std::string> ReadAt(const Dir& dir, absl::string_view name) {
  if (dir.cache != nullptr) return dir.cache->Read(dir.path, name);
  const std::string n(name);
  if (!dir.fd.valid()) return ErrnoStatus(ENOENT, "open", dir.path);
  UniqueFd fd(::openat(dir.fd.get(), n.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open", absl::StrCat(dir.path, "/", n));
  std::string out;
  if (int err = PreadWhole(fd.get(), out); err != 0) {
    return ErrnoStatus(err, "read", absl::StrCat(dir.path, "/", n));
  }
  return out;
}

// The text of `dir/name`. A failure is recorded, except a missing file when
// !required: the kernel offers many files only with some configs or versions.
std::optional<std::string> ReadIn(const Dir& dir, absl::string_view name, bool required) {
  absl::StatusOr<std::string> text = ReadAt(dir, name);
  if (text.ok()) return *std::move(text);
  if (required || text.status().code() != absl::StatusCode::kNotFound) {
    dir.errors->push_back(text.status());
  }
  return std::nullopt;
}

// ReadIn, then `parse` (any parser of cgroup_parse.h); a parse error names the file.
template <typename Parser>
auto ReadParsed(const Dir& dir, absl::string_view name, bool required, Parser parse)
    -> std::optional<typename decltype(parse(absl::string_view()))::value_type> {
  std::optional<std::string> text = ReadIn(dir, name, required);
  if (!text) return std::nullopt;
  auto value = parse(*text);
  if (!value.ok()) {
    dir.errors->push_back(Annotate(value.status(), absl::StrCat(dir.path, "/", name)));
    return std::nullopt;
  }
  return *std::move(value);
}

std::optional<uint64_t> Key(const std::optional<KeyedValues>& kv, absl::string_view key) {
  if (!kv) return std::nullopt;
  auto it = kv->find(key);
  if (it == kv->end()) return std::nullopt;
  return it->second;
}

// v1 memory.stat has local and hierarchical ("total_") counters; cAdvisor uses
// the hierarchical ones, which equal the local ones in a leaf cgroup.
std::optional<uint64_t> Total(const std::optional<KeyedValues>& kv, absl::string_view key) {
  std::optional<uint64_t> total = Key(kv, absl::StrCat("total_", key));
  return total ? total : Key(kv, key);
}

std::optional<uint64_t> Scaled(std::optional<uint64_t> v, uint64_t factor) {
  return v ? std::optional<uint64_t>(*v * factor) : std::nullopt;
}

void SetWorkingSet(MemoryStats& m, std::optional<uint64_t> inactive_file) {
  if (!m.usage || !inactive_file) return;
  m.working_set = *m.usage > *inactive_file ? *m.usage - *inactive_file : 0;
}

void ReadCpuacctV1(const Dir& dir, CgroupStats& s) {
  s.cpu.usage_ns = ReadParsed(dir, "cpuacct.usage", true, ParseUint);
  auto stat = ReadParsed(dir, "cpuacct.stat", true, ParseFlatKeyed);
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const uint64_t hz = ticks > 0 ? static_cast<uint64_t>(ticks) : 100;  // USER_HZ
  if (auto user = Key(stat, "user")) s.cpu.user_ns = TicksToNs(*user, hz);
  if (auto system = Key(stat, "system")) s.cpu.system_ns = TicksToNs(*system, hz);
}

void ReadCpuV1(const Dir& dir, CgroupStats& s) {
  auto stat = ReadParsed(dir, "cpu.stat", true, ParseFlatKeyed);
  s.cpu.nr_periods = Key(stat, "nr_periods");
  s.cpu.nr_throttled = Key(stat, "nr_throttled");
  s.cpu.throttled_ns = Key(stat, "throttled_time");
  s.cpu_spec.shares = ReadParsed(dir, "cpu.shares", true, ParseUint);
  s.cpu_spec.quota_us = ReadParsed(dir, "cpu.cfs_quota_us", true, ParseLimit);
  s.cpu_spec.period_us = ReadParsed(dir, "cpu.cfs_period_us", true, ParseUint);
}

void ReadCpuV2(const Dir& dir, CgroupStats& s) {
  // usage/user/system are always there; the CFS counters only with the cpu
  // controller enabled for this cgroup.
  auto stat = ReadParsed(dir, "cpu.stat", true, ParseFlatKeyed);
  s.cpu.usage_ns = Scaled(Key(stat, "usage_usec"), 1000);
  s.cpu.user_ns = Scaled(Key(stat, "user_usec"), 1000);
  s.cpu.system_ns = Scaled(Key(stat, "system_usec"), 1000);
  s.cpu.nr_periods = Key(stat, "nr_periods");
  s.cpu.nr_throttled = Key(stat, "nr_throttled");
  s.cpu.throttled_ns = Scaled(Key(stat, "throttled_usec"), 1000);
  // The root cgroup has neither cpu.weight nor cpu.max.
  if (auto weight = ReadParsed(dir, "cpu.weight", false, ParseUint)) {
    s.cpu_spec.shares = CpuWeightToShares(*weight);
  }
  if (auto max = ReadParsed(dir, "cpu.max", false, ParseCpuMax)) {
    s.cpu_spec.quota_us = max->first;
    s.cpu_spec.period_us = max->second;
  }
}

void ReadMemoryV1(const Dir& dir, MemoryStats& m) {
  m.usage = ReadParsed(dir, "memory.usage_in_bytes", true, ParseUint);
  m.max_usage = ReadParsed(dir, "memory.max_usage_in_bytes", true, ParseUint);
  auto stat = ReadParsed(dir, "memory.stat", true, ParseFlatKeyed);
  SetWorkingSet(m, Total(stat, "inactive_file"));
  m.rss = Total(stat, "rss");
  m.cache = Total(stat, "cache");
  m.mapped_file = Total(stat, "mapped_file");
  m.swap = Total(stat, "swap");
  m.pgfault = Total(stat, "pgfault");
  m.pgmajfault = Total(stat, "pgmajfault");
  m.failcnt = ReadParsed(dir, "memory.failcnt", true, ParseUint);
  // kmem accounting files are gone when the kernel is built without them.
  m.kernel_usage = ReadParsed(dir, "memory.kmem.usage_in_bytes", false, ParseUint);
  // oom_kill is in memory.oom_control since Linux 4.13.
  m.oom_kills = Key(ReadParsed(dir, "memory.oom_control", true, ParseFlatKeyed), "oom_kill");
  m.limit = ReadParsed(dir, "memory.limit_in_bytes", true, ParseLimit);
  // memsw files exist only with swap accounting (CONFIG_MEMCG_SWAP, swapaccount=1).
  m.swap_limit = ReadParsed(dir, "memory.memsw.limit_in_bytes", false, ParseLimit);
  m.soft_limit = ReadParsed(dir, "memory.soft_limit_in_bytes", true, ParseLimit);
}

void ReadMemoryV2(const Dir& dir, MemoryStats& m) {
  m.usage = ReadParsed(dir, "memory.current", true, ParseUint);
  m.max_usage = ReadParsed(dir, "memory.peak", false, ParseUint);  // Linux >= 5.19
  auto stat = ReadParsed(dir, "memory.stat", true, ParseFlatKeyed);
  SetWorkingSet(m, Key(stat, "inactive_file"));
  m.rss = Key(stat, "anon");
  m.cache = Key(stat, "file");
  m.mapped_file = Key(stat, "file_mapped");
  m.pgfault = Key(stat, "pgfault");
  m.pgmajfault = Key(stat, "pgmajfault");
  m.kernel_usage = Key(stat, "kernel");                               // Linux >= 5.18
  m.swap = ReadParsed(dir, "memory.swap.current", false, ParseUint);  // needs CONFIG_SWAP
  m.oom_kills = Key(ReadParsed(dir, "memory.events", true, ParseFlatKeyed), "oom_kill");
  m.limit = ReadParsed(dir, "memory.max", true, ParseLimit);
  m.swap_limit = ReadParsed(dir, "memory.swap.max", false, ParseLimit);
  // cAdvisor's container_spec_memory_reservation_limit_bytes on v2.
  m.soft_limit = ReadParsed(dir, "memory.min", true, ParseLimit);
}

void ReadPids(const Dir& dir, PidsStats& p) {
  p.current = ReadParsed(dir, "pids.current", true, ParseUint);
  p.max = ReadParsed(dir, "pids.max", true, ParseLimit);
}

// v1: the throttle layer's counters, recursive when the kernel has them (as
// runc's fs/blkio.go and cAdvisor fall back).
std::optional<std::vector<BlkioDeviceStats>> ReadBlkioV1(const Dir& dir) {
  std::vector<BlkioDeviceStats> devices;
  for (bool bytes : {true, false}) {
    const std::string base =
        bytes ? "blkio.throttle.io_service_bytes" : "blkio.throttle.io_serviced";
    std::optional<std::string> text = ReadIn(dir, base + "_recursive", false);
    std::string name = base + "_recursive";
    if (!text) {
      name = base;
      text = ReadIn(dir, name, true);
    }
    if (!text) return std::nullopt;
    if (absl::Status st = ParseBlkioV1(*text, bytes, devices); !st.ok()) {
      dir.errors->push_back(Annotate(st, absl::StrCat(dir.path, "/", name)));
      return std::nullopt;
    }
  }
  return devices;
}

// The page sizes with files in `dir`: "hugetlb.2MB.current" (v2) or
// "hugetlb.2MB.usage_in_bytes" (v1) gives "2MB"; v2's ".rsvd." files are skipped.
std::vector<std::string> PageSizes(const std::string& dir, bool v2) {
  std::vector<std::string> sizes;
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) return sizes;
  const std::string usage = absl::StrCat(".", v2 ? "current" : "usage_in_bytes");
  for (absl::string_view name : *names) {
    if (absl::ConsumePrefix(&name, "hugetlb.") && absl::ConsumeSuffix(&name, usage) &&
        !absl::StrContains(name, '.')) {
      sizes.emplace_back(name);
    }
  }
  return sizes;
}

// A cgroup's hugetlb files (one set per page size the kernel supports, fixed
// at boot; none in a v2 cgroup without the controller) are listed once per
// cached cgroup rather than with a readdir per scrape.
std::vector<std::string> CachedPageSizes(const Dir& dir, bool v2) {
  if (dir.cache == nullptr) return PageSizes(dir.path, v2);
  std::optional<std::vector<std::string>>& sizes = dir.cache->hugetlb_sizes();
  if (!sizes) sizes = PageSizes(dir.path, v2);
  return *sizes;
}

void ReadHugetlb(const Dir& dir, bool v2, std::vector<HugetlbStats>& out) {
  const absl::string_view usage_file = v2 ? "current" : "usage_in_bytes";
  for (const std::string& size : CachedPageSizes(dir, v2)) {
    HugetlbStats h{size};
    const std::string base = absl::StrCat("hugetlb.", size, ".");
    h.usage = ReadParsed(dir, absl::StrCat(base, usage_file), true, ParseUint);
    if (v2) {
      h.failcnt = Key(ReadParsed(dir, base + "events", true, ParseFlatKeyed), "max");
    } else {
      h.max_usage = ReadParsed(dir, base + "max_usage_in_bytes", true, ParseUint);
      h.failcnt = ReadParsed(dir, base + "failcnt", true, ParseUint);
    }
    out.push_back(std::move(h));
  }
}

// PSI lives in every cgroup2 directory whatever its controllers (absent with
// psi=0 or cgroup.pressure 0), so in hybrid layouts too.
void ReadPressure(const Dir& dir, CgroupStats& s) {
  s.cpu_pressure = ReadParsed(dir, "cpu.pressure", false, ParsePressure);
  s.memory_pressure = ReadParsed(dir, "memory.pressure", false, ParsePressure);
  s.io_pressure = ReadParsed(dir, "io.pressure", false, ParsePressure);
}

std::string DirOf(const CgroupHierarchy& h, absl::string_view cgroup_path) {
  return cgroup_path == "/" ? h.mount_point : absl::StrCat(h.mount_point, cgroup_path);
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

absl::StatusOr<std::string> CgroupFileCache::Read(const std::string& dir, absl::string_view name) {
  const std::string path = absl::StrCat(dir, "/", name);
  auto it = fds_.find(path);
  if (it == fds_.end()) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, "open", path);
    it = fds_.emplace(path, std::move(fd)).first;
  }
  std::string out;
  if (int err = PreadWhole(it->second.get(), out); err != 0) {
    fds_.erase(it);
    if (err == ENODEV) gone_ = true;  // the cgroup was removed
    return ErrnoStatus(err == ENODEV ? ENOENT : err, "read", path);
  }
  return out;
}

absl::StatusOr<CgroupStats> ReadCgroupStats(const CgroupLayout& layout,
                                            absl::string_view cgroup_path, CgroupFileCache* cache) {
  if (cgroup_path != "/") BERTH_RETURN_IF_ERROR(CheckCgroupPath(cgroup_path));
  // With files cached from a previous read, a removed cgroup shows as ENODEV
  // below; otherwise look for its directory first.
  const bool known = cache != nullptr && cache->size() > 0;
  bool found = known;
  for (const CgroupHierarchy& h : layout.hierarchies())
    found = found || IsDir(DirOf(h, cgroup_path));
  if (!found) {
    return absl::NotFoundError(absl::StrCat("cgroup `", cgroup_path, "` is in no hierarchy"));
  }
  CgroupStats s;
  // v1 co-mounts (cpu,cpuacct) share one directory: opened once.
  auto dir_for =
      [&](absl::string_view controller) -> std::optional<std::pair<std::shared_ptr<Dir>, bool>> {
    const CgroupHierarchy* h = layout.Find(controller);
    if (h == nullptr) return std::nullopt;
    return std::make_pair(std::make_shared<Dir>(DirOf(*h, cgroup_path), &s.errors, cache), h->v2);
  };
  if (auto d = dir_for("cpu")) d->second ? ReadCpuV2(*d->first, s) : ReadCpuV1(*d->first, s);
  if (auto d = dir_for("cpuacct")) ReadCpuacctV1(*d->first, s);  // v1 only
  if (auto d = dir_for("memory")) {
    d->second ? ReadMemoryV2(*d->first, s.memory) : ReadMemoryV1(*d->first, s.memory);
  }
  if (auto d = dir_for("pids")) ReadPids(*d->first, s.pids);
  if (auto d = dir_for("blkio")) s.blkio = ReadBlkioV1(*d->first);
  if (auto d = dir_for("io")) s.blkio = ReadParsed(*d->first, "io.stat", true, ParseIoStat);
  if (const CgroupHierarchy* h = layout.Find("hugetlb")) {
    ReadHugetlb(Dir(DirOf(*h, cgroup_path), &s.errors, cache), h->v2, s.hugetlb);
  }
  for (const CgroupHierarchy& h : layout.hierarchies()) {
    if (!h.v2) continue;
    ReadPressure(Dir(DirOf(h, cgroup_path), &s.errors, cache), s);
    break;
  }
  if (cache != nullptr && cache->gone()) {
    cache->Clear();
    return absl::NotFoundError(absl::StrCat("cgroup `", cgroup_path, "` was removed"));
  }
  return s;
}

absl::StatusOr<std::vector<pid_t>> ReadCgroupProcs(const CgroupLayout& layout,
                                                   absl::string_view cgroup_path) {
  if (cgroup_path != "/") BERTH_RETURN_IF_ERROR(CheckCgroupPath(cgroup_path));
  const CgroupHierarchy* h = layout.Find("pids");
  if (h == nullptr) h = layout.Find("memory");
  if (h == nullptr && !layout.hierarchies().empty()) h = &layout.hierarchies()[0];
  if (h == nullptr) return absl::NotFoundError("no cgroup hierarchy");
  const std::string path = DirOf(*h, cgroup_path) + "/cgroup.procs";
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<std::vector<pid_t>> pids = ParsePidList(text);
  if (!pids.ok()) return Annotate(pids.status(), path);
  return pids;
}

}  // namespace berth::metrics
