#include "tests/support/cni_env.h"

#include <net/if.h>
#include <stdio.h>
#include <unistd.h>

#include <random>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "os/files.h"
#include "tests/support/berthd_process.h"

namespace berth::testing {

std::string Output(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "re");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

void CniTestEnv::SetUp(const TempDir& dir) {
  absl::Status s = Prepare(dir.path());
  if (absl::IsFailedPrecondition(s)) GTEST_SKIP() << s.message();
  ASSERT_TRUE(s.ok()) << s.message();
}

absl::Status CniTestEnv::Prepare(const std::string& dir, const std::string& bridge_prefix,
                                 const std::string& network_prefix) {
  if (geteuid() != 0) return absl::FailedPreconditionError("needs root");
  for (const char* p : {"bridge", "host-local", "portmap", "loopback"}) {
    if (::access((std::string("/usr/lib/cni/") + p).c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("no /usr/lib/cni/", p, " (containernetworking-plugins)"));
    }
  }
  std::random_device rd;
  const std::string suffix = absl::StrFormat("%08x", rd());
  const std::string addrs = Output("ip -4 addr; ip -4 route");
  std::string subnet;
  for (int i = 0; i < 20 && subnet.empty(); ++i) {
    int x = 100 + static_cast<int>(rd() % 150);
    if (!absl::StrContains(addrs, absl::StrCat("10.244.", x, "."))) {
      subnet = absl::StrCat("10.244.", x, ".");
    }
  }
  if (subnet.empty()) return absl::ResourceExhaustedError("no free 10.244.x.0/24");
  subnet_ = subnet;
  network_ = network_prefix + suffix;
  ipam_ = dir + "/ipam";
  absl::StatusOr<std::string> forward = ReadFile("/proc/sys/net/ipv4/ip_forward");
  ip_forward_ = forward.ok() ? *forward : "";
  portmap_chains_existed_ = absl::StrContains(Output("iptables-save -t nat"), ":CNI-HOSTPORT-DNAT");
  bridge_ = bridge_prefix + suffix;  // last: skipped() until here
  return absl::OkStatus();
}

std::string CniTestEnv::Conflist(const std::string& last_plugin) const {
  return absl::StrCat(R"({"cniVersion": "1.0.0", "name": ")", network_, R"(", "plugins": [
    {"type": "bridge", "bridge": ")",
                      bridge_, R"(", "isGateway": true, "ipMasq": true,
     "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": ")",
                      ipam_, R"(",
              "ranges": [[{"subnet": ")",
                      subnet_, R"(0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
    {"type": "loopback"})",
                      last_plugin.empty() ? "" : ",\n    " + last_plugin, "\n]}\n");
}

std::vector<std::string> CniTestEnv::IpamFiles() const {
  std::vector<std::string> out;
  absl::StatusOr<std::vector<std::string>> names = ListDir(ipam_ + "/" + network_);
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    if (absl::StartsWith(n, subnet_)) out.push_back(n);  // lock, last_reserved_ip.0 stay
  }
  return out;
}

std::vector<std::string> CniTestEnv::BridgePorts() const {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(
           Output("ip -o link show master " + bridge_ + " 2>/dev/null"), '\n', absl::SkipEmpty())) {
    out.emplace_back(line);
  }
  return out;
}

std::vector<std::string> CniTestEnv::IptablesLines(const std::string& text) const {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(Output("iptables-save"), '\n')) {
    if (absl::StrContains(line, text)) out.emplace_back(line);
  }
  return out;
}

void CniTestEnv::Restore() {
  if (skipped()) return;
  if (if_nametoindex(bridge_.c_str()) != 0) Shell("ip link del " + bridge_);
  if (!ip_forward_.empty()) {
    FILE* f = fopen("/proc/sys/net/ipv4/ip_forward", "we");
    if (f != nullptr) {
      fputs(ip_forward_.c_str(), f);
      fclose(f);
    }
  }
  if (portmap_chains_existed_) return;
  // portmap's shared chains, only when this test created them and they are empty again.
  if (Output("iptables -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null") != "-N CNI-HOSTPORT-DNAT\n")
    return;
  Shell(
      "iptables -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT;"
      "iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT;"
      "iptables -t nat -D POSTROUTING -m comment --comment 'CNI portfwd requiring masquerade' "
      "-j CNI-HOSTPORT-MASQ;"
      "for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do "
      "iptables -t nat -F $c; iptables -t nat -X $c; done 2>/dev/null");
}

}  // namespace berth::testing
