#include "agent/network/cache.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "os/files.h"
#include "os/status.h"

namespace berth::network {
namespace {

constexpr char kKind[] = "berth-cni-cache-v1";

template <typename T>
bool Get(const nlohmann::json& object, const char* key, T& out) {
  auto it = object.find(key);
  if (it == object.end()) return false;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return false;
  } else {
    if (!it->is_number_unsigned() && !it->is_number_integer()) return false;
  }
  out = it->get<T>();
  return true;
}

nlohmann::json AttachmentToJson(const Attachment& a) {
  nlohmann::json args = nlohmann::json::array();
  for (const auto& [key, value] : a.args) args.push_back({key, value});
  return {{"containerId", a.container_id},
          {"netns", a.netns},
          {"ifName", a.ifname},
          {"args", args},
          {"capabilityArgs", CapabilityArgs(a)}};
}

// The inverse of CapabilityArgs for the capabilities we write.
void CapabilitiesFromJson(const nlohmann::json& caps, Attachment& a) {
  if (auto ports = caps.find("portMappings"); ports != caps.end() && ports->is_array()) {
    for (const nlohmann::json& p : *ports) {
      PortMapping m;
      Get(p, "hostPort", m.host_port);
      Get(p, "containerPort", m.container_port);
      Get(p, "protocol", m.protocol);
      Get(p, "hostIP", m.host_ip);
      a.port_mappings.push_back(std::move(m));
    }
  }
  if (auto bw = caps.find("bandwidth"); bw != caps.end() && bw->is_object()) {
    Bandwidth b;
    Get(*bw, "ingressRate", b.ingress_rate);
    Get(*bw, "ingressBurst", b.ingress_burst);
    Get(*bw, "egressRate", b.egress_rate);
    Get(*bw, "egressBurst", b.egress_burst);
    a.bandwidth = b;
  }
  if (auto ips = caps.find("ips"); ips != caps.end() && ips->is_array()) {
    for (const nlohmann::json& ip : *ips) {
      if (ip.is_string()) a.ips.push_back(ip.get<std::string>());
    }
  }
  if (auto sets = caps.find("ipRanges"); sets != caps.end() && sets->is_array()) {
    for (const nlohmann::json& set : *sets) {
      if (!set.is_array()) continue;
      for (const nlohmann::json& range : set) {
        std::string subnet;
        if (range.is_object() && Get(range, "subnet", subnet)) a.ip_ranges.push_back(subnet);
      }
    }
  }
}

absl::StatusOr<Attachment> AttachmentFromJson(const nlohmann::json& doc) {
  Attachment a;
  if (!doc.is_object() || !Get(doc, "containerId", a.container_id) ||
      !Get(doc, "ifName", a.ifname)) {
    return absl::InvalidArgumentError("cache entry: bad `attachment`");
  }
  Get(doc, "netns", a.netns);
  if (auto args = doc.find("args"); args != doc.end() && args->is_array()) {
    for (const nlohmann::json& pair : *args) {
      if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
        a.args.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
      }
    }
  }
  if (auto caps = doc.find("capabilityArgs"); caps != doc.end() && caps->is_object()) {
    CapabilitiesFromJson(*caps, a);
  }
  return a;
}

}  // namespace

std::string CachePath(const std::string& cache_dir, absl::string_view network,
                      const Attachment& attachment) {
  return absl::StrCat(cache_dir, "/results/", network, "-", attachment.container_id, "-",
                      attachment.ifname);
}

nlohmann::json ToJson(const CacheEntry& entry) {
  return {{"kind", kKind},
          {"config", ToJson(entry.config)},
          {"result", entry.result},
          {"attachment", AttachmentToJson(entry.attachment)}};
}

absl::Status WriteCache(const std::string& cache_dir, const CacheEntry& entry) {
  BERTH_RETURN_IF_ERROR(MakeDirs(cache_dir + "/results", 0700));
  return WriteFileAtomically(CachePath(cache_dir, entry.config.name, entry.attachment),
                             ToJson(entry).dump(), 0600, /*durable=*/true);
}

absl::StatusOr<CacheEntry> ParseCache(absl::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::string kind;
  if (!doc.is_object() || !Get(doc, "kind", kind) || kind != kKind) {
    return absl::InvalidArgumentError("not a berth cni cache entry");
  }
  CacheEntry entry;
  auto config = doc.find("config");
  if (config == doc.end()) return absl::InvalidArgumentError("cache entry: no `config`");
  absl::StatusOr<NetworkConfigList> list = ParseNetworkConfig(config->dump(), ConfigFormat::kList);
  if (!list.ok()) return Annotate(list.status(), "cache entry config");
  entry.config = *std::move(list);
  if (auto result = doc.find("result"); result != doc.end()) entry.result = *result;
  auto attachment = doc.find("attachment");
  if (attachment == doc.end()) return absl::InvalidArgumentError("cache entry: no `attachment`");
  BERTH_ASSIGN_OR_RETURN(entry.attachment, AttachmentFromJson(*attachment));
  return entry;
}

absl::StatusOr<CacheEntry> ReadCache(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<CacheEntry> entry = ParseCache(text);
  if (!entry.ok()) return Annotate(entry.status(), absl::StrCat("`", path, "`"));
  return entry;
}

std::vector<std::string> FindCacheFiles(const std::string& cache_dir,
                                        absl::string_view container_id, absl::string_view ifname) {
  std::vector<std::string> out;
  const std::string dir = cache_dir + "/results";
  absl::StatusOr<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) return out;
  const std::string suffix = absl::StrCat("-", container_id, "-", ifname);
  for (const std::string& name : *names) {
    // A network name is at least one character, and no temp file of ours counts.
    if (name.size() > suffix.size() && absl::EndsWith(name, suffix)) {
      out.push_back(absl::StrCat(dir, "/", name));
    }
  }
  return out;
}

absl::Status RemoveCache(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "unlink", path);
  return absl::OkStatus();
}

}  // namespace berth::network
