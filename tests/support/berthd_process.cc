#include "tests/support/berthd_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "os/files.h"
#include "os/status.h"

extern char** environ;

namespace berth::testing {

BerthdProcess::BerthdProcess(const TempDir& dir, std::string name)
    : dir_(dir.path()), name_(std::move(name)) {}

BerthdProcess::~BerthdProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
}

absl::Status BerthdProcess::Spawn(const std::vector<std::string>& extra) {
  if (pid_ > 0) return absl::FailedPreconditionError("berthd already running");
  std::vector<std::string> args = {
      BERTHD_PATH, "--socket=" + socket_path(), "--root=" + root_dir(),
      "--state-dir=" + state_dir(), "--metrics-address=",
      // No CNI config: pods get loopback only, whatever the machine has.
      "--cni-conf-dir=" + dir_ + "/cni/net.d", "--shutdown-grace=5"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path().c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  int err = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    pid_ = -1;
    return ErrnoStatus(err, "posix_spawn", argv[0]);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> BerthdProcess::WaitExit(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status;
    pid_t got = ::waitpid(pid_, &status, WNOHANG);
    if (got == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ErrnoStatus(errno, "waitpid");
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::DeadlineExceededError(absl::StrCat("berthd did not exit; log:\n", Log()));
}

absl::Status BerthdProcess::Start(const std::vector<std::string>& extra, absl::Duration timeout) {
  if (absl::Status s = Spawn(extra); !s.ok()) return s;
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<SocketProbe> probe = ProbeUnixSocket(socket_path());
    if (probe.ok() && *probe == SocketProbe::kLive) return absl::OkStatus();
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("berthd exited at start (",
                                              WIFEXITED(status)
                                                  ? absl::StrCat("exit ", WEXITSTATUS(status))
                                                  : absl::StrCat("signal ", WTERMSIG(status)),
                                              "); log:\n", Log()));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::DeadlineExceededError(absl::StrCat("berthd socket never served; log:\n", Log()));
}

absl::StatusOr<int> BerthdProcess::RunToExit(const std::vector<std::string>& extra,
                                             absl::Duration timeout) {
  if (absl::Status s = Spawn(extra); !s.ok()) return s;
  return WaitExit(timeout);
}

absl::StatusOr<int> BerthdProcess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("berthd not running");
  if (::kill(pid_, signal) != 0) return ErrnoStatus(errno, "kill");
  return WaitExit(timeout);
}

std::shared_ptr<grpc::Channel> BerthdProcess::Channel() const {
  return grpc::CreateChannel("unix:" + socket_path(), grpc::InsecureChannelCredentials());
}

std::string BerthdProcess::Log() const {
  absl::StatusOr<std::string> text = ReadFile(log_path());
  return text.ok() ? *text : "(no log)";
}

int PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::abort();
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::string HttpRequest(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  (void)!::write(fd, request.data(), request.size());
  // Large reads into a buffer sized from Content-Length, as an HTTP client
  // would: a /metrics page of 500 pods is ~11 MB, and pod_bench times it.
  std::string out;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  bool sized = false;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
    out.append(buf.data(), n);
    if (sized) continue;
    size_t end = out.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    sized = true;
    size_t at = out.find("Content-Length: ");
    if (at < end) out.reserve(end + 4 + std::strtoull(out.c_str() + at + 16, nullptr, 10));
  }
  ::close(fd);
  return out;
}

std::string HttpGet(int port, const std::string& path) {
  return HttpRequest(port, "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n");
}

}  // namespace berth::testing
