#include "metrics/cgroup_parse.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace berth::metrics {
namespace {

// v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (2^63 - PAGE_SIZE on
// 64-bit); anything from 2^62 up is that, whatever the page size.
constexpr uint64_t kV1UnlimitedFloor = uint64_t{1} << 62;

absl::Status Invalid(absl::string_view what, absl::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("parse ", what, ": `", absl::CEscape(text.substr(0, 80)), "`"));
}

std::vector<absl::string_view> Lines(absl::string_view text) {
  return absl::StrSplit(text, '\n', absl::SkipWhitespace());
}

std::vector<absl::string_view> Fields(absl::string_view line) {
  return absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

absl::StatusOr<std::pair<uint32_t, uint32_t>> ParseDevice(absl::string_view dev) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(dev, ':');
  uint32_t major, minor;
  if (!absl::SimpleAtoi(parts.first, &major) || !absl::SimpleAtoi(parts.second, &minor)) {
    return Invalid("device", dev);
  }
  return std::make_pair(major, minor);
}

BlkioDeviceStats& DeviceEntry(std::vector<BlkioDeviceStats>& devices, uint32_t major,
                              uint32_t minor) {
  for (BlkioDeviceStats& d : devices) {
    if (d.major == major && d.minor == minor) return d;
  }
  devices.push_back(BlkioDeviceStats{major, minor});
  return devices.back();
}

}  // namespace

absl::StatusOr<uint64_t> ParseUint(absl::string_view text) {
  uint64_t v;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &v)) return Invalid("number", text);
  return v;
}

absl::StatusOr<uint64_t> ParseLimit(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (t == "max" || t == "-1") return kUnlimited;
  uint64_t v;
  if (!absl::SimpleAtoi(t, &v)) return Invalid("limit", text);
  return v >= kV1UnlimitedFloor ? kUnlimited : v;
}

absl::StatusOr<absl::flat_hash_map<std::string, uint64_t>> ParseFlatKeyed(absl::string_view text) {
  absl::flat_hash_map<std::string, uint64_t> out;
  for (absl::string_view line : Lines(text)) {
    std::vector<absl::string_view> f = Fields(line);
    uint64_t v;
    if (f.size() != 2 || !absl::SimpleAtoi(f[1], &v)) return Invalid("key value line", line);
    out[f[0]] = v;
  }
  return out;
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> ParseCpuMax(absl::string_view text) {
  std::vector<absl::string_view> f = Fields(absl::StripAsciiWhitespace(text));
  uint64_t period;
  if (f.size() != 2 || !absl::SimpleAtoi(f[1], &period)) return Invalid("cpu.max", text);
  uint64_t quota = kUnlimited;
  if (f[0] != "max" && !absl::SimpleAtoi(f[0], &quota)) return Invalid("cpu.max", text);
  return std::make_pair(quota, period);
}

absl::StatusOr<std::vector<BlkioDeviceStats>> ParseIoStat(absl::string_view text) {
  std::vector<BlkioDeviceStats> out;
  for (absl::string_view line : Lines(text)) {
    std::vector<absl::string_view> f = Fields(line);
    if (f.empty()) continue;
    auto dev = ParseDevice(f[0]);
    if (!dev.ok()) return dev.status();
    BlkioDeviceStats d{dev->first, dev->second};
    for (size_t i = 1; i < f.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(f[i], '=');
      uint64_t v;
      if (!absl::SimpleAtoi(kv.second, &v)) continue;  // iocost keys carry decimals
      if (kv.first == "rbytes") d.read_bytes = v;
      if (kv.first == "wbytes") d.write_bytes = v;
      if (kv.first == "rios") d.read_ops = v;
      if (kv.first == "wios") d.write_ops = v;
    }
    out.push_back(d);
  }
  return out;
}

absl::Status ParseBlkioV1(absl::string_view text, bool bytes,
                          std::vector<BlkioDeviceStats>& devices) {
  for (absl::string_view line : Lines(text)) {
    std::vector<absl::string_view> f = Fields(line);
    if (f.size() == 2 && f[0] == "Total") continue;  // the grand total line
    uint64_t v;
    if (f.size() != 3 || !absl::SimpleAtoi(f[2], &v)) return Invalid("blkio line", line);
    auto dev = ParseDevice(f[0]);
    if (!dev.ok()) return dev.status();
    if (f[1] != "Read" && f[1] != "Write") continue;
    BlkioDeviceStats& d = DeviceEntry(devices, dev->first, dev->second);
    bool read = f[1] == "Read";
    if (bytes) {
      (read ? d.read_bytes : d.write_bytes) = v;
    } else {
      (read ? d.read_ops : d.write_ops) = v;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PsiStats> ParsePressure(absl::string_view text) {
  PsiStats out;
  for (absl::string_view line : Lines(text)) {
    std::vector<absl::string_view> f = Fields(line);
    if (f.empty() || (f[0] != "some" && f[0] != "full")) return Invalid("pressure line", line);
    std::optional<uint64_t> total;
    for (size_t i = 1; i < f.size(); ++i) {
      uint64_t v;
      if (absl::ConsumePrefix(&f[i], "total=") && absl::SimpleAtoi(f[i], &v)) total = v;
    }
    if (!total) return Invalid("pressure line", line);
    (f[0] == "some" ? out.some_total_us : out.full_total_us) = total;
  }
  if (!out.some_total_us) return Invalid("pressure", text);
  return out;
}

absl::StatusOr<std::vector<pid_t>> ParsePidList(absl::string_view text) {
  std::vector<pid_t> out;
  for (absl::string_view line : Lines(text)) {
    pid_t pid;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &pid) || pid <= 0) {
      return Invalid("pid", line);
    }
    out.push_back(pid);
  }
  return out;
}

uint64_t CpuWeightToShares(uint64_t weight) {
  weight = std::clamp<uint64_t>(weight, 1, 10000);
  return 2 + ((weight - 1) * 262142) / 9999;
}

uint64_t TicksToNs(uint64_t ticks, uint64_t ticks_per_second) {
  if (ticks_per_second == 0) return 0;
  // Whole seconds first, so ticks * 1e9 cannot overflow for large counters.
  return (ticks / ticks_per_second) * 1'000'000'000 +
         (ticks % ticks_per_second) * 1'000'000'000 / ticks_per_second;
}

absl::StatusOr<uint64_t> ParseStatusThreads(absl::string_view text) {
  for (absl::string_view line : Lines(text)) {
    if (absl::ConsumePrefix(&line, "Threads:")) return ParseUint(line);
  }
  return Invalid("status Threads", text);
}

absl::StatusOr<std::vector<NetInterfaceStats>> ParseNetDev(absl::string_view text) {
  std::vector<NetInterfaceStats> out;
  for (absl::string_view line : Lines(text)) {
    size_t colon = line.find(':');
    if (line.find('|') != absl::string_view::npos) continue;  // the two header lines
    if (colon == absl::string_view::npos) return Invalid("net/dev line", line);
    absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
    std::vector<absl::string_view> f = Fields(line.substr(colon + 1));
    uint64_t v[16];
    if (f.size() < 16) return Invalid("net/dev line", line);
    for (int i = 0; i < 16; ++i) {
      if (!absl::SimpleAtoi(f[i], &v[i])) return Invalid("net/dev line", line);
    }
    if (name == "lo") continue;
    out.push_back(
        NetInterfaceStats{std::string(name), v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11]});
  }
  return out;
}

}  // namespace berth::metrics
