// CRI LinuxContainerResources -> the shim's Resources (OCI linux.resources).
//
// CRI's 0 (or "") means "not specified" for every field (api.proto,
// LinuxContainerResources), so only non-zero fields are set, as containerd's
// WithResources does (internal/cri/opts/spec_linux_opts.go). Two differences:
// - containerd sets memory+swap = memory when no swap limit is given and the
//   swap controller exists; we set memory_swap only when asked, because this
//   translation does not look at the host's cgroups and the shim refuses a
//   swap limit on kernels without swap accounting (os/cgroup).
// - `unified` (raw cgroup v2 files) is copied by containerd for runc to write.
//   Keys that map onto a typed field are translated (so that they work on v1
//   hosts too); the rest go to the shim as they are, which writes them last,
//   as runc does, and refuses a key the kernel has no file for, naming it.
#include <algorithm>
#include <cstdint>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/runtime/container_spec.h"
#include "os/status.h"

namespace berth::lifecycle {
namespace {

bool ParseInt(absl::string_view s, int64_t* v) {
  s = absl::StripAsciiWhitespace(s);
  if (s.empty() || !(absl::ascii_isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-')) {
    return false;
  }
  return absl::SimpleAtoi(s, v);
}

// "max" is -1 (no limit); otherwise a number >= 0.
bool ParseLimit(absl::string_view s, int64_t* v) {
  if (absl::StripAsciiWhitespace(s) == "max") {
    *v = -1;
    return true;
  }
  return ParseInt(s, v) && *v >= 0;
}

// A huge page size as cgroup files name it: digits then KB, MB or GB.
bool PageSize(absl::string_view s) {
  if (s.size() < 3 || s.size() > 12) return false;
  absl::string_view unit = s.substr(s.size() - 2);
  if (unit != "KB" && unit != "MB" && unit != "GB") return false;
  return std::all_of(s.begin(), s.end() - 2,
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); });
}

absl::Status BadUnified(absl::string_view key, absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("unified[", key, "] `", value, "`: ", why));
}

// cpu.weight back to shares: the inverse of os/cgroup's CpuSharesToWeight,
// weight = 1 + (shares - 2) * 9999 / 262142, rounded up so that the shim's
// conversion gives the same weight back.
uint64_t WeightToShares(int64_t weight) {
  const uint64_t w = static_cast<uint64_t>(weight) - 1;
  return 2 + (w * 262142 + 9998) / 9999;
}

absl::Status ApplyUnifiedKey(const std::string& key, const std::string& value,
                             shim::v1::Resources& out) {
  int64_t v = 0;
  if (key == "memory.max") {
    if (!ParseLimit(value, &v)) return BadUnified(key, value, "not a byte count or \"max\"");
    out.set_memory_limit(v);
  } else if (key == "pids.max") {
    if (!ParseLimit(value, &v)) return BadUnified(key, value, "not a count or \"max\"");
    out.set_pids_max(v);
  } else if (key == "cpu.weight") {
    if (!ParseInt(value, &v) || v < 1 || v > 10000) {
      return BadUnified(key, value, "not a weight in 1..10000");
    }
    out.set_cpu_shares(WeightToShares(v));
  } else if (key == "cpu.max") {
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::StripAsciiWhitespace(value), ' ', absl::SkipEmpty());
    int64_t period = 0;
    if (f.empty() || f.size() > 2 || !ParseLimit(f[0], &v) ||
        (f.size() == 2 && (!ParseInt(f[1], &period) || period <= 0))) {
      return BadUnified(key, value, "not \"<quota|max> [<period>]\"");
    }
    out.set_cpu_quota_us(v);
    if (f.size() == 2) out.set_cpu_period_us(static_cast<uint64_t>(period));
  } else if (key == "cpuset.cpus") {
    out.set_cpuset_cpus(std::string(absl::StripAsciiWhitespace(value)));
  } else if (key == "cpuset.mems") {
    out.set_cpuset_mems(std::string(absl::StripAsciiWhitespace(value)));
  } else if (absl::StartsWith(key, "hugetlb.") && absl::EndsWith(key, ".max") &&
             key.size() > std::string("hugetlb..max").size()) {
    const std::string size = key.substr(8, key.size() - 8 - 4);
    if (!PageSize(size))
      return BadUnified(key, value, "not a hugetlb.<size>.max key (size: 2MB, 1GB, ...)");
    if (!ParseInt(value, &v) || v < 0) return BadUnified(key, value, "not a byte count");
    for (shim::v1::HugepageLimit& h : *out.mutable_hugepage_limits()) {
      if (h.page_size() == size) {
        h.set_limit(static_cast<uint64_t>(v));
        return absl::OkStatus();
      }
    }
    shim::v1::HugepageLimit* h = out.add_hugepage_limits();
    h->set_page_size(size);
    h->set_limit(static_cast<uint64_t>(v));
  } else {
    // Any other v2 interface file goes through as it is: the shim writes it,
    // and refuses it (naming the key) where the kernel has no such file.
    const size_t dot = key.find('.');
    const bool name_ok = dot != std::string::npos && dot > 0 && dot + 1 < key.size() &&
                         std::all_of(key.begin(), key.end(), [](char c) {
                           return absl::ascii_islower(static_cast<unsigned char>(c)) ||
                                  absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_' ||
                                  c == '.';
                         });
    if (!name_ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("unified[", key, "]: not a cgroup v2 interface file name"));
    }
    if (absl::StartsWith(key, "cgroup.") || absl::StartsWith(key, "devices.")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unified[", key, "]: cgroup.* files and device access are the runtime's to manage"));
    }
    if (value.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
      return BadUnified(key, value, "a value is one line");
    }
    (*out.mutable_unified())[key] = value;
  }
  return absl::OkStatus();
}

// memory.swap.max limits swap alone, with or without a memory limit: kubelet
// on cgroup v2 sends "0" (NoSwap) or its LimitedSwap share for every
// container. It replaces a memory+swap limit given as well.
absl::Status ApplyUnifiedSwap(const std::string& value, shim::v1::Resources& out) {
  const std::string key = "memory.swap.max";
  int64_t v = 0;
  if (!ParseLimit(value, &v)) return BadUnified(key, value, "not a byte count or \"max\"");
  out.clear_memory_swap();
  out.set_swap_max(v < 0 ? -1 : v);
  return absl::OkStatus();
}

absl::Status Negative(absl::string_view field, int64_t v) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", v, ": negative"));
}

}  // namespace

absl::StatusOr<shim::v1::Resources> ToShimResources(const runtime::v1::LinuxContainerResources& r) {
  shim::v1::Resources out;
  if (r.cpu_shares() < 0) return Negative("cpu_shares", r.cpu_shares());
  if (r.cpu_shares() > 0) out.set_cpu_shares(static_cast<uint64_t>(r.cpu_shares()));
  // -1: no limit (cgroup v1's cpu.cfs_quota_us).
  if (r.cpu_quota() < -1) return Negative("cpu_quota", r.cpu_quota());
  if (r.cpu_quota() != 0) out.set_cpu_quota_us(r.cpu_quota());
  if (r.cpu_period() < 0) return Negative("cpu_period", r.cpu_period());
  if (r.cpu_period() > 0) out.set_cpu_period_us(static_cast<uint64_t>(r.cpu_period()));
  if (!r.cpuset_cpus().empty()) out.set_cpuset_cpus(r.cpuset_cpus());
  if (!r.cpuset_mems().empty()) out.set_cpuset_mems(r.cpuset_mems());
  if (r.memory_limit_in_bytes() < -1) {
    return Negative("memory_limit_in_bytes", r.memory_limit_in_bytes());
  }
  if (r.memory_limit_in_bytes() != 0) out.set_memory_limit(r.memory_limit_in_bytes());
  if (r.memory_swap_limit_in_bytes() < -1) {
    return Negative("memory_swap_limit_in_bytes", r.memory_swap_limit_in_bytes());
  }
  if (r.memory_swap_limit_in_bytes() != 0) out.set_memory_swap(r.memory_swap_limit_in_bytes());
  for (int i = 0; i < r.hugepage_limits_size(); ++i) {
    const runtime::v1::HugepageLimit& h = r.hugepage_limits(i);
    if (!PageSize(h.page_size())) {
      return absl::InvalidArgumentError(absl::StrCat("hugepage_limits[", i, "].page_size `",
                                                     h.page_size(),
                                                     "`: not a huge page size such as 2MB or 1GB"));
    }
    shim::v1::HugepageLimit* o = out.add_hugepage_limits();
    o->set_page_size(h.page_size());
    o->set_limit(h.limit());
  }
  // In key order (the map's is unspecified), memory.swap.max last: it
  // replaces memory_swap_limit_in_bytes.
  std::map<std::string, std::string> unified(r.unified().begin(), r.unified().end());
  for (const auto& [key, value] : unified) {
    if (key == "memory.swap.max") continue;
    BERTH_RETURN_IF_ERROR(ApplyUnifiedKey(key, value, out));
  }
  if (auto it = unified.find("memory.swap.max"); it != unified.end()) {
    BERTH_RETURN_IF_ERROR(ApplyUnifiedSwap(it->second, out));
  }
  return out;
}

}  // namespace berth::lifecycle
