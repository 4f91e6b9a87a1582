// CNI results: what the last plugin of an ADD prints, read into one
// version-neutral struct.
//
// Two wire formats exist (SPEC.md, section 5, and its 0.x predecessors):
//   0.3.0, 0.3.1, 0.4.0, 1.0.0  {"interfaces": [...], "ips": [{"address": "10.1.0.5/24",
//                                "gateway": ..., "interface": 2}], "routes", "dns"}
//                                (before 1.0.0 each ip also carries "version": "4"|"6")
//   0.1.0, 0.2.0                {"ip4": {"ip": "10.1.0.5/24", "gateway", "routes"},
//                                "ip6": {...}, "dns"}
// ParseResult reads both, so the rest of the agent never looks at versions; the
// raw JSON is kept because it is what the next plugin's `prevResult` and the
// cache must carry unchanged.
//
//   BERTH_ASSIGN_OR_RETURN(Result r, ParseResult(stdout_text));
//   PodIps ips = SelectPodIps(r, "eth0");  // ips.primary == "10.1.0.5"
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace berth::network {

struct Interface {
  std::string name;
  std::string mac;
  std::string sandbox;  // netns path for interfaces inside the container; empty on the host
};

struct IpConfig {
  int family = 4;                // 4 or 6
  std::string address;           // CIDR: "10.1.0.5/24"
  std::string gateway;           // may be empty
  std::optional<int> interface;  // index into Result::interfaces
  // The address without its prefix length: "10.1.0.5".
  std::string Ip() const;
};

struct Route {
  std::string dst;  // CIDR
  std::string gw;   // may be empty
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
};

struct Result {
  std::string cni_version;
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Dns dns;
  nlohmann::json raw;  // the document as the plugin printed it
};

// Parses a result of any version. INVALID_ARGUMENT for malformed JSON, a
// missing or unknown-shaped `cniVersion`, an address that is not an IP in CIDR
// form, or an interface index out of range.
absl::StatusOr<Result> ParseResult(absl::string_view text);
absl::StatusOr<Result> ResultFromJson(const nlohmann::json& doc);

// The addresses a CRI PodSandboxStatus reports (network.ip, additional_ips).
struct PodIps {
  std::string primary;                  // empty when the result has no IP
  std::vector<std::string> additional;  // the others, in result order
};
// Takes the IPs of the sandbox interface `ifname` (interface index pointing at
// an interface with that name and a sandbox); when no IP names an interface
// (0.2.0 results, plugins that omit it), all IPs. The first IPv4 is primary, as
// containerd's selectPodIPs does; with no IPv4, the first IPv6.
PodIps SelectPodIps(const Result& result, absl::string_view ifname);

}  // namespace berth::network
