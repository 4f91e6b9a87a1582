// Status: api.proto `rpc Status(StatusRequest) returns (StatusResponse)`.
//
// The two conditions kubelet requires must tell the truth (api.proto
// RuntimeCondition): RuntimeReady only when berthd can run containers, and
// NetworkReady only when pods can get a network. Each readiness check names what
// is missing in the condition's reason and message.
#include <unistd.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/cri/cri_service.h"
#include "os/cgroup/cgroup.h"
#include "os/files.h"

namespace berth {
namespace {

constexpr char kRuntimeReady[] = "RuntimeReady";
constexpr char kNetworkReady[] = "NetworkReady";

// Each returns an empty string when fine, else what is wrong.
std::vector<std::string> RuntimeProblems(const AgentOptions& options) {
  std::vector<std::string> problems;
  for (const std::string& dir : {options.root_dir, options.state_dir}) {
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      problems.push_back(absl::StrCat("directory `", dir, "` is not writable"));
    }
  }
  std::string shim = ShimPath(options);
  if (::access(shim.c_str(), X_OK) != 0) {
    problems.push_back(absl::StrCat("shim `", shim, "` is not an executable file"));
  }
  absl::StatusOr<std::string> mounts = ReadFile("/proc/self/mountinfo");
  if (!mounts.ok() || !absl::StrContains(*mounts, " - cgroup")) {
    problems.push_back("no cgroup file system is mounted");
  }
  return problems;
}

void SetCondition(runtime::v1::RuntimeCondition* condition, const std::string& type,
                  const std::vector<std::string>& problems, const std::string& reason) {
  condition->set_type(type);
  condition->set_status(problems.empty());
  if (!problems.empty()) {
    condition->set_reason(reason);
    condition->set_message(absl::StrJoin(problems, "; "));
  }
}

}  // namespace

std::string ShimPath(const AgentOptions& options) {
  if (!options.shim_path.empty()) return options.shim_path;
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "berth-shim";
  std::string exe(self, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/') + 1) + "berth-shim";
}

absl::StatusOr<runtime::v1::StatusResponse> CriService::Status(
    const runtime::v1::StatusRequest& request) {
  runtime::v1::StatusResponse response;
  std::vector<std::string> runtime_problems = RuntimeProblems(options_);
  // A node whose cgroups cannot hold a container (a controller missing or not
  // delegated, a read-only cgroupfs) is not ready, whatever else works.
  if (absl::StatusOr<const CgroupLayout*> layout = Cgroups(); !layout.ok()) {
    runtime_problems.push_back(std::string(layout.status().message()));
  } else {
    for (std::string& p : CgroupProblems(**layout, options_.cgroup_root, !systemd_cgroups_)) {
      runtime_problems.push_back(std::move(p));
    }
  }
  SetCondition(response.mutable_status()->add_conditions(), kRuntimeReady, runtime_problems,
               "RuntimeNotReady");
  // Without a CNI config (or a plugin it names) a pod gets loopback only, so
  // kubelet must not place pods that need a network here.
  std::vector<std::string> network_problems;
  if (absl::Status ready = cni_->Ready(); !ready.ok()) {
    network_problems.push_back(absl::StrCat("CNI: ", ready.message()));
  }
  SetCondition(response.mutable_status()->add_conditions(), kNetworkReady, network_problems,
               "NetworkPluginNotReady");
  // State berthd could not read at start-up: the node works, but what those
  // rows held (a pod, a container, an image) is not managed until someone
  // looks. kubelet reads only the two conditions above; crictl info shows this.
  std::vector<std::string> unreadable;
  {
    absl::MutexLock lock(&unreadable_mu_);
    unreadable = unreadable_;
  }
  for (const std::string& u : images_->Unreadable()) unreadable.push_back(u);
  SetCondition(response.mutable_status()->add_conditions(), "BerthStateReadable", unreadable,
               "UnreadableRecords");
  if (request.verbose()) {
    const AgentOptions& o = options_;
    nlohmann::json config = {
        {"socket", o.socket_path},
        {"root", o.root_dir},
        {"stateDir", o.state_dir},
        {"shim", ShimPath(o)},
        {"listen", o.listen},
        {"insecureListen", o.insecure_listen},
        {"metricsAddress", o.metrics_address},
    };
    (*response.mutable_info())["config"] = config.dump();
  }
  return response;
}

}  // namespace berth
