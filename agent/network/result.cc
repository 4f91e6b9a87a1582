#include "agent/network/result.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/network/config.h"
#include "os/status.h"

namespace berth::network {
namespace {

std::string StringOr(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> Strings(const nlohmann::json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) return out;
  for (const nlohmann::json& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

// 4 or 6 for a plain address, 0 when it is neither.
int AddressFamily(const std::string& ip) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1) return 4;
  if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) return 6;
  return 0;
}

// "10.1.0.5/24" -> family; INVALID_ARGUMENT unless an address and a prefix in range.
absl::StatusOr<int> CidrFamily(const std::string& cidr) {
  size_t slash = cidr.find('/');
  int prefix = -1;
  int family = slash == std::string::npos ? 0 : AddressFamily(cidr.substr(0, slash));
  if (family == 0 || !absl::SimpleAtoi(cidr.substr(slash + 1), &prefix) || prefix < 0 ||
      prefix > (family == 4 ? 32 : 128)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid address `", cidr, "`"));
  }
  return family;
}

Dns ParseDns(const nlohmann::json& doc) {
  Dns dns;
  auto it = doc.find("dns");
  if (it == doc.end() || !it->is_object()) return dns;
  dns.nameservers = Strings(*it, "nameservers");
  dns.domain = StringOr(*it, "domain");
  dns.search = Strings(*it, "search");
  dns.options = Strings(*it, "options");
  return dns;
}

void ParseRoutes(const nlohmann::json& routes, std::vector<Route>& out) {
  if (!routes.is_array()) return;
  for (const nlohmann::json& r : routes) {
    if (r.is_object()) out.push_back(Route{StringOr(r, "dst"), StringOr(r, "gw")});
  }
}

absl::Status ParseIp(const nlohmann::json& ip, size_t interfaces, Result& out) {
  if (!ip.is_object()) return absl::InvalidArgumentError("`ips` holds a non-object");
  IpConfig c;
  c.address = StringOr(ip, "address");
  c.gateway = StringOr(ip, "gateway");
  BERTH_ASSIGN_OR_RETURN(c.family, CidrFamily(c.address));
  if (auto it = ip.find("interface"); it != ip.end() && it->is_number_integer()) {
    int index = it->get<int>();
    if (index < 0 || static_cast<size_t>(index) >= interfaces) {
      return absl::InvalidArgumentError(
          absl::StrCat("ip `", c.address, "` names interface ", index, " of ", interfaces));
    }
    c.interface = index;
  }
  out.ips.push_back(std::move(c));
  return absl::OkStatus();
}

// 0.3.0 and later.
absl::Status ParseCurrent(const nlohmann::json& doc, Result& out) {
  if (auto it = doc.find("interfaces"); it != doc.end() && it->is_array()) {
    for (const nlohmann::json& i : *it) {
      if (!i.is_object()) return absl::InvalidArgumentError("`interfaces` holds a non-object");
      out.interfaces.push_back(
          Interface{StringOr(i, "name"), StringOr(i, "mac"), StringOr(i, "sandbox")});
    }
  }
  if (auto it = doc.find("ips"); it != doc.end() && it->is_array()) {
    for (const nlohmann::json& ip : *it) {
      BERTH_RETURN_IF_ERROR(ParseIp(ip, out.interfaces.size(), out));
    }
  }
  if (auto it = doc.find("routes"); it != doc.end()) ParseRoutes(*it, out.routes);
  return absl::OkStatus();
}

// 0.1.0 and 0.2.0: one optional block per family, no interfaces.
absl::Status ParseLegacy(const nlohmann::json& doc, Result& out) {
  for (const char* key : {"ip4", "ip6"}) {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_object()) continue;
    IpConfig c;
    c.address = StringOr(*it, "ip");
    c.gateway = StringOr(*it, "gateway");
    BERTH_ASSIGN_OR_RETURN(c.family, CidrFamily(c.address));
    out.ips.push_back(std::move(c));
    if (auto routes = it->find("routes"); routes != it->end()) ParseRoutes(*routes, out.routes);
  }
  return absl::OkStatus();
}

}  // namespace

std::string IpConfig::Ip() const { return address.substr(0, address.find('/')); }

absl::StatusOr<Result> ParseResult(absl::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("result is not valid JSON");
  return ResultFromJson(doc);
}

absl::StatusOr<Result> ResultFromJson(const nlohmann::json& doc) {
  if (!doc.is_object()) return absl::InvalidArgumentError("result is not a JSON object");
  Result out;
  out.cni_version = StringOr(doc, "cniVersion");
  if (out.cni_version.empty()) return absl::InvalidArgumentError("result has no `cniVersion`");
  BERTH_RETURN_IF_ERROR(Annotate(ParseCniVersion(out.cni_version).status(), "result"));
  BERTH_RETURN_IF_ERROR(Annotate(
      CniVersionAtLeast(out.cni_version, "0.3.0") ? ParseCurrent(doc, out) : ParseLegacy(doc, out),
      absl::StrCat("result ", out.cni_version)));
  out.dns = ParseDns(doc);
  out.raw = doc;
  return out;
}

PodIps SelectPodIps(const Result& result, absl::string_view ifname) {
  std::vector<const IpConfig*> chosen;
  for (const IpConfig& ip : result.ips) {
    if (!ip.interface.has_value()) continue;
    const Interface& i = result.interfaces[*ip.interface];
    if (i.name == ifname && !i.sandbox.empty()) chosen.push_back(&ip);
  }
  bool any_named = false;
  for (const IpConfig& ip : result.ips) any_named |= ip.interface.has_value();
  if (!any_named) {
    for (const IpConfig& ip : result.ips) chosen.push_back(&ip);
  }
  PodIps out;
  const IpConfig* primary = nullptr;
  for (const IpConfig* ip : chosen) {
    if (ip->family == 4) {
      primary = ip;
      break;
    }
  }
  if (primary == nullptr && !chosen.empty()) primary = chosen.front();
  for (const IpConfig* ip : chosen) {
    if (ip == primary) {
      out.primary = ip->Ip();
    } else {
      out.additional.push_back(ip->Ip());
    }
  }
  return out;
}

}  // namespace berth::network
