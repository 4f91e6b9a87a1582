// A CNI attachment: one container joined to one network through one interface,
// identified by (container id, ifname) (SPEC.md, section 3, "Attachment
// Parameters"), and how each plugin's execution config is derived from it.
//
// Per attachment the runtime supplies generic arguments (CNI_ARGS, given to
// every plugin) and capability arguments, which go into a plugin's
// `runtimeConfig` only for capabilities the plugin declares in its
// `capabilities` map (SPEC.md, "Deriving runtimeConfig"; the keys and shapes are
// CONVENTIONS.md's: portMappings, bandwidth, ips).
//
//   Attachment a;
//   a.container_id = sandbox_id;
//   a.netns = "/run/berth/sandboxes/<id>/ns/net";
//   a.args = KubernetesArgs("default", "nginx", sandbox_id, pod_uid);
//   a.port_mappings.push_back({.host_port = 8080, .container_port = 80, .protocol = "tcp"});
//   nlohmann::json conf = BuildPluginConfig(list, 1, prev_result, CapabilityArgs(a));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/network/config.h"
#include "nlohmann/json.hpp"

namespace berth::network {

// CONVENTIONS.md "portMappings". protocol is lowercase: "tcp", "udp" or "sctp".
struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";
  std::string host_ip;  // empty: all addresses
};

// CONVENTIONS.md "bandwidth": rates in bits per second, bursts in bits. Zero
// leaves that direction unshaped.
struct Bandwidth {
  uint64_t ingress_rate = 0;
  uint64_t ingress_burst = 0;
  uint64_t egress_rate = 0;
  uint64_t egress_burst = 0;
};

struct Attachment {
  std::string container_id;  // CNI_CONTAINERID: the sandbox id
  std::string netns;         // CNI_NETNS: path of the pinned network namespace
  std::string ifname = "eth0";
  // CNI_ARGS, in order, joined as "K=V;K=V".
  std::vector<std::pair<std::string, std::string>> args;
  // Capability arguments.
  std::vector<PortMapping> port_mappings;
  std::optional<Bandwidth> bandwidth;
  std::vector<std::string> ips;  // CONVENTIONS.md "ips": requested addresses, CIDR or plain
  // CONVENTIONS.md "ipRanges" (host-local): the node's pod CIDR from
  // UpdateRuntimeConfig, one range set with one subnet each.
  std::vector<std::string> ip_ranges;
};

// The CNI_ARGS kubelet's dockershim/containerd pass: IgnoreUnknown=1 first, so
// plugins that do not know the K8S_ keys accept them.
std::vector<std::pair<std::string, std::string>> KubernetesArgs(const std::string& pod_namespace,
                                                                const std::string& pod_name,
                                                                const std::string& sandbox_id,
                                                                const std::string& pod_uid);

// INVALID_ARGUMENT unless the container id is a CNI identifier, the ifname a
// Linux interface name (1-15 bytes, no '/', ':' or whitespace, not "." or ".."),
// the args free of ';' and '=' in keys and ';' in values, and the port mappings
// in range with a known protocol.
absl::Status ValidateAttachment(const Attachment& a);

// "K=V;K=V" for CNI_ARGS.
std::string FormatCniArgs(const std::vector<std::pair<std::string, std::string>>& args);

// The capability arguments as a JSON object keyed by capability name; only the
// ones with something to say (no empty portMappings).
nlohmann::json CapabilityArgs(const Attachment& a);

// The execution config of plugin `index` of `list` (SPEC.md, "Deriving execution
// configuration"): the plugin's JSON with `name` and `cniVersion` from the list,
// `runtimeConfig` holding the capability arguments the plugin declares (true in
// its `capabilities`), `prevResult` when `prev_result` is not null, and
// `capabilities` removed.
nlohmann::json BuildPluginConfig(const NetworkConfigList& list, size_t index,
                                 const nlohmann::json& prev_result,
                                 const nlohmann::json& capability_args);

}  // namespace berth::network
