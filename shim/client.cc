#include "shim/client.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "os/files.h"
#include "os/status.h"
#include "os/unique_fd.h"
#include "shim/protocol.h"

extern char** environ;

namespace berth::shim {
namespace {

v1::Mount MakeMount(const char* dest, const char* type, const char* source,
                    std::vector<std::string> options) {
  v1::Mount m;
  m.set_destination(dest);
  m.set_type(type);
  m.set_source(source);
  for (std::string& o : options) m.add_options(std::move(o));
  return m;
}

}  // namespace

absl::StatusOr<LaunchedShim> LaunchShim(const std::string& shim_path, const std::string& bundle,
                                        const v1::ContainerSpec& spec) {
  BERTH_RETURN_IF_ERROR(WriteFileAtomically(bundle + "/spec.pb", spec.SerializeAsString(), 0600));
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd r(p[0]), w(p[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, w.get(), 3);  // dup2 clears O_CLOEXEC
  std::string bundle_arg = bundle;
  char arg0[] = "berth-shim", arg1[] = "--bundle", arg3[] = "--ready-fd", arg4[] = "3";
  char* argv[] = {arg0, arg1, bundle_arg.data(), arg3, arg4, nullptr};
  pid_t pid = -1;
  int err = posix_spawn(&pid, shim_path.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return ErrnoStatus(err, "posix_spawn", shim_path);
  w.reset();
  v1::CreateResult result;
  absl::Status read = ReadFrame(r.get(), result);
  if (!read.ok()) {
    int status = 0;
    waitpid(pid, &status, 0);
    absl::StatusOr<std::string> log = ReadFile(bundle + "/shim.log");
    return absl::InternalError(absl::StrCat("berth-shim exited (status ", status,
                                            ") without a result: ", read.message(),
                                            "; log: ", log.ok() ? *log : ""));
  }
  if (result.code() != 0) {
    waitpid(pid, nullptr, 0);
    return absl::Status(static_cast<absl::StatusCode>(result.code()), result.message());
  }
  LaunchedShim shim;
  shim.shim_pid = pid;
  shim.init_pid = result.init_pid();
  shim.bundle = bundle;
  shim.socket = bundle + "/shim.sock";
  return shim;
}

absl::StatusOr<v1::Response> CallShim(const std::string& socket_path, const v1::Request& request) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path `", socket_path, "` is too long"));
  }
  memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "connect", socket_path);
  }
  BERTH_RETURN_IF_ERROR(WriteFrame(fd.get(), request));
  v1::Response response;
  BERTH_RETURN_IF_ERROR(ReadFrame(fd.get(), response));
  if (response.code() != 0 && !response.has_exec()) {
    return absl::Status(static_cast<absl::StatusCode>(response.code()), response.message());
  }
  return response;
}

v1::Request StartRequest() {
  v1::Request r;
  r.mutable_start();
  return r;
}
v1::Request WaitRequest() {
  v1::Request r;
  r.mutable_wait();
  return r;
}
v1::Request StateRequest() {
  v1::Request r;
  r.mutable_state();
  return r;
}
v1::Request DeleteRequest() {
  v1::Request r;
  r.mutable_delete_();
  return r;
}
v1::Request KillRequest(int signal, bool all) {
  v1::Request r;
  r.mutable_kill()->set_signal(signal);
  r.mutable_kill()->set_all(all);
  return r;
}

absl::StatusOr<int> ReapShim(pid_t shim_pid) {
  int status = 0;
  while (waitpid(shim_pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid");
  }
  return status;
}

v1::ContainerSpec DefaultSpec(const std::string& id, const std::string& root,
                              const std::vector<std::string>& args) {
  v1::ContainerSpec spec;
  spec.set_id(id);
  spec.set_root(root);
  v1::Process* p = spec.mutable_process();
  for (const std::string& a : args) p->add_args(a);
  p->add_env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  p->set_cwd("/");
  for (const char* cap :
       {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}) {
    v1::Capabilities* c = p->mutable_capabilities();
    c->add_bounding(cap);
    c->add_effective(cap);
    c->add_permitted(cap);
  }
  for (v1::NamespaceType t : {v1::PID, v1::MOUNT, v1::UTS, v1::IPC, v1::NETWORK}) {
    spec.add_namespaces()->set_type(t);
  }
  *spec.add_mounts() = MakeMount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"});
  *spec.add_mounts() =
      MakeMount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  *spec.add_mounts() =
      MakeMount("/dev/pts", "devpts", "devpts",
                {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  *spec.add_mounts() = MakeMount("/dev/shm", "tmpfs", "shm",
                                 {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"});
  *spec.add_mounts() = MakeMount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"});
  *spec.add_mounts() = MakeMount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  for (const char* m :
       {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
        "/sys/devices/virtual/powercap", "/proc/scsi"}) {
    spec.add_masked_paths(m);
  }
  for (const char* r : {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
    spec.add_readonly_paths(r);
  }
  return spec;
}

}  // namespace berth::shim
