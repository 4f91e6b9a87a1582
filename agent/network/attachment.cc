#include "agent/network/attachment.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::network {
namespace {

// Linux's dev_valid_name(): what `ip link` refuses, we refuse before a plugin does.
bool IsValidIfName(absl::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || absl::ascii_isspace(c)) return false;
  }
  return true;
}

absl::Status ValidatePortMapping(const PortMapping& p) {
  if (p.host_port <= 0 || p.host_port > 65535 || p.container_port <= 0 ||
      p.container_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port mapping ", p.host_port, "->", p.container_port, ": port out of range"));
  }
  if (p.protocol != "tcp" && p.protocol != "udp" && p.protocol != "sctp") {
    return absl::InvalidArgumentError(
        absl::StrCat("port mapping ", p.host_port, ": unknown protocol `", p.protocol, "`"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> KubernetesArgs(const std::string& pod_namespace,
                                                                const std::string& pod_name,
                                                                const std::string& sandbox_id,
                                                                const std::string& pod_uid) {
  return {{"IgnoreUnknown", "1"},
          {"K8S_POD_NAMESPACE", pod_namespace},
          {"K8S_POD_NAME", pod_name},
          {"K8S_POD_INFRA_CONTAINER_ID", sandbox_id},
          {"K8S_POD_UID", pod_uid}};
}

absl::Status ValidateAttachment(const Attachment& a) {
  if (!IsValidCniIdentifier(a.container_id)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid container id `", a.container_id, "`"));
  }
  if (!IsValidIfName(a.ifname)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid interface name `", a.ifname, "`"));
  }
  for (const auto& [key, value] : a.args) {
    if (key.empty() || absl::StrContains(key, ';') || absl::StrContains(key, '=') ||
        absl::StrContains(value, ';')) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid CNI_ARGS pair `", key, "=", value, "`"));
    }
  }
  for (const PortMapping& p : a.port_mappings) {
    if (absl::Status s = ValidatePortMapping(p); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string FormatCniArgs(const std::vector<std::pair<std::string, std::string>>& args) {
  std::string out;
  for (const auto& [key, value] : args) {
    absl::StrAppend(&out, out.empty() ? "" : ";", key, "=", value);
  }
  return out;
}

nlohmann::json CapabilityArgs(const Attachment& a) {
  nlohmann::json caps = nlohmann::json::object();
  if (!a.port_mappings.empty()) {
    nlohmann::json ports = nlohmann::json::array();
    for (const PortMapping& p : a.port_mappings) {
      nlohmann::json port = {
          {"hostPort", p.host_port}, {"containerPort", p.container_port}, {"protocol", p.protocol}};
      if (!p.host_ip.empty()) port["hostIP"] = p.host_ip;
      ports.push_back(std::move(port));
    }
    caps["portMappings"] = std::move(ports);
  }
  if (a.bandwidth.has_value()) {
    const Bandwidth& b = *a.bandwidth;
    caps["bandwidth"] = {{"ingressRate", b.ingress_rate},
                         {"ingressBurst", b.ingress_burst},
                         {"egressRate", b.egress_rate},
                         {"egressBurst", b.egress_burst}};
  }
  if (!a.ips.empty()) caps["ips"] = a.ips;
  if (!a.ip_ranges.empty()) {
    nlohmann::json sets = nlohmann::json::array();
    for (const std::string& subnet : a.ip_ranges) {
      sets.push_back(nlohmann::json::array({{{"subnet", subnet}}}));
    }
    caps["ipRanges"] = std::move(sets);
  }
  return caps;
}

nlohmann::json BuildPluginConfig(const NetworkConfigList& list, size_t index,
                                 const nlohmann::json& prev_result,
                                 const nlohmann::json& capability_args) {
  nlohmann::json conf = list.plugins[index].raw;
  conf["name"] = list.name;
  conf["cniVersion"] = list.cni_version;
  nlohmann::json runtime_config = nlohmann::json::object();
  if (auto caps = conf.find("capabilities"); caps != conf.end() && caps->is_object()) {
    for (const auto& [capability, enabled] : caps->items()) {
      if (!enabled.is_boolean() || !enabled.get<bool>()) continue;
      if (auto arg = capability_args.find(capability); arg != capability_args.end()) {
        runtime_config[capability] = *arg;
      }
    }
  }
  // SPEC.md drops `capabilities`; like libcni's InjectConf, runtimeConfig replaces a
  // static one from the file only when there is something to inject.
  conf.erase("capabilities");
  if (!runtime_config.empty()) conf["runtimeConfig"] = std::move(runtime_config);
  if (!prev_result.is_null()) conf["prevResult"] = prev_result;
  return conf;
}

}  // namespace berth::network
