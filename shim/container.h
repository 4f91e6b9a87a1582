// The shim's side of one container: create (clone + sync, see sync.h), start,
// signals, freezer, resource updates, exec'd processes, exit and cleanup.
//
//   BERTH_ASSIGN_OR_RETURN(auto c, Container::Create(spec, bundle, layout));
//   BERTH_RETURN_IF_ERROR(c->Start());
//   ... SIGCHLD: c->OnExit(pid, status) ...
//   BERTH_RETURN_IF_ERROR(c->Delete());
//
// Rollback is explicit: a failed Create kills its child, removes the cgroups
// it made and closes every fd; the child's mounts die with its mount namespace.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "os/cgroup/cgroup.h"
#include "os/cgroup/layout.h"
#include "os/unique_fd.h"
#include "shim/v1/shim.pb.h"

namespace berth::shim {

int64_t NowNs();

// proto Resources -> the cgroup library's struct.
CgroupResources ToCgroupResources(const v1::Resources& r);

struct ExecChild {
  pid_t pid = -1;
  UniqueFd stdout_fd;  // read ends
  UniqueFd stderr_fd;
};

class Container {
 public:
  static absl::StatusOr<std::unique_ptr<Container>> Create(const v1::ContainerSpec& spec,
                                                           const CgroupLayout& layout);
  ~Container();

  absl::Status Start();
  absl::Status Kill(int signal, bool all);
  absl::Status Pause();
  absl::Status Resume();
  absl::Status Update(const v1::Resources& resources);
  // A new process in every namespace and the cgroup of init. Its stdio: pipes
  // whose read ends come back in ExecChild, or `stdio` (stdin, stdout, stderr)
  // when given (ExecChild's fds are then empty).
  absl::StatusOr<ExecChild> Exec(const v1::Process& process, const int* stdio = nullptr);
  // After waitpid reported init's end: records it (with OOM from the memory cgroup).
  const v1::ExitStatus& OnInitExit(int wait_status);
  // Kills what is left, removes the cgroup. Idempotent.
  absl::Status Delete();

  pid_t init_pid() const { return init_pid_; }
  v1::ContainerState state() const { return state_; }
  int64_t created_at_ns() const { return created_at_ns_; }
  int64_t started_at_ns() const { return started_at_ns_; }
  const v1::ExitStatus& exit_status() const { return exit_; }
  // Read ends of init's stdout and stderr; released to the caller's loop.
  UniqueFd TakeStdout() { return std::move(stdout_); }
  UniqueFd TakeStderr() { return std::move(stderr_); }

 private:
  Container() = default;
  absl::Status Spawn(const v1::ContainerSpec& spec);
  uint64_t OomKills() const;

  std::optional<Cgroup> cgroup_;
  pid_t init_pid_ = -1;
  UniqueFd sync_;
  UniqueFd stdout_, stderr_;
  v1::ContainerState state_ = v1::CREATED;
  int64_t created_at_ns_ = 0, started_at_ns_ = 0;
  v1::ExitStatus exit_;
  std::string exec_error_path_;
  bool userns_ = false;
  uint64_t oom_kills_at_create_ = 0;
};

}  // namespace berth::shim
