// berth-shim --bundle <dir> [--ready-fd <n>]
// berth-shim --pin-namespaces <dir> [--net] [--ipc] [--uts] [--hostname NAME] [--sysctl K=V]...
// berth-shim --pause   (or called as "pause")
//
// The last two are a pod sandbox's helpers (shim/pin.h): pin new namespaces
// under <dir> and exit, or be the PID 1 of a pod's shared PID namespace.
//
// Reads <dir>/spec.pb (a berth.shim.v1.ContainerSpec), creates the container,
// writes a CreateResult to the ready fd, then serves <dir>/shim.sock until a
// delete request (proto/shim/v1/shim.proto). Files it makes in <dir>: shim.sock,
// shim.pid, init.pid, exit, shim.log (its own messages).
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "os/cgroup/layout.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "os/unix_socket.h"
#include "shim/container.h"
#include "shim/pin.h"
#include "shim/protocol.h"
#include "shim/server.h"

namespace berth::shim {
namespace {

struct Args {
  std::string bundle;
  int ready_fd = -1;
};

bool ParseArgs(int argc, char** argv, Args* args) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--bundle") {
      args->bundle = argv[i + 1];
    } else if (flag == "--ready-fd") {
      if (!absl::SimpleAtoi(argv[i + 1], &args->ready_fd)) return false;
    } else {
      return false;
    }
  }
  return !args->bundle.empty() && args->bundle[0] == '/' && (argc % 2) == 1;
}

absl::StatusOr<UniqueFd> Listen(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(UnixAddress addr, UnixAddress::For(path));  // any length
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket");
  unlink(path.c_str());
  if (bind(fd.get(), addr.sockaddr(), addr.length()) != 0) {
    return ErrnoStatus(errno, "bind", path);
  }
  chmod(path.c_str(), 0600);
  if (listen(fd.get(), 16) != 0) return ErrnoStatus(errno, "listen", path);
  return fd;
}

// Everything up to serving: errors here become the CreateResult.
absl::StatusOr<Server*> Prepare(const Args& args) {
  BERTH_ASSIGN_OR_RETURN(std::string bytes, ReadFile(args.bundle + "/spec.pb"));
  v1::ContainerSpec spec;
  if (!spec.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse `", args.bundle, "/spec.pb`"));
  }
  std::optional<CriLogWriter> log;
  if (!spec.log_path().empty()) {
    absl::StatusOr<CriLogWriter> w = CriLogWriter::Open(spec.log_path());
    if (!w.ok()) return Annotate(w.status(), "log_path");
    log.emplace(*std::move(w));
  }
  const std::string socket_path = args.bundle + "/shim.sock";
  BERTH_ASSIGN_OR_RETURN(UniqueFd listener, Listen(socket_path));
  static CgroupLayout layout;  // outlives the Container that points into it
  if (!spec.cgroup_path().empty() && spec.cgroup_hierarchies().empty()) {
    BERTH_ASSIGN_OR_RETURN(layout, CgroupLayout::Detect());
  } else if (!spec.cgroup_path().empty()) {
    std::vector<CgroupHierarchy> given;
    for (const v1::CgroupHierarchy& h : spec.cgroup_hierarchies()) {
      given.push_back({h.mount_point(), h.v2(), {h.controllers().begin(), h.controllers().end()}});
    }
    absl::StatusOr<CgroupLayout> from = CgroupLayout::FromHierarchies(std::move(given));
    if (!from.ok()) return Annotate(from.status(), "cgroup_hierarchies");
    layout = *std::move(from);
  }
  absl::StatusOr<std::unique_ptr<Container>> c = Container::Create(spec, layout);
  if (!c.ok()) {
    unlink(socket_path.c_str());
    return c.status();
  }
  BERTH_RETURN_IF_ERROR(
      WriteFileAtomically(args.bundle + "/shim.pid", absl::StrCat(getpid(), "\n")));
  BERTH_RETURN_IF_ERROR(
      WriteFileAtomically(args.bundle + "/init.pid", absl::StrCat((*c)->init_pid(), "\n")));
  ServerOptions options;
  options.bundle = args.bundle;
  options.exit_file = args.bundle + "/exit";
  options.socket_path = socket_path;
  return new Server(std::move(options), *std::move(c), std::move(log), std::move(listener));
}

bool IsPause(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "--pause") == 0) return true;
  if (argc < 1 || argv[0] == nullptr) return false;
  const char* slash = strrchr(argv[0], '/');
  return strcmp(slash == nullptr ? argv[0] : slash + 1, "pause") == 0;
}

// --pin-namespaces: exit 0 done, 2 invalid input, 1 anything else (shim/pin.h).
int PinMain(int argc, char** argv) {
  syscall(SYS_close_range, 3, ~0U, 0);  // only our own fds
  absl::StatusOr<PinOptions> options = ParsePinArgs(argc, argv);
  absl::Status s = options.ok() ? RunPin(*options) : options.status();
  if (s.ok()) return 0;
  std::string message(s.message());
  std::replace(message.begin(), message.end(), '\n', ' ');  // one line
  fprintf(stderr, "berth-shim: %s\n", message.c_str());
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int Main(int argc, char** argv) {
  if (IsPause(argc, argv)) RunPause();
  if (argc >= 2 && strcmp(argv[1], "--pin-namespaces") == 0) return PinMain(argc, argv);
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    fprintf(stderr, "usage: berth-shim --bundle <absolute dir> [--ready-fd <n>]\n");
    return 2;
  }
  // Only our own fds from here on; the ready fd closes at any exec.
  if (args.ready_fd > 3) syscall(SYS_close_range, 3, args.ready_fd - 1, 0);
  syscall(SYS_close_range, args.ready_fd < 3 ? 3 : args.ready_fd + 1, ~0U, 0);
  if (args.ready_fd >= 0) fcntl(args.ready_fd, F_SETFD, FD_CLOEXEC);
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  int log_fd =
      open((args.bundle + "/shim.log").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (null_fd >= 0) dup2(null_fd, 0);
  if (log_fd >= 0) {
    dup2(log_fd, 1);
    dup2(log_fd, 2);
  }
  if (null_fd > 2) close(null_fd);
  if (log_fd > 2) close(log_fd);
  // Detach: our own session (no terminal's or starter's signals reach us), and
  // the reaper of every orphan below us.
  setsid();
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);

  absl::StatusOr<Server*> server = Prepare(args);
  v1::CreateResult result;
  result.set_shim_pid(getpid());
  if (!server.ok()) {
    result.set_code(static_cast<int>(server.status().code()));
    result.set_message(std::string(server.status().message()));
    BERTH_LOG(ERROR) << "create: " << server.status();
  } else {
    result.set_init_pid((*server)->init_pid());
  }
  if (args.ready_fd >= 0) {
    (void)WriteFrame(args.ready_fd, result);
    close(args.ready_fd);
  }
  if (!server.ok()) return 1;
  malloc_trim(0);  // the spec and the plans are gone; give their pages back
  ReleaseCodePages();
  absl::Status s = (*server)->Run();
  if (!s.ok()) BERTH_LOG(ERROR) << "serve: " << s;
  for (const char* f : {"/shim.pid", "/init.pid", "/exit"}) unlink((args.bundle + f).c_str());
  return s.ok() ? 0 : 1;
}

}  // namespace
}  // namespace berth::shim

int main(int argc, char** argv) { return berth::shim::Main(argc, argv); }
