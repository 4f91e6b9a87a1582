// ExecSync: a command run to completion in a running container, through its
// shim (setns into init's namespaces and cgroup; shim/container.cc Exec).
//
// CRI (research/cri-v1.md §1): stdout and stderr capped at 16 MiB each, the
// rest discarded; a non-zero exit is not a gRPC error; on timeout the answer is
// DEADLINE_EXCEEDED and nothing the command started is left running (the shim
// kills the process group).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/cri/cri_service.h"
#include "agent/cri/records.h"
#include "os/status.h"
#include "shim/client.h"

namespace berth {

namespace v1 = runtime::v1;
namespace st = ::berth::state::v1;

constexpr uint64_t kMaxExecOutput = 16u << 20;

absl::StatusOr<v1::ExecSyncResponse> CriService::ExecSync(const v1::ExecSyncRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<lifecycle::ContainerObject> container,
                         registry_.FindContainer(request.container_id(), "container_id"));
  if (request.cmd().empty()) return absl::InvalidArgumentError("cmd: empty");
  if (request.timeout() < 0) return absl::InvalidArgumentError("timeout: negative");
  // No op_mu: an exec runs beside Stop and other execs; the shim orders them.
  BERTH_ASSIGN_OR_RETURN(st::Container r, RunningRecord(*container));
  shim::v1::Request exec;
  shim::v1::ExecRequest* e = exec.mutable_exec();
  BERTH_ASSIGN_OR_RETURN(
      *e->mutable_process(),
      ExecProcess(r, std::vector<std::string>(request.cmd().begin(), request.cmd().end())));
  // Timeout 0 is "no timeout" in CRI; here it is an hour (README), so that
  // no call pins a thread of berthd's for ever. kubelet's probes always give one.
  const int64_t timeout_s =
      request.timeout() > 0 ? ClampTimeoutSeconds(request.timeout()) : kExecSyncNoTimeoutSeconds;
  e->set_timeout_ms(timeout_s * 1000);
  e->set_max_output_bytes(kMaxExecOutput);
  // The shim kills the command at its timeout and answers; berthd gives it
  // the shim's own call deadline on top.
  const absl::Duration wait = absl::Seconds(timeout_s) + shim::kShimCallTimeout;
  BERTH_ASSIGN_OR_RETURN(shim::v1::Response response, CallContainerShim(*container, exec, wait));
  if (response.exec().timed_out() ||
      response.code() == static_cast<int>(absl::StatusCode::kDeadlineExceeded)) {
    return absl::DeadlineExceededError(absl::StrCat("command `", absl::StrJoin(request.cmd(), " "),
                                                    "` timed out after ", request.timeout(),
                                                    "s and was killed"));
  }
  if (response.code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(response.code()), response.message());
  }
  v1::ExecSyncResponse out;
  out.set_stdout(response.exec().stdout());
  out.set_stderr(response.exec().stderr());
  out.set_exit_code(response.exec().exit().exit_code());
  return out;
}

}  // namespace berth
