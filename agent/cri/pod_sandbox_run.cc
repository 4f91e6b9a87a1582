// RunPodSandbox (DESIGN.md, The lifecycle): the pod's namespaces made and
// pinned, its cgroup, hostname, /etc/hosts and /etc/resolv.conf, and - when
// the pod shares one PID namespace - a pause process as its PID 1.
//
// CRI: "RunPodSandbox creates and starts a pod-level sandbox. Runtimes must
// ensure the sandbox is in the ready state on success."
// https://github.com/kubernetes/cri-api/blob/master/pkg/apis/runtime/v1/api.proto
//
// The record is saved as CREATING before anything is made, so a berthd killed
// half-way undoes it at start-up (recover.cc); every step arms the rollback
// (STYLE.md 9), which is DestroySandbox: it derives everything from the record.
#include <limits.h>
#include <sys/mount.h>
#include <unistd.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "os/cgroup/cgroup.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "shim/client.h"
#include "shim/pin.h"

namespace berth {
namespace {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::Status Validate(const v1::RunPodSandboxRequest& request) {
  if (!request.has_config()) return absl::InvalidArgumentError("config: missing");
  const v1::PodSandboxConfig& c = request.config();
  const v1::PodSandboxMetadata& m = c.metadata();
  if (m.name().empty()) return absl::InvalidArgumentError("config.metadata.name: empty");
  if (m.namespace_().empty()) return absl::InvalidArgumentError("config.metadata.namespace: empty");
  if (m.uid().empty()) return absl::InvalidArgumentError("config.metadata.uid: empty");
  if (!request.runtime_handler().empty() && request.runtime_handler() != "berth") {
    return absl::InvalidArgumentError(
        absl::StrCat("runtime_handler `", request.runtime_handler(),
                     "`: berth has one handler, \"\" (or \"berth\")"));
  }
  const v1::NamespaceOption& ns = c.linux().security_context().namespace_options();
  if (ns.network() != v1::POD && ns.network() != v1::NODE) {
    return absl::InvalidArgumentError(
        "config.linux.security_context.namespace_options.network: must be POD or NODE");
  }
  if (ns.ipc() != v1::POD && ns.ipc() != v1::NODE) {
    return absl::InvalidArgumentError(
        "config.linux.security_context.namespace_options.ipc: must be POD or NODE");
  }
  if (ns.pid() == v1::TARGET) {
    return absl::InvalidArgumentError(
        "config.linux.security_context.namespace_options.pid: TARGET is for containers");
  }
  if (ns.has_userns_options() && ns.userns_options().mode() != v1::NODE) {
    return absl::UnimplementedError(
        "config.linux.security_context.namespace_options.userns_options: user namespaces for "
        "pods are not supported by berth yet");
  }
  for (const auto& [key, value] : c.linux().sysctls()) {
    absl::Status s = shim::CheckSandboxSysctl(key, ns.network() == v1::POD, ns.ipc() == v1::POD);
    if (!s.ok()) return Annotate(s, "config.linux.sysctls");
  }
  if (c.hostname().size() > HOST_NAME_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("config.hostname `", c.hostname(),
                                                   "`: longer than ", HOST_NAME_MAX, " bytes"));
  }
  return CheckPodBandwidth(c);
}

std::string HostsFile() {
  // Docker's and containerd's defaults for a pod with its own network.
  return "127.0.0.1\tlocalhost\n"
         "::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\n"
         "ff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n";
}

// resolv.conf(5) from the pod's DNSConfig: exactly the values CRI gives.
std::string ResolvConf(const v1::DNSConfig& dns) {
  std::string out;
  for (const std::string& s : dns.servers()) absl::StrAppend(&out, "nameserver ", s, "\n");
  if (!dns.searches().empty())
    absl::StrAppend(&out, "search ", absl::StrJoin(dns.searches(), " "), "\n");
  if (!dns.options().empty())
    absl::StrAppend(&out, "options ", absl::StrJoin(dns.options(), " "), "\n");
  return out;
}

// The pod's /etc files under `dir`: hostname, hosts, resolv.conf.
absl::Status WritePodFiles(const std::string& dir, const v1::PodSandboxConfig& config,
                           bool host_network, const std::string& hostname) {
  BERTH_RETURN_IF_ERROR(MakeDirs(dir, 0755));
  BERTH_RETURN_IF_ERROR(WriteFileAtomically(dir + "/hostname", hostname + "\n", 0644));
  std::string hosts = HostsFile();
  if (host_network) {
    absl::StatusOr<std::string> host = ReadFile("/etc/hosts");
    if (host.ok()) hosts = *host;
  }
  BERTH_RETURN_IF_ERROR(WriteFileAtomically(dir + "/hosts", hosts, 0644));
  std::string resolv;
  if (config.has_dns_config()) {
    resolv = ResolvConf(config.dns_config());
  } else {
    absl::StatusOr<std::string> host = ReadFile("/etc/resolv.conf");
    if (host.ok()) resolv = *host;
  }
  return WriteFileAtomically(dir + "/resolv.conf", resolv, 0644);
}

}  // namespace

absl::StatusOr<v1::RunPodSandboxResponse> CriService::RunPodSandbox(
    const v1::RunPodSandboxRequest& request) {
  BERTH_RETURN_IF_ERROR(Validate(request));
  const v1::PodSandboxConfig& config = request.config();
  const v1::NamespaceOption& ns = config.linux().security_context().namespace_options();
  const bool host_network = ns.network() == v1::NODE;

  st::Sandbox record;
  record.set_id(lifecycle::NewId());
  const std::string& id = record.id();
  BERTH_ASSIGN_OR_RETURN(std::string cgroup_path,
                         PodCgroupPath(id, config.linux().cgroup_parent()));
  const std::string name = lifecycle::SandboxName(config.metadata());
  BERTH_RETURN_IF_ERROR(registry_.Reserve(name, id));
  record.set_name(name);
  *record.mutable_config() = config;
  record.set_runtime_handler(request.runtime_handler());
  record.set_phase(st::CREATING);
  record.set_created_at_ns(NowNs());
  const std::string dir = SandboxStateDir(id);
  record.set_files_dir(dir);
  record.set_cgroup_path(cgroup_path);
  record.set_cgroup_owned(config.linux().cgroup_parent().empty());
  if (!host_network || ns.ipc() == v1::POD) record.set_ns_dir(dir + "/ns");
  if (!host_network) {
    record.set_net_ns(dir + "/ns/net");
    record.set_uts_ns(dir + "/ns/uts");
  }
  if (ns.ipc() == v1::POD) record.set_ipc_ns(dir + "/ns/ipc");
  if (ns.pid() == v1::POD) record.set_pause_bundle(dir + "/pause");

  auto sandbox = std::make_shared<lifecycle::SandboxObject>(record);
  absl::Status saved = store_->SaveSandbox(record, sandbox->version);
  if (!saved.ok()) {
    registry_.Release(name);
    return saved;
  }
  registry_.Add(sandbox);
  absl::Cleanup rollback = [&] {
    absl::Status s = DestroySandbox(*sandbox);
    if (!s.ok()) BERTH_LOG(ERROR) << "RunPodSandbox rollback of " << id << ": " << s;
  };

  // The pod cgroup. A cgroup_parent is the client's (kubelet makes and
  // removes it, and other pods may share it): never made into a unit or
  // removed here; the shims make its missing directories with cgroupfs, and
  // systemd a missing slice when a scope is started in it.
  if (record.cgroup_owned()) {
    BERTH_RETURN_IF_ERROR(Annotate(MakePodCgroup(record.cgroup_path()), "pod cgroup"));
  }

  // The hostname is the pod's own only with its own network (and so UTS).
  // An empty one is the node's, as containerd does (sandbox_run.go): never
  // the pod's name, which may be longer than a hostname can be (conformance
  // suites name pods `create-PodSandbox-for-container-<uuid>`, 68 bytes).
  std::string hostname = host_network ? std::string() : config.hostname();
  if (hostname.empty()) {
    char buf[HOST_NAME_MAX + 1] = {};
    if (gethostname(buf, sizeof(buf)) != 0) return ErrnoStatus(errno, "gethostname");
    hostname = buf;
  }
  if (!record.ns_dir().empty()) {
    shim::PinOptions pin;
    pin.dir = record.ns_dir();
    pin.net = !host_network;
    pin.uts = !host_network;
    pin.ipc = ns.ipc() == v1::POD;
    if (pin.uts) pin.hostname = hostname;
    for (const auto& [key, value] : config.linux().sysctls()) pin.sysctls.emplace_back(key, value);
    BERTH_RETURN_IF_ERROR(Annotate(shim::PinNamespaces(ShimPath(options_), pin), "pod namespaces"));
  }
  BERTH_RETURN_IF_ERROR(Annotate(WritePodFiles(dir, config, host_network, hostname), "pod files"));
  if (const std::string shm = PodShmDir(record); !shm.empty()) {
    // As containerd: 64 MiB, world-writable with the sticky bit, and nothing
    // executable, setuid or a device in it.
    BERTH_RETURN_IF_ERROR(MakeDirs(shm, 0755));
    if (mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=1777,size=65536k") != 0) {
      return ErrnoStatus(errno, "mount the pod's /dev/shm on", shm);
    }
  }
  BERTH_RETURN_IF_ERROR(SetupPodNetwork(*sandbox));

  if (!record.pause_bundle().empty()) {
    BERTH_RETURN_IF_ERROR(MakeDirs(record.pause_bundle(), 0700));
    shim::PauseOptions pause;
    pause.net_ns = record.net_ns();
    pause.ipc_ns = record.ipc_ns();
    pause.uts_ns = record.uts_ns();
    pause.cgroup_path = ChildCgroupPath(record.cgroup_path(), id);
    shim::v1::Resources none;
    BERTH_ASSIGN_OR_RETURN(std::unique_ptr<ScopeHold> scope, MakeScope(pause.cgroup_path, none));
    BERTH_ASSIGN_OR_RETURN(shim::LaunchedShim launched,
                           shim::LaunchPause(ShimPath(options_), record.pause_bundle(), pause));
    AddChild(launched.shim_pid);
    BERTH_RETURN_IF_ERROR(Update(*sandbox, [&](st::Sandbox& r) {
      r.set_pause_shim_pid(launched.shim_pid);
      r.set_pause_pid(launched.init_pid);
    }));
  }
  if (!config.log_directory().empty()) {
    BERTH_RETURN_IF_ERROR(Annotate(MakeDirs(config.log_directory(), 0755), "config.log_directory"));
  }
  BERTH_RETURN_IF_ERROR(Update(*sandbox, [](st::Sandbox& r) { r.set_phase(st::RUNNING); }));
  std::move(rollback).Cancel();
  PublishContainerEvent(id, id, v1::CONTAINER_CREATED_EVENT);
  PublishContainerEvent(id, id, v1::CONTAINER_STARTED_EVENT);
  v1::RunPodSandboxResponse response;
  response.set_pod_sandbox_id(id);
  return response;
}

}  // namespace berth
