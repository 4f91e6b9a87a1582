// Exec, Attach and PortForward: the RPC checks the request and answers with a URL on
// the streaming server (agent/streaming); the session that follows comes back
// here for the process (StartExec, through the shim as ExecSync) and for the
// pod's port (DialPod, in the pod's network namespace).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "os/files.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

absl::StatusOr<st::Container> CriService::RunningRecord(
    const lifecycle::ContainerObject& container) const {
  st::Container r = Snapshot(container);
  if (r.phase() != st::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container_id: container `", r.id(), "` is not running"));
  }
  return r;
}

absl::StatusOr<shim::v1::Process> CriService::ExecProcess(const st::Container& r,
                                                          const std::vector<std::string>& cmd) {
  shim::v1::Process process;
  if (!process.ParseFromString(r.process())) {
    return absl::InternalError(absl::StrCat("container `", r.id(), "`: unreadable process record"));
  }
  process.clear_args();
  for (const std::string& arg : cmd) process.add_args(arg);
  return process;
}

absl::StatusOr<v1::ExecResponse> CriService::Exec(const v1::ExecRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(request.container_id(), "container_id"));
  if (request.cmd().empty()) return absl::InvalidArgumentError("cmd: empty");
  if (request.tty() && request.stderr()) {
    return absl::InvalidArgumentError(
        "tty and stderr: a terminal has one output; stderr must be false with tty");
  }
  if (!request.stdin() && !request.stdout() && !request.stderr()) {
    return absl::InvalidArgumentError("stdin, stdout, stderr: at least one must be true");
  }
  std::vector<std::string> cmd(request.cmd().begin(), request.cmd().end());
  BERTH_ASSIGN_OR_RETURN(st::Container r, RunningRecord(*container));
  BERTH_RETURN_IF_ERROR(ExecProcess(r, cmd).status());
  if (!streaming_)
    return absl::UnavailableError("the streaming server is off (--streaming-address)");
  streaming::ExecTarget target;
  target.container_id = container->id;
  target.cmd = std::move(cmd);
  target.tty = request.tty();
  target.in = request.stdin();
  target.out = request.stdout();
  target.err = request.stderr();
  BERTH_ASSIGN_OR_RETURN(std::string url, streaming_->ExecUrl(std::move(target)));
  v1::ExecResponse response;
  response.set_url(url);
  return response;
}

absl::StatusOr<v1::AttachResponse> CriService::Attach(const v1::AttachRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(request.container_id(), "container_id"));
  // CreateContainer refuses config.stdin and config.tty (not supported yet),
  // so a container has neither to attach to.
  if (request.stdin()) {
    return absl::InvalidArgumentError(
        "stdin: the container has no stdin (berth does not support config.stdin yet)");
  }
  if (request.tty()) {
    return absl::InvalidArgumentError(
        "tty: the container has no terminal (berth does not support config.tty yet)");
  }
  if (!request.stdout() && !request.stderr()) {
    return absl::InvalidArgumentError("stdout, stderr: at least one must be true");
  }
  BERTH_RETURN_IF_ERROR(RunningRecord(*container).status());
  if (!streaming_)
    return absl::UnavailableError("the streaming server is off (--streaming-address)");
  streaming::ExecTarget target;
  target.container_id = container->id;
  target.out = request.stdout();
  target.err = request.stderr();
  BERTH_ASSIGN_OR_RETURN(std::string url, streaming_->AttachUrl(std::move(target)));
  v1::AttachResponse response;
  response.set_url(url);
  return response;
}

absl::StatusOr<UniqueFd> CriService::StartAttach(const streaming::ExecTarget& target,
                                                 const int stdio[3]) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(target.container_id, "container_id"));
  BERTH_ASSIGN_OR_RETURN(st::Container r, RunningRecord(*container));
  shim::v1::Request attach;
  attach.mutable_attach();
  return shim::SendShimRequest(r.bundle() + "/shim.sock", attach, {stdio[1], stdio[2]});
}

absl::StatusOr<v1::PortForwardResponse> CriService::PortForward(
    const v1::PortForwardRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> sandbox,
                         registry_.FindSandbox(request.pod_sandbox_id(), "pod_sandbox_id"));
  for (int i = 0; i < request.port_size(); ++i) {
    if (request.port(i) <= 0 || request.port(i) > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("port[", i, "]: ", request.port(i), " is not a TCP port"));
    }
  }
  st::Sandbox r = Snapshot(*sandbox);
  if (r.phase() != st::RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod_sandbox_id: pod sandbox `", r.id(), "` is not ready"));
  }
  if (!streaming_)
    return absl::UnavailableError("the streaming server is off (--streaming-address)");
  BERTH_ASSIGN_OR_RETURN(std::string url,
                         streaming_->PortForwardUrl(streaming::PortForwardTarget{r.id()}));
  v1::PortForwardResponse response;
  response.set_url(url);
  return response;
}

absl::StatusOr<UniqueFd> CriService::StartExec(const streaming::ExecTarget& target,
                                               const int stdio[3]) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(target.container_id, "container_id"));
  shim::v1::Request exec;
  shim::v1::ExecRequest* e = exec.mutable_exec();
  BERTH_ASSIGN_OR_RETURN(st::Container r, RunningRecord(*container));
  BERTH_ASSIGN_OR_RETURN(*e->mutable_process(), ExecProcess(r, target.cmd));
  e->mutable_process()->set_terminal(target.tty);
  e->set_stdio_fds(true);
  return shim::SendShimRequest(r.bundle() + "/shim.sock", exec, {stdio[0], stdio[1], stdio[2]});
}

absl::StatusOr<UniqueFd> CriService::OpenTerminal(const streaming::ExecTarget& target) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(target.container_id, "container_id"));
  st::Container r = Snapshot(*container);
  const std::string root = absl::StrCat("/proc/", r.init_pid(), "/root");
  BERTH_ASSIGN_OR_RETURN(UniqueFd dir, OpenFile(root, O_PATH | O_DIRECTORY));
  // The container's files are its own: resolved inside its root, no symlink
  // followed, so nothing in it can point this open at a file of the host.
  struct open_how how = {};
  how.flags = O_RDWR | O_NOCTTY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, dir.get(), "dev/pts/ptmx", &how, sizeof(how)));
  if (fd < 0) return ErrnoStatus(errno, "openat2", root + "/dev/pts/ptmx");
  return UniqueFd(fd);
}

absl::StatusOr<UniqueFd> CriService::DialPod(const std::string& sandbox_id, uint16_t port) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::SandboxObject> sandbox,
                         registry_.FindSandbox(sandbox_id, "pod_sandbox_id"));
  st::Sandbox r = Snapshot(*sandbox);
  if (r.phase() != st::RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("pod sandbox `", r.id(), "` is not ready"));
  }
  // A socket belongs to the namespace it was made in: make it on a thread of
  // its own that enters the pod's (setns affects only the calling thread),
  // then connect from anywhere. A host-network pod has no pinned netns.
  UniqueFd netns;
  if (!r.net_ns().empty()) {
    BERTH_ASSIGN_OR_RETURN(netns, OpenFile(r.net_ns(), O_RDONLY));
  }
  absl::StatusOr<UniqueFd> result = absl::InternalError("dial did not run");
  std::thread dial([&] {
    if (netns.valid() && setns(netns.get(), CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, "setns", r.net_ns());
      return;
    }
    // localhost: IPv4 first, then IPv6 (as containerd).
    absl::Status last;
    for (int family : {AF_INET, AF_INET6}) {
      UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!fd.valid()) {
        last = ErrnoStatus(errno, "socket");
        continue;
      }
      int rc;
      if (family == AF_INET) {
        struct sockaddr_in a = {};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(fd.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a));
      } else {
        struct sockaddr_in6 a = {};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        a.sin6_addr = in6addr_loopback;
        rc = connect(fd.get(), reinterpret_cast<struct sockaddr*>(&a), sizeof(a));
      }
      if (rc == 0) {
        // As Go's dialer (containerd's) does: no Nagle delay on forwarded bytes.
        int one = 1;
        setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        result = std::move(fd);
        return;
      }
      last = ErrnoStatus(errno, "connect", absl::StrCat("localhost:", port));
    }
    result = last;
  });
  dial.join();  // the thread (and its namespace) ends here
  return result;
}

}  // namespace berth
