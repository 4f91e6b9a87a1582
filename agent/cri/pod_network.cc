// A pod's network through CNI (agent/network): ADD when the sandbox is made,
// DEL when it is stopped - retried by RemovePodSandbox and by recovery after a
// crash until it succeeds. Host-network pods (NODE) have none. Without any CNI
// config a pod gets loopback only, and Status says NetworkReady=false with the
// reason, so kubelet does not place pods that need a network here.
//
// `cni_attached` is saved before ADD runs, so a berthd killed during ADD runs
// DEL for it at start (recover.cc tears the CREATING sandbox down); it is
// cleared only once DEL succeeded.
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/cri/cri_service.h"
#include "os/log.h"
#include "os/status.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

namespace {

constexpr char kIngressBandwidth[] = "kubernetes.io/ingress-bandwidth";
constexpr char kEgressBandwidth[] = "kubernetes.io/egress-bandwidth";

}  // namespace

// A Kubernetes quantity ("10M", "1Gi", "500k", "100") in bits per second.
absl::StatusOr<uint64_t> ParseBandwidth(absl::string_view text) {
  static const std::pair<const char*, double> kSuffixes[] = {{"Ki", 1024.0},
                                                             {"Mi", 1024.0 * 1024},
                                                             {"Gi", 1024.0 * 1024 * 1024},
                                                             {"Ti", 1024.0 * 1024 * 1024 * 1024},
                                                             {"k", 1e3},
                                                             {"M", 1e6},
                                                             {"G", 1e9},
                                                             {"T", 1e12}};
  double scale = 1;
  for (const auto& [suffix, factor] : kSuffixes) {
    if (absl::ConsumeSuffix(&text, suffix)) {
      scale = factor;
      break;
    }
  }
  double value;
  if (text.empty() || !absl::SimpleAtod(text, &value) || value <= 0 || value * scale >= 1.8e19) {
    return absl::InvalidArgumentError("not a positive quantity such as 10M or 1Gi");
  }
  return static_cast<uint64_t>(value * scale);
}

namespace {

// The bandwidth plugin's runtime config from kubelet's pod annotations, as
// containerd reads them: the rate in bits/s, the burst unbounded.
absl::StatusOr<std::optional<network::Bandwidth>> BandwidthOf(const v1::PodSandboxConfig& c) {
  std::optional<network::Bandwidth> bw;
  for (const char* key : {kIngressBandwidth, kEgressBandwidth}) {
    auto it = c.annotations().find(key);
    if (it == c.annotations().end()) continue;
    absl::StatusOr<uint64_t> rate = ParseBandwidth(it->second);
    if (!rate.ok()) return Annotate(rate.status(), absl::StrCat("config.annotations[", key, "]"));
    if (!bw) bw.emplace();
    if (key == kIngressBandwidth) {
      bw->ingress_rate = *rate;
      bw->ingress_burst = UINT32_MAX;
    } else {
      bw->egress_rate = *rate;
      bw->egress_burst = UINT32_MAX;
    }
  }
  return bw;
}

network::Attachment AttachmentOf(const st::Sandbox& r, const std::string& pod_cidr) {
  network::Attachment a;
  a.container_id = r.id();
  a.netns = r.net_ns();
  const v1::PodSandboxMetadata& m = r.config().metadata();
  a.args = network::KubernetesArgs(m.namespace_(), m.name(), r.id(), m.uid());
  for (const v1::PortMapping& p : r.config().port_mappings()) {
    if (p.host_port() <= 0) continue;  // no host port: nothing to publish (as containerd)
    a.port_mappings.push_back({.host_port = p.host_port(),
                               .container_port = p.container_port(),
                               .protocol = absl::AsciiStrToLower(v1::Protocol_Name(p.protocol())),
                               .host_ip = p.host_ip()});
  }
  if (!pod_cidr.empty()) a.ip_ranges = {pod_cidr};
  // Validated by RunPodSandbox (CheckPodBandwidth) before the record exists.
  a.bandwidth = BandwidthOf(r.config()).value_or(std::nullopt);
  return a;
}

}  // namespace

absl::Status CheckPodBandwidth(const v1::PodSandboxConfig& config) {
  return BandwidthOf(config).status();
}

absl::Status CriService::SetupPodNetwork(lifecycle::SandboxObject& sandbox) {
  st::Sandbox r = Snapshot(sandbox);
  if (r.net_ns().empty()) return absl::OkStatus();  // host network
  if (absl::Status ready = cni_->Ready(); !ready.ok()) {
    BERTH_LOG(WARNING) << "sandbox " << r.id() << " gets loopback only: " << ready.message();
    return absl::OkStatus();
  }
  std::string pod_cidr;
  {
    absl::MutexLock l(&config_mu_);
    pod_cidr = pod_cidr_;
  }
  BERTH_RETURN_IF_ERROR(Update(sandbox, [](st::Sandbox& s) { s.set_cni_attached(true); }));
  BERTH_ASSIGN_OR_RETURN(network::Result result, cni_->Add(AttachmentOf(r, pod_cidr)));
  network::PodIps ips = network::SelectPodIps(result, "eth0");
  return Update(sandbox, [&](st::Sandbox& s) {
    s.clear_ips();
    if (!ips.primary.empty()) s.add_ips(ips.primary);
    for (const std::string& ip : ips.additional) s.add_ips(ip);
  });
}

absl::Status CriService::CheckPodNetwork(lifecycle::SandboxObject& sandbox) {
  // Shared with CreateContainer; Stop and Remove (DEL) take it exclusively.
  absl::ReaderMutexLock op(&sandbox.op_mu);
  st::Sandbox r = Snapshot(sandbox);
  if (!r.cni_attached()) return absl::FailedPreconditionError("the pod has no CNI attachment");
  return cni_->Check(AttachmentOf(r, ""));
}

absl::Status CriService::TeardownPodNetwork(lifecycle::SandboxObject& sandbox) {
  st::Sandbox r = Snapshot(sandbox);
  if (!r.cni_attached()) return absl::OkStatus();
  // The pod cidr is not needed for DEL: the cache holds what ADD was given.
  BERTH_RETURN_IF_ERROR(Annotate(cni_->Del(AttachmentOf(r, "")), "pod network"));
  return Update(sandbox, [](st::Sandbox& s) {
    s.set_cni_attached(false);
    s.clear_ips();
  });
}

}  // namespace berth
