// BuildContainerSpec: CRI CreateContainer's config, its sandbox and its image
// as the shim's ContainerSpec. The reference is containerd's CRI plugin
// (internal/cri/server/container_create_linux.go containerSpec and
// internal/cri/opts/*.go); each rule below names the part it follows. Users,
// security, mounts, resources and signals have their own files
// (container_spec_internal.h lists them).
//
// What CRI asks for and berth cannot do yet is refused with INVALID_ARGUMENT
// naming the field, never dropped: tty, stdin, CDI devices, pod user
// namespaces, idmapped mounts, image volumes, recursive read-only mounts, and
// the unified cgroup keys the shim has no field for. AppArmor and SELinux
// follow container_spec_lsm.cc: applied, or refused where they cannot be.
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/runtime/container_spec.h"
#include "agent/runtime/container_spec_internal.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth::lifecycle {
namespace {

namespace v1 = ::runtime::v1;
using internal::CleanPath;

constexpr char kNamespaceOptions[] = "config.linux.security_context.namespace_options";

absl::Status NotYet(absl::string_view field) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": not supported by berth yet"));
}

absl::Status RefuseUnsupported(const v1::ContainerConfig& config,
                               const v1::PodSandboxConfig& sandbox) {
  if (config.tty()) return NotYet("config.tty");
  // stdin_once only qualifies stdin.
  if (config.stdin()) return NotYet("config.stdin");
  if (config.cdi_devices_size() > 0) return NotYet("config.CDI_devices");
  const v1::NamespaceOption& ns = config.linux().security_context().namespace_options();
  // Kubelet sends mode NODE for pods without hostUsers: false; unset is the
  // host's too in containerd (WithPodNamespaces adds a user namespace for POD only).
  if (ns.has_userns_options() && ns.userns_options().mode() != v1::NODE) {
    return NotYet(absl::StrCat(kNamespaceOptions, ".userns_options.mode ",
                               v1::NamespaceMode_Name(ns.userns_options().mode())));
  }
  // containerd: "no privileged container allowed in sandbox".
  if (config.linux().security_context().privileged() &&
      !sandbox.linux().security_context().privileged()) {
    return absl::InvalidArgumentError(
        "config.linux.security_context.privileged: the sandbox is not privileged");
  }
  return absl::OkStatus();
}

// containerd WithProcessArgs, from moby's daemon/commit.go: command replaces
// the image's Entrypoint, args its Cmd; the image's Cmd is used only when
// neither command nor args is given. An Entrypoint of [""] means none.
absl::StatusOr<std::vector<std::string>> ProcessArgs(const v1::ContainerConfig& config,
                                                     const images::ContainerDefaults& image) {
  std::vector<std::string> command(config.command().begin(), config.command().end());
  std::vector<std::string> args(config.args().begin(), config.args().end());
  if (command.empty()) {
    if (args.empty()) args = image.cmd;
    if (!(image.entrypoint.size() == 1 && image.entrypoint[0].empty())) command = image.entrypoint;
  }
  if (command.empty() && args.empty()) {
    return absl::InvalidArgumentError(
        "no command specified: config.command, config.args and the image's Entrypoint and Cmd "
        "are all empty");
  }
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

// containerd's replaceOrAppendEnvValues (pkg/oci/spec_opts.go): an override
// replaces the entry with its key in place, or is appended; "KEY" without
// "=" removes KEY.
void ReplaceOrAppendEnv(std::vector<std::string>& env, const std::vector<std::string>& overrides) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < env.size(); ++i) index[env[i].substr(0, env[i].find('='))] = i;
  std::set<size_t> removed;
  for (const std::string& e : overrides) {
    const size_t eq = e.find('=');
    const std::string key = e.substr(0, eq);
    auto it = index.find(key);
    if (eq == std::string::npos) {
      if (it != index.end()) removed.insert(it->second);
      continue;
    }
    if (it != index.end()) {
      env[it->second] = e;
      removed.erase(it->second);
    } else {
      index[key] = env.size();
      env.push_back(e);
    }
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < env.size(); ++i) {
    if (removed.count(i) == 0) kept.push_back(std::move(env[i]));
  }
  env = std::move(kept);
}

// containerd containerSpec: PATH (oci.WithDefaultPathEnv), HOSTNAME (the
// sandbox's hostname, else the node's), then the image's env and the config's
// envs in one pass, so a config env overrides the image's and either may
// override PATH and HOSTNAME.
absl::Status ApplyEnv(const v1::ContainerConfig& config, const v1::PodSandboxConfig& sandbox,
                      const images::ContainerDefaults& image, shim::v1::Process& process) {
  std::string hostname = sandbox.hostname();
  if (hostname.empty()) {
    char buf[HOST_NAME_MAX + 1] = {};
    if (gethostname(buf, sizeof(buf)) != 0) return ErrnoStatus(errno, "gethostname");
    hostname = buf;
  }
  std::vector<std::string> env(process.env().begin(), process.env().end());
  ReplaceOrAppendEnv(env, {absl::StrCat("HOSTNAME=", hostname)});
  std::vector<std::string> overrides = image.env;
  for (int i = 0; i < config.envs_size(); ++i) {
    const v1::KeyValue& kv = config.envs(i);
    if (kv.key().empty() || absl::StrContains(kv.key(), '=')) {
      return absl::InvalidArgumentError(
          absl::StrCat("config.envs[", i, "].key `", kv.key(), "`: empty or contains '='"));
    }
    overrides.push_back(absl::StrCat(kv.key(), "=", kv.value()));
  }
  ReplaceOrAppendEnv(env, overrides);
  process.clear_env();
  for (std::string& e : env) process.add_env(std::move(e));
  return absl::OkStatus();
}

absl::Status ApplyCwd(const v1::ContainerConfig& config, const images::ContainerDefaults& image,
                      shim::v1::Process& process) {
  std::string cwd = "/", field;
  if (!config.working_dir().empty()) {
    cwd = config.working_dir();
    field = "config.working_dir";
  } else if (!image.working_dir.empty()) {
    cwd = image.working_dir;
    field = "image config WorkingDir";
  }
  // runc: "cwd must be an absolute path".
  if (cwd[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(field, " `", cwd, "`: not absolute"));
  }
  process.set_cwd(cwd);
  return absl::OkStatus();
}

void AddNamespace(shim::v1::ContainerSpec& spec, shim::v1::NamespaceType type,
                  const std::string& path) {
  shim::v1::Namespace* ns = spec.add_namespaces();
  ns->set_type(type);
  ns->set_path(path);
}

// containerd WithPodNamespaces: the container joins the sandbox's network, IPC
// and UTS namespaces (none listed: the sandbox uses the host's), and its PID
// namespace unless pid is CONTAINER. The container's network and ipc modes
// are the sandbox's business. Joining the sandbox's UTS namespace (or the
// host's) means the hostname is already set: spec.hostname stays empty.
absl::Status ApplyNamespaces(const v1::NamespaceOption& ns, const ContainerSpecInputs& in,
                             shim::v1::ContainerSpec& spec) {
  spec.clear_namespaces();
  spec.clear_hostname();
  AddNamespace(spec, shim::v1::MOUNT, "");
  if (!in.sandbox.net_ns.empty()) AddNamespace(spec, shim::v1::NETWORK, in.sandbox.net_ns);
  if (!in.sandbox.ipc_ns.empty()) AddNamespace(spec, shim::v1::IPC, in.sandbox.ipc_ns);
  if (!in.sandbox.uts_ns.empty()) AddNamespace(spec, shim::v1::UTS, in.sandbox.uts_ns);
  const std::string field = absl::StrCat(kNamespaceOptions, ".pid");
  switch (ns.pid()) {
    case v1::CONTAINER:
      AddNamespace(spec, shim::v1::PID, "");
      return absl::OkStatus();
    case v1::POD:
      if (in.sandbox.host_pid) return absl::OkStatus();
      if (in.sandbox.pid_ns.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, " POD: the sandbox has no PID namespace to share"));
      }
      AddNamespace(spec, shim::v1::PID, in.sandbox.pid_ns);
      return absl::OkStatus();
    case v1::NODE:
      return absl::OkStatus();
    case v1::TARGET:
      if (in.target_pid_ns.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, " TARGET: no PID namespace found for target_id `", ns.target_id(), "`"));
      }
      AddNamespace(spec, shim::v1::PID, in.target_pid_ns);
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(absl::StrCat(field, " ", ns.pid(), ": unknown mode"));
  }
}

// CRI: log_path is relative to the sandbox's log_directory; ContainerStatus
// reports it absolute (crictl logs opens it). containerd joins the two
// (filepath.Join), so an absolute log_path without a directory stands alone.
absl::StatusOr<std::string> LogPath(const v1::ContainerConfig& config,
                                    const SandboxContext& sandbox) {
  const std::string& file = config.log_path();
  if (file.empty()) return std::string();
  if (internal::HasDotDot(file)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.log_path `", file, "`: contains \"..\""));
  }
  const std::string& dir = sandbox.log_directory;
  if (dir.empty()) {
    if (file[0] == '/') return CleanPath(file);
    return absl::InvalidArgumentError(absl::StrCat(
        "config.log_path `", file, "`: relative, and the sandbox has no log_directory"));
  }
  if (dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("sandbox_config.log_directory `", dir, "`: not absolute"));
  }
  return CleanPath(absl::StrCat(dir, "/", file));
}

// containerd: config.stop_signal, else the image's StopSignal, else SIGTERM.
absl::StatusOr<int> StopSignal(const v1::ContainerConfig& config,
                               const images::ContainerDefaults& image) {
  if (config.stop_signal() != v1::RUNTIME_DEFAULT) {
    absl::StatusOr<int> s = internal::SignalFromCri(config.stop_signal());
    if (!s.ok()) return Annotate(s.status(), "config.stop_signal");
    return s;
  }
  if (!image.stop_signal.empty()) {
    absl::StatusOr<int> s = ParseSignalName(image.stop_signal);
    if (!s.ok()) return Annotate(s.status(), "image config StopSignal");
    return s;
  }
  return SIGTERM;
}

absl::Status ApplyUser(const ContainerSpecInputs& in, BuiltSpec& built) {
  const v1::LinuxContainerSecurityContext& sc = in.config->linux().security_context();
  absl::StatusOr<internal::UserDb> db = internal::ReadUserDb(in.rootfs);
  if (!db.ok()) return Annotate(db.status(), "the image's /etc/passwd or /etc/group");
  BERTH_ASSIGN_OR_RETURN(built.user, internal::ResolveUser(sc, in.image->config.config.user, *db));
  shim::v1::User* user = built.spec.mutable_process()->mutable_user();
  user->set_uid(built.user.uid);
  user->set_gid(built.user.gid);
  // The primary gid is in the list too (containerd's ensureAdditionalGids, the
  // fix for CVE-2023-25173), sorted (mergeGids).
  std::set<uint32_t> gids(built.user.supplemental_groups.begin(),
                          built.user.supplemental_groups.end());
  gids.insert(built.user.gid);
  for (uint32_t g : gids) user->add_additional_gids(g);
  return absl::OkStatus();
}

absl::Status ApplyResources(const ContainerSpecInputs& in, shim::v1::ContainerSpec& spec) {
  const v1::LinuxContainerResources& r = in.config->linux().resources();
  absl::StatusOr<shim::v1::Resources> resources = ToShimResources(r);
  if (!resources.ok()) return Annotate(resources.status(), "config.linux.resources");
  *spec.mutable_resources() = *std::move(resources);
  // containerd WithOOMScoreAdj; the kernel's range (proc(5), oom_score_adj).
  if (r.oom_score_adj() != 0) {
    if (r.oom_score_adj() < -1000 || r.oom_score_adj() > 1000) {
      return absl::InvalidArgumentError(absl::StrCat("config.linux.resources.oom_score_adj ",
                                                     r.oom_score_adj(), ": not in -1000..1000"));
    }
    spec.mutable_process()->set_oom_score_adj(static_cast<int32_t>(r.oom_score_adj()));
  }
  // containerd getCgroupsPath (cgroupfs): <cgroup_parent>/<id>; no parent, no cgroup.
  if (!in.sandbox.cgroup_parent.empty()) {
    spec.set_cgroup_path(CleanPath(absl::StrCat(in.sandbox.cgroup_parent, "/", in.id)));
  }
  return absl::OkStatus();
}

absl::Status ApplySecurity(const v1::LinuxContainerSecurityContext& sc, uint64_t bounding,
                           shim::v1::ContainerSpec& spec) {
  shim::v1::Process& process = *spec.mutable_process();
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> caps,
                         internal::ApplyCapabilities(sc, bounding, process));
  internal::ApplyPathRestrictions(sc, spec);
  spec.set_readonly_root(sc.readonly_rootfs());
  process.set_no_new_privileges(sc.no_new_privs());
  BERTH_ASSIGN_OR_RETURN(std::string bpf, internal::SeccompBpf(sc, caps));
  process.set_seccomp_bpf(std::move(bpf));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BuiltSpec> BuildContainerSpec(const ContainerSpecInputs& in) {
  if (in.config == nullptr || in.image == nullptr) {
    return absl::InvalidArgumentError("BuildContainerSpec: config and image are required");
  }
  const v1::ContainerConfig& config = *in.config;
  const v1::PodSandboxConfig& sandbox =
      in.sandbox_config != nullptr ? *in.sandbox_config : v1::PodSandboxConfig::default_instance();
  const images::ContainerDefaults& image = in.image->config.config;
  const v1::LinuxContainerSecurityContext& sc = config.linux().security_context();
  BERTH_RETURN_IF_ERROR(RefuseUnsupported(config, sandbox));
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> args, ProcessArgs(config, image));

  BuiltSpec built;
  built.spec = shim::DefaultSpec(in.id, in.rootfs, args);
  shim::v1::ContainerSpec& spec = built.spec;
  BERTH_RETURN_IF_ERROR(ApplyEnv(config, sandbox, image, *spec.mutable_process()));
  BERTH_RETURN_IF_ERROR(ApplyCwd(config, image, *spec.mutable_process()));
  BERTH_RETURN_IF_ERROR(ApplyUser(in, built));
  BERTH_RETURN_IF_ERROR(ApplyNamespaces(sc.namespace_options(), in, spec));
  BERTH_RETURN_IF_ERROR(
      internal::ApplyMounts(config, in.sandbox, sc.readonly_rootfs(), in.mountinfo, spec));
  BERTH_RETURN_IF_ERROR(ApplyResources(in, spec));
  BERTH_RETURN_IF_ERROR(internal::ApplyDevices(config, sc.privileged(), "/dev", spec));
  BERTH_RETURN_IF_ERROR(
      ApplySecurity(sc, in.bounding_set ? *in.bounding_set : internal::CurrentBoundingSet(), spec));
  BERTH_RETURN_IF_ERROR(internal::ApplyLsm(sc, in.lsm ? *in.lsm : LsmHost::Detect(),
                                           in.load_default_apparmor, *spec.mutable_process()));
  BERTH_ASSIGN_OR_RETURN(std::string log_path, LogPath(config, in.sandbox));
  spec.set_log_path(std::move(log_path));
  BERTH_ASSIGN_OR_RETURN(built.stop_signal, StopSignal(config, image));
  // ContainerStatus.mounts echoes the request (containerd: config.GetMounts()).
  built.mounts.assign(config.mounts().begin(), config.mounts().end());
  return built;
}

}  // namespace berth::lifecycle
