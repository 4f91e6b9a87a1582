// CreateContainer (DESIGN.md, The lifecycle): the image resolved, an overlay
// rootfs mounted over its layers, the CRI config translated into the shim's
// spec (agent/runtime/container_spec.h), and the shim started: it makes the
// container's init, which holds before exec. State CREATED.
//
// CRI: "CreateContainer creates a new container in specified PodSandbox"
// (api.proto, CreateContainer). The record is saved as CREATING first; every
// step after that is undone by DestroyContainer on failure (STYLE.md 9) and, if
// berthd dies half-way, at its next start (recover.cc).
#include <sys/stat.h>
#include <unistd.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "agent/network/plugin_exec.h"
#include "agent/rootfs/overlay.h"
#include "agent/runtime/container_spec.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth {
namespace {

// RuntimeDefault's berth-default, loaded into the kernel by apparmor_parser
// (Debian's apparmor package) from stdin; a peer that loaded it first is fine.
absl::Status LoadDefaultAppArmorProfile() {
  const char* parser = access("/sbin/apparmor_parser", X_OK) == 0 ? "/sbin/apparmor_parser"
                       : access("/usr/sbin/apparmor_parser", X_OK) == 0
                           ? "/usr/sbin/apparmor_parser"
                           : nullptr;
  if (parser == nullptr) {
    return absl::FailedPreconditionError(
        "AppArmor is enabled but apparmor_parser (package apparmor) is not installed to load "
        "berth-default");
  }
  network::SpawnPluginExec exec;
  BERTH_ASSIGN_OR_RETURN(network::PluginOutput out,
                         exec.Run({.path = parser,
                                   .env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
                                   .stdin_data = lifecycle::DefaultAppArmorProfile(),
                                   .timeout = absl::Seconds(30)}));
  if (out.wait_status != 0 &&
      !lifecycle::LsmHost::Detect().apparmor_profiles.count(lifecycle::kDefaultAppArmorProfile)) {
    return absl::InternalError(
        absl::StrCat("apparmor_parser could not load berth-default: ", out.err));
  }
  return absl::OkStatus();
}

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

// A directory with a file system of its own mounted on it.
bool IsMountPoint(const std::string& dir) {
  struct stat here, up;
  return stat(dir.c_str(), &here) == 0 && stat((dir + "/..").c_str(), &up) == 0 &&
         here.st_dev != up.st_dev;
}

absl::Status Validate(const v1::CreateContainerRequest& request) {
  if (request.pod_sandbox_id().empty()) return absl::InvalidArgumentError("pod_sandbox_id: empty");
  if (!request.has_config()) return absl::InvalidArgumentError("config: missing");
  if (request.config().metadata().name().empty()) {
    return absl::InvalidArgumentError("config.metadata.name: empty");
  }
  if (request.config().image().image().empty()) {
    return absl::InvalidArgumentError("config.image.image: empty");
  }
  return absl::OkStatus();
}

// The name CRI shows for the image: the reference the config gave when it
// names this image, else the image's first tag, else its id.
std::string ImageName(const std::string& requested, const images::ImageRecord& image) {
  for (const std::string& t : image.repo_tags) {
    if (t == requested) return t;
  }
  if (!image.repo_tags.empty()) return image.repo_tags[0];
  return image.id;
}

}  // namespace

absl::StatusOr<v1::CreateContainerResponse> CriService::CreateContainer(
    const v1::CreateContainerRequest& request) {
  BERTH_RETURN_IF_ERROR(Validate(request));
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> sandbox,
                         registry_.FindSandbox(request.pod_sandbox_id(), "pod_sandbox_id"));
  // Shared: containers of one pod are created in parallel, but the pod cannot
  // be stopped or removed under them.
  absl::ReaderMutexLock sandbox_op(&sandbox->op_mu);
  st::Sandbox pod = Snapshot(*sandbox);
  if (pod.phase() != st::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod_sandbox_id: pod sandbox `", pod.id(), "` is not ready"));
  }
  v1::ContainerConfig config = request.config();
  // A container asking for the pod's PID namespace (POD, also what an unset
  // option means) in a pod that shares none gets its own: with containerd it
  // would join the pause container's, which nothing else shares - the same.
  v1::NamespaceOption* pid_ns =
      config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  if (pid_ns->pid() == v1::POD &&
      pod.config().linux().security_context().namespace_options().pid() != v1::POD) {
    pid_ns->set_pid(v1::CONTAINER);
  }
  absl::StatusOr<images::ImageRecord> image = images_->Resolve(config.image().image());
  if (!image.ok()) return Annotate(image.status(), "config.image.image");

  st::Container record;
  record.set_id(lifecycle::NewId());
  const std::string& id = record.id();
  const std::string name = lifecycle::ContainerName(config.metadata(), pod.config().metadata());
  BERTH_RETURN_IF_ERROR(registry_.Reserve(name, id));
  record.set_name(name);
  record.set_sandbox_id(pod.id());
  *record.mutable_config() = request.config();
  record.set_phase(st::CREATING);
  record.set_image_id(image->id);
  record.set_image_ref(image->repo_digests.empty() ? image->id : image->repo_digests[0]);
  record.set_image_name(ImageName(config.image().image(), *image));
  record.set_created_at_ns(NowNs());
  record.set_bundle(ContainerBundle(id));
  record.set_rootfs_dir(ContainerRootfsDir(id));
  record.set_cgroup_path(ChildCgroupPath(pod.cgroup_path(), id));
  *record.mutable_resources() = config.linux().resources();

  auto container = std::make_shared<lifecycle::ContainerObject>(record);
  absl::Status saved = store_->SaveContainer(record, container->version);
  if (!saved.ok()) {
    registry_.Release(name);
    return saved;
  }
  registry_.Add(container);
  absl::MutexLock op(&container->op_mu);
  absl::Cleanup rollback = [&] {
    absl::Status s = DestroyContainer(*container);
    if (!s.ok()) BERTH_LOG(ERROR) << "CreateContainer rollback of " << id << ": " << s;
  };

  BERTH_ASSIGN_OR_RETURN(std::string rootfs, rootfs::CreateContainerRootfs(
                                                 record.rootfs_dir(), images_->LayerDirs(*image)));

  lifecycle::ContainerSpecInputs in;
  in.id = id;
  in.config = &config;
  in.sandbox_config = &pod.config();
  in.image = &*image;
  in.rootfs = rootfs;
  in.load_default_apparmor = LoadDefaultAppArmorProfile;
  lifecycle::SandboxContext& sc = in.sandbox;
  sc.id = pod.id();
  sc.net_ns = pod.net_ns();
  sc.ipc_ns = pod.ipc_ns();
  sc.uts_ns = pod.uts_ns();
  if (pod.pause_pid() > 0) sc.pid_ns = absl::StrCat("/proc/", pod.pause_pid(), "/ns/pid");
  sc.host_pid = pod.config().linux().security_context().namespace_options().pid() == v1::NODE;
  sc.hostname_file = pod.files_dir() + "/hostname";
  sc.hosts_file = pod.files_dir() + "/hosts";
  sc.resolv_conf_file = pod.files_dir() + "/resolv.conf";
  if (HostIpc(pod)) {
    sc.shm_dir = "/dev/shm";
  } else if (const std::string shm = PodShmDir(pod); !shm.empty() && IsMountPoint(shm)) {
    sc.shm_dir = shm;  // a pod made by an older berthd has none: own tmpfs
  }
  sc.cgroup_parent = pod.cgroup_path();
  sc.log_directory = pod.config().log_directory();
  const v1::NamespaceOption& cns = config.linux().security_context().namespace_options();
  if (cns.pid() == v1::TARGET) {
    BERTH_ASSIGN_OR_RETURN(
        std::shared_ptr<lifecycle::ContainerObject> target,
        registry_.FindContainer(cns.target_id(),
                                "config.linux.security_context.namespace_options.target_id"));
    st::Container t = Snapshot(*target);
    if (t.phase() != st::RUNNING && t.phase() != st::CREATED) {
      return absl::FailedPreconditionError(
          absl::StrCat("config.linux.security_context.namespace_options.target_id: container `",
                       t.id(), "` is not running"));
    }
    in.target_pid_ns = absl::StrCat("/proc/", t.init_pid(), "/ns/pid");
  }
  BERTH_ASSIGN_OR_RETURN(lifecycle::BuiltSpec built, lifecycle::BuildContainerSpec(in));
  if (!built.spec.cgroup_path().empty()) {
    built.spec.set_cgroup_path(record.cgroup_path());  // a scope's name, with systemd
    BERTH_ASSIGN_OR_RETURN(const CgroupLayout* layout, Cgroups());
    for (const CgroupHierarchy& h : layout->hierarchies()) {
      shim::v1::CgroupHierarchy* out = built.spec.add_cgroup_hierarchies();
      out->set_mount_point(h.mount_point);
      out->set_v2(h.v2);
      for (const std::string& c : h.controllers) out->add_controllers(c);
    }
    lifecycle::AddCgroupView(*layout, config.linux().security_context().privileged(), built.spec);
  }

  BERTH_RETURN_IF_ERROR(MakeDirs(record.bundle(), 0700));
  // The log's directory (kubelet's <log_directory>/<container name>/) is the
  // runtime's to make, as containerd does (MkdirAll 0755).
  if (const std::string& log = built.spec.log_path(); !log.empty()) {
    BERTH_RETURN_IF_ERROR(
        Annotate(MakeDirs(log.substr(0, log.rfind('/')), 0755), "config.log_path"));
  }
  std::unique_ptr<ScopeHold> scope;
  if (!built.spec.cgroup_path().empty()) {
    BERTH_ASSIGN_OR_RETURN(scope, MakeScope(built.spec.cgroup_path(), built.spec.resources()));
  }
  BERTH_ASSIGN_OR_RETURN(shim::LaunchedShim launched,
                         shim::LaunchShim(ShimPath(options_), record.bundle(), built.spec));
  scope.reset();  // the container's init holds the scope now
  AddChild(launched.shim_pid);
  BERTH_RETURN_IF_ERROR(Update(*container, [&](st::Container& r) {
    r.set_phase(st::CREATED);
    r.set_shim_pid(launched.shim_pid);
    r.set_init_pid(launched.init_pid);
    r.set_log_path(built.spec.log_path());
    r.set_process(built.spec.process().SerializeAsString());
    r.set_stop_signal(built.stop_signal);
    r.set_uid(built.user.uid);
    r.set_gid(built.user.gid);
    for (uint32_t g : built.user.supplemental_groups) r.add_supplemental_groups(g);
    for (const v1::Mount& m : built.mounts) *r.add_mounts() = m;
  }));
  BERTH_RETURN_IF_ERROR(WatchExit(container));
  std::move(rollback).Cancel();
  PublishContainerEvent(id, pod.id(), v1::CONTAINER_CREATED_EVENT);
  v1::CreateContainerResponse response;
  response.set_container_id(id);
  return response;
}

}  // namespace berth
