#include "agent/network/plugin_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::network {
namespace {

// Moves `fd` above 0-2, so the dup2 file actions onto 0, 1 and 2 cannot clobber
// one another even in a process started with those closed.
absl::StatusOr<UniqueFd> AboveStdio(UniqueFd fd) {
  if (fd.get() > 2) return fd;
  int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return ErrnoStatus(errno, "fcntl F_DUPFD_CLOEXEC");
  return UniqueFd(moved);
}

// The config as a sealed memfd at offset 0: the plugin reads it as a file.
absl::StatusOr<UniqueFd> MakeStdin(absl::string_view data) {
  UniqueFd fd(memfd_create("cni-config", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return ErrnoStatus(errno, "memfd_create");
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write", "memfd:cni-config");
    done += static_cast<size_t>(n);
  }
  if (lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoStatus(errno, "lseek", "memfd:cni-config");
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return ErrnoStatus(errno, "fcntl F_ADD_SEALS", "memfd:cni-config");
  }
  return AboveStdio(std::move(fd));
}

struct Pipe {
  UniqueFd read, write;
};
absl::StatusOr<Pipe> MakePipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  Pipe out{UniqueFd(p[0]), UniqueFd(p[1])};
  BERTH_ASSIGN_OR_RETURN(out.read, AboveStdio(std::move(out.read)));
  BERTH_ASSIGN_OR_RETURN(out.write, AboveStdio(std::move(out.write)));
  return out;
}

// posix_spawn with stdin/stdout/stderr from the given fds and nothing else open,
// default signals, in a new process group led by the plugin.
absl::StatusOr<pid_t> Spawn(const PluginCall& call, int in, int out, int err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in, 0);  // dup2 clears O_CLOEXEC
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  posix_spawn_file_actions_adddup2(&actions, err, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::string arg0 = call.path.substr(call.path.find_last_of('/') + 1);
  char* argv[] = {arg0.data(), nullptr};
  std::vector<char*> envp;
  std::vector<std::string> env = call.env;  // posix_spawn wants char*, not const char*
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, call.path.c_str(), &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoStatus(rc, "posix_spawn", call.path);
  return pid;
}

// Appends what `fd` has now to `sink` up to `limit` bytes (the rest is read and
// dropped so the writer never blocks). False at EOF or on an error.
bool Drain(int fd, std::string& sink, size_t limit) {
  char buf[8192];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  size_t room = limit - std::min(limit, sink.size());
  sink.append(buf, std::min(room, static_cast<size_t>(n)));
  return true;
}

// Polls stdout, stderr and the pidfd until the plugin has exited and both pipes
// are at EOF (as Go's exec.Cmd.Wait, which libcni uses, waits for its pipes too),
// or until `deadline`. True when it finished in time.
bool Collect(int out, int err, int pidfd, absl::Time deadline, PluginOutput& output) {
  pollfd fds[3] = {{out, POLLIN, 0}, {err, POLLIN, 0}, {pidfd, POLLIN, 0}};
  std::string* sinks[2] = {&output.out, &output.err};
  const size_t limits[2] = {SpawnPluginExec::kMaxStdout, SpawnPluginExec::kMaxStderr};
  while (fds[0].fd >= 0 || fds[1].fd >= 0 || fds[2].fd >= 0) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    int ms = static_cast<int>(std::ceil(absl::ToDoubleMilliseconds(left)));
    if (poll(fds, 3, ms) < 0) {
      if (errno == EINTR) continue;  // revents are stale: poll again
      return false;
    }
    for (int i = 0; i < 2; ++i) {
      // poll(2) skips negative fds: a pipe at EOF drops out.
      if (fds[i].fd >= 0 && fds[i].revents != 0 && !Drain(fds[i].fd, *sinks[i], limits[i])) {
        fds[i].fd = -1;
      }
    }
    if (fds[2].fd >= 0 && fds[2].revents != 0) fds[2].fd = -1;  // the plugin exited
  }
  return true;
}

int Reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

absl::StatusCode CodeForCniError(int code) {
  switch (code) {
    case 11:
      return absl::StatusCode::kUnavailable;
    case 1:
    case 2:
    case 4:
    case 6:
    case 7:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::StatusOr<PluginOutput> SpawnPluginExec::Run(const PluginCall& call) {
  const absl::Time deadline = absl::Now() + call.timeout;
  BERTH_ASSIGN_OR_RETURN(UniqueFd in, MakeStdin(call.stdin_data));
  BERTH_ASSIGN_OR_RETURN(Pipe out, MakePipe());
  BERTH_ASSIGN_OR_RETURN(Pipe err, MakePipe());
  BERTH_ASSIGN_OR_RETURN(pid_t pid, Spawn(call, in.get(), out.write.get(), err.write.get()));
  PluginOutput output;
  // Until reaped, the plugin's group is ours to kill: on any early return too.
  absl::Cleanup kill_and_reap = [pid, &output] {
    kill(-pid, SIGKILL);
    output.wait_status = Reap(pid);
  };
  in.reset();
  out.write.reset();
  err.write.reset();
  // glibc 2.36's <sys/pidfd.h> lacks extern "C"; the raw call is the same thing.
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));  // always close-on-exec
  if (!pidfd) return ErrnoStatus(errno, "pidfd_open");
  if (!Collect(out.read.get(), err.read.get(), pidfd.get(), deadline, output)) {
    std::move(kill_and_reap).Invoke();
    return absl::DeadlineExceededError(
        absl::StrCat("timed out after ", absl::FormatDuration(call.timeout),
                     " (killed); stderr: ", absl::StripAsciiWhitespace(output.err)));
  }
  std::move(kill_and_reap).Cancel();
  output.wait_status = Reap(pid);
  return output;
}

absl::Status PluginError(absl::string_view type, absl::string_view command,
                         const PluginOutput& output) {
  if (WIFEXITED(output.wait_status) && WEXITSTATUS(output.wait_status) == 0) {
    return absl::OkStatus();
  }
  const std::string context = absl::StrCat("cni plugin `", type, "` ", command, ": ");
  nlohmann::json doc = nlohmann::json::parse(output.out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object() && doc.contains("msg") && doc["msg"].is_string()) {
    std::string message = doc["msg"].get<std::string>();
    if (auto d = doc.find("details"); d != doc.end() && d->is_string() && !d->empty()) {
      absl::StrAppend(&message, "; ", d->get<std::string>());
    }
    auto c = doc.find("code");
    int code = c != doc.end() && c->is_number_integer() ? c->get<int>() : 0;
    return absl::Status(CodeForCniError(code), absl::StrCat(context, message));
  }
  absl::string_view text = absl::StripAsciiWhitespace(output.err);
  if (text.empty()) text = absl::StripAsciiWhitespace(output.out);
  return absl::InternalError(absl::StrCat(context, DescribeWaitStatus(output.wait_status),
                                          text.empty() ? "" : ": ", text));
}

absl::StatusOr<std::string> FindPlugin(absl::string_view type,
                                       const std::vector<std::string>& bin_dirs) {
  for (const std::string& dir : bin_dirs) {
    const std::string path = absl::StrCat(dir, "/", type);
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cni plugin `", type, "` not found in [", absl::StrJoin(bin_dirs, ", "), "]"));
}

}  // namespace berth::network
