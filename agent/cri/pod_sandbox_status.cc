// PodSandboxStatus and ListPodSandbox: answered from memory (records copied
// under their locks), never from the kernel or the disk - kubelet relists every
// second (research/cri-v1.md §2).
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "nlohmann/json.hpp"
#include "os/status.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::StatusOr<v1::PodSandboxStatusResponse> CriService::PodSandboxStatus(
    const v1::PodSandboxStatusRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> sandbox,
                         registry_.FindSandbox(request.pod_sandbox_id(), "pod_sandbox_id"));
  st::Sandbox r = Snapshot(*sandbox);
  if (r.phase() == st::CREATING) {
    return absl::NotFoundError(
        absl::StrCat("pod_sandbox_id: pod sandbox `", r.id(), "` is still being created"));
  }
  v1::PodSandboxStatusResponse response;
  *response.mutable_status() = ToCriSandboxStatus(r);
  for (const auto& c : registry_.ContainersOf(r.id())) {
    st::Container cr = Snapshot(*c);
    if (cr.phase() != st::CREATING) *response.add_containers_statuses() = ToCriContainerStatus(cr);
  }
  response.set_timestamp(NowNs());
  if (request.verbose()) {
    nlohmann::json info = {
        {"cgroupPath", r.cgroup_path()},
        {"cgroupOwned", r.cgroup_owned()},
        {"namespaces", {{"network", r.net_ns()}, {"ipc", r.ipc_ns()}, {"uts", r.uts_ns()}}},
        {"pausePid", r.pause_pid()},
        {"filesDir", r.files_dir()},
        {"runtimeHandler", r.runtime_handler()},
        {"cniAttached", r.cni_attached()},
    };
    // CNI CHECK on request: verbose status (crictl inspectp) runs the plugins'
    // CHECK on the pod's attachment; kubelet never asks for verbose.
    if (r.cni_attached()) {
      absl::Status check = CheckPodNetwork(*sandbox);
      info["networkCheck"] = check.ok() ? "ok" : std::string(check.message());
    }
    (*response.mutable_info())["info"] = info.dump();
  }
  return response;
}

absl::StatusOr<v1::ListPodSandboxResponse> CriService::ListPodSandbox(
    const v1::ListPodSandboxRequest& request) {
  const v1::PodSandboxFilter& f = request.filter();
  std::shared_ptr<lifecycle::SandboxObject> only;
  if (!f.id().empty()) {
    BERTH_ASSIGN_OR_RETURN(only, registry_.LookupSandbox(f.id()));
    if (only == nullptr) return v1::ListPodSandboxResponse();
  }
  v1::ListPodSandboxResponse response;
  auto add = [&](const lifecycle::SandboxObject& s) {
    st::Sandbox r = Snapshot(s);
    if (r.phase() == st::CREATING) return;
    if (f.has_state() && CriState(r) != f.state().state()) return;
    if (!MatchesLabels(r.config().labels(), f.label_selector())) return;
    *response.add_items() = ToCriSandbox(r);
  };
  if (only != nullptr) {
    add(*only);
  } else {
    for (const auto& s : registry_.Sandboxes()) add(*s);
  }
  return response;
}

}  // namespace berth
