#include "agent/cri/records.h"

#include "absl/time/clock.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

int64_t NowNs() { return absl::GetCurrentTimeNanos(); }

bool HostIpc(const st::Sandbox& r) {
  return r.config().linux().security_context().namespace_options().ipc() == v1::NODE;
}

std::string PodShmDir(const st::Sandbox& r) {
  if (HostIpc(r) || r.files_dir().empty()) return "";
  return r.files_dir() + "/shm";
}

v1::PodSandboxState CriState(const st::Sandbox& r) {
  return r.phase() == st::RUNNING ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY;
}

v1::ContainerState CriState(const st::Container& r) {
  switch (r.phase()) {
    case st::CREATED:
      return v1::CONTAINER_CREATED;
    case st::RUNNING:
      return v1::CONTAINER_RUNNING;
    case st::STOPPED:
    case st::REMOVING:
      return v1::CONTAINER_EXITED;
    default:
      return v1::CONTAINER_UNKNOWN;
  }
}

v1::PodSandbox ToCriSandbox(const st::Sandbox& r) {
  v1::PodSandbox s;
  s.set_id(r.id());
  *s.mutable_metadata() = r.config().metadata();
  s.set_state(CriState(r));
  s.set_created_at(r.created_at_ns());
  *s.mutable_labels() = r.config().labels();
  *s.mutable_annotations() = r.config().annotations();
  s.set_runtime_handler(r.runtime_handler());
  return s;
}

v1::PodSandboxStatus ToCriSandboxStatus(const st::Sandbox& r) {
  v1::PodSandboxStatus s;
  s.set_id(r.id());
  *s.mutable_metadata() = r.config().metadata();
  s.set_state(CriState(r));
  s.set_created_at(r.created_at_ns());
  if (!r.ips().empty()) {
    s.mutable_network()->set_ip(r.ips(0));
    for (int i = 1; i < r.ips_size(); ++i)
      s.mutable_network()->add_additional_ips()->set_ip(r.ips(i));
  }
  *s.mutable_linux()->mutable_namespaces()->mutable_options() =
      r.config().linux().security_context().namespace_options();
  *s.mutable_labels() = r.config().labels();
  *s.mutable_annotations() = r.config().annotations();
  s.set_runtime_handler(r.runtime_handler());
  return s;
}

v1::Container ToCriContainer(const st::Container& r) {
  v1::Container c;
  c.set_id(r.id());
  c.set_pod_sandbox_id(r.sandbox_id());
  *c.mutable_metadata() = r.config().metadata();
  *c.mutable_image() = r.config().image();
  c.mutable_image()->set_image(r.image_name());
  c.set_image_ref(r.image_ref());
  c.set_image_id(r.image_id());
  c.set_state(CriState(r));
  c.set_created_at(r.created_at_ns());
  *c.mutable_labels() = r.config().labels();
  *c.mutable_annotations() = r.config().annotations();
  return c;
}

v1::ContainerStatus ToCriContainerStatus(const st::Container& r) {
  v1::ContainerStatus c;
  c.set_id(r.id());
  *c.mutable_metadata() = r.config().metadata();
  c.set_state(CriState(r));
  c.set_created_at(r.created_at_ns());
  c.set_started_at(r.started_at_ns());
  c.set_finished_at(r.finished_at_ns());
  c.set_exit_code(r.exit_code());
  *c.mutable_image() = r.config().image();
  c.mutable_image()->set_image(r.image_name());
  c.set_image_ref(r.image_ref());
  c.set_image_id(r.image_id());
  c.set_reason(r.reason());
  c.set_message(r.message());
  *c.mutable_labels() = r.config().labels();
  *c.mutable_annotations() = r.config().annotations();
  *c.mutable_mounts() = r.mounts();
  c.set_log_path(r.log_path());
  *c.mutable_resources()->mutable_linux() = r.resources();
  v1::LinuxContainerUser* user = c.mutable_user()->mutable_linux();
  user->set_uid(r.uid());
  user->set_gid(r.gid());
  for (uint32_t g : r.supplemental_groups()) user->add_supplemental_groups(g);
  c.set_stop_signal(r.config().stop_signal());
  return c;
}

bool MatchesLabels(const google::protobuf::Map<std::string, std::string>& labels,
                   const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace berth
