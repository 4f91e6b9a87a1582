#include "shim/client.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "os/files.h"
#include "os/status.h"
#include "os/unique_fd.h"
#include "os/unix_socket.h"
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

// Up to `limit` bytes of what `fd` gives until EOF; the rest is read and dropped.
std::string ReadAllBounded(int fd, size_t limit) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, std::min(static_cast<size_t>(n), limit - std::min(limit, out.size())));
  }
  return out;
}

absl::StatusOr<int> WaitExit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid");
  }
  return status;
}

// umount2(MNT_DETACH) until `path` is no mount point (a retried step may have
// stacked two); a path that is gone or not mounted is fine.
absl::Status DetachAll(const std::string& path) {
  for (int i = 0; i < 16; ++i) {
    if (umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "umount2", path);
  }
  return absl::FailedPreconditionError(absl::StrCat("umount2 `", path, "`: still mounted"));
}

absl::Status RemoveIfPresent(const std::string& path, bool dir) {
  if ((dir ? rmdir(path.c_str()) : unlink(path.c_str())) == 0 || errno == ENOENT) {
    return absl::OkStatus();
  }
  return ErrnoStatus(errno, dir ? "rmdir" : "unlink", path);
}

// <bundle>/rootfs: /proc and /dev (mount points, made here so the root can be
// read-only: RunRootfs would otherwise create them with OpenInRoot) and the
// shim binary bind-mounted read-only at /pause (mount(2): the flags of a bind
// take a second, MS_REMOUNT call).
absl::Status MakePauseRoot(const std::string& shim_path, const std::string& rootfs) {
  if (mkdir(rootfs.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir", rootfs);
  for (const char* d : {"/proc", "/dev"}) {
    if (mkdir((rootfs + d).c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir", rootfs + d);
  }
  const std::string target = rootfs + "/pause";
  UniqueFd fd(open(target.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0555));
  if (!fd) return ErrnoStatus(errno, "create", target);
  fd.reset();
  if (mount(shim_path.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return Annotate(ErrnoStatus(errno, "mount", target), absl::StrCat("bind `", shim_path, "`"));
  }
  if (mount(nullptr, target.c_str(), nullptr,
            MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    return Annotate(ErrnoStatus(errno, "mount", target), "remount read-only");
  }
  return absl::OkStatus();
}

v1::ContainerSpec PauseSpec(const std::string& rootfs, const PauseOptions& o) {
  v1::ContainerSpec spec = DefaultSpec("pause", rootfs, {"/pause"});
  // /proc (the masked and read-only paths below it apply) and /dev (its /dev/null
  // masks files); no /dev/pts, /dev/shm, /dev/mqueue or /sys.
  google::protobuf::RepeatedPtrField<v1::Mount> mounts;
  for (const v1::Mount& m : spec.mounts()) {
    if (m.destination() == "/proc" || m.destination() == "/dev") *mounts.Add() = m;
  }
  spec.mutable_mounts()->Swap(&mounts);
  spec.set_readonly_root(true);
  v1::Process* p = spec.mutable_process();
  p->clear_env();
  p->clear_capabilities();
  p->set_no_new_privileges(true);
  spec.clear_namespaces();
  spec.add_namespaces()->set_type(v1::PID);
  spec.add_namespaces()->set_type(v1::MOUNT);
  for (const auto& [type, path] : {std::pair{v1::NETWORK, &o.net_ns}, std::pair{v1::IPC, &o.ipc_ns},
                                   std::pair{v1::UTS, &o.uts_ns}}) {
    if (path->empty()) continue;
    v1::Namespace* ns = spec.add_namespaces();
    ns->set_type(type);
    ns->set_path(*path);
  }
  spec.set_cgroup_path(o.cgroup_path);
  return spec;
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

absl::StatusOr<v1::Response> CallShim(const std::string& socket_path, const v1::Request& request,
                                      absl::Duration timeout) {
  const absl::Time start = absl::Now();
  BERTH_ASSIGN_OR_RETURN(UnixAddress addr, UnixAddress::For(socket_path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  if (timeout != absl::InfiniteDuration()) {
    // SO_SNDTIMEO bounds connect(2) too (a full listen backlog) and the send;
    // SO_RCVTIMEO each read of the answer (unix(7), socket(7)).
    const struct timeval tv = absl::ToTimeval(std::max(timeout, absl::Milliseconds(1)));
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  auto late = [&](const absl::Status& s) -> absl::Status {
    if (s.ok() || absl::Now() - start < timeout) return s;
    return absl::DeadlineExceededError(
        absl::StrCat("shim at `", socket_path, "` did not answer within ",
                     absl::FormatDuration(timeout), " (", s.message(), ")"));
  };
  if (connect(fd.get(), addr.sockaddr(), addr.length()) != 0) {
    return late(ErrnoStatus(errno, "connect", socket_path));
  }
  BERTH_RETURN_IF_ERROR(late(WriteFrame(fd.get(), request, {})));
  absl::StatusOr<v1::Response> response = ReceiveShimResponse(fd);
  if (!response.ok()) return late(response.status());
  return response;
}

absl::StatusOr<UniqueFd> SendShimRequest(const std::string& socket_path, const v1::Request& request,
                                         absl::Span<const int> fds) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(socket_path));
  BERTH_RETURN_IF_ERROR(WriteFrame(fd.get(), request, fds));
  return fd;
}

absl::StatusOr<v1::Response> ReceiveShimResponse(const UniqueFd& conn) {
  v1::Response response;
  BERTH_RETURN_IF_ERROR(ReadFrame(conn.get(), response));
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

absl::Status PinNamespaces(const std::string& shim_path, const PinOptions& options) {
  for (const auto& [key, value] : options.sysctls) {
    BERTH_RETURN_IF_ERROR(CheckSandboxSysctl(key, options.net, options.ipc));
  }
  std::vector<std::string> args = PinArgs(options);
  args.insert(args.begin(), "berth-shim");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd r(p[0]), w(p[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, w.get(), 2);
  pid_t pid = -1;
  int err = posix_spawn(&pid, shim_path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return ErrnoStatus(err, "posix_spawn", shim_path);
  w.reset();
  std::string output = ReadAllBounded(r.get(), 4096);
  BERTH_ASSIGN_OR_RETURN(int status, WaitExit(pid));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  absl::string_view message = absl::StripAsciiWhitespace(output);
  absl::ConsumePrefix(&message, "berth-shim: ");
  const std::string context = absl::StrCat("pin namespaces in `", options.dir, "`: ");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
    return absl::InvalidArgumentError(absl::StrCat(context, message));
  }
  if (message.empty()) message = "no message";
  return absl::InternalError(
      absl::StrCat(context, message, " (berth-shim wait status ", status, ")"));
}

absl::Status UnpinNamespaces(const std::string& dir) {
  for (const char* name : {"net", "ipc", "uts"}) {
    const std::string path = absl::StrCat(dir, "/", name);
    BERTH_RETURN_IF_ERROR(DetachAll(path));
    BERTH_RETURN_IF_ERROR(RemoveIfPresent(path, false));
  }
  return RemoveIfPresent(dir, true);
}

absl::StatusOr<LaunchedShim> LaunchPause(const std::string& shim_path, const std::string& bundle,
                                         const PauseOptions& options) {
  const std::string rootfs = bundle + "/rootfs";
  BERTH_RETURN_IF_ERROR(MakeDirs(bundle, 0700));
  struct stat st;
  if (lstat(rootfs.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("pause root `", rootfs, "` exists (RemovePauseRoot removes it)"));
  }
  absl::Cleanup remove_root = [&bundle] { (void)RemovePauseRoot(bundle); };
  BERTH_RETURN_IF_ERROR(Annotate(MakePauseRoot(shim_path, rootfs), "pause root"));
  BERTH_ASSIGN_OR_RETURN(LaunchedShim shim,
                         LaunchShim(shim_path, bundle, PauseSpec(rootfs, options)));
  if (absl::StatusOr<v1::Response> started = CallShim(shim.socket, StartRequest()); !started.ok()) {
    (void)CallShim(shim.socket, DeleteRequest());
    kill(shim.shim_pid, SIGKILL);
    (void)ReapShim(shim.shim_pid);
    return Annotate(started.status(), "start pause");
  }
  std::move(remove_root).Cancel();
  return shim;
}

absl::Status RemovePauseRoot(const std::string& bundle) {
  const std::string rootfs = bundle + "/rootfs";
  BERTH_RETURN_IF_ERROR(DetachAll(rootfs + "/pause"));
  BERTH_RETURN_IF_ERROR(RemoveIfPresent(rootfs + "/pause", false));
  for (const char* d : {"/proc", "/dev"}) BERTH_RETURN_IF_ERROR(RemoveIfPresent(rootfs + d, true));
  return RemoveIfPresent(rootfs, true);
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
