// <bundle>/exit: how the container's init ended, written by the shim before it
// tells anyone (so an agent restarted at any moment finds it), read by clients.
//
// Text, one `key=value` per line, written to a temp file and renamed:
//   exit_code=137
//   signal=9
//   exited_at_ns=1764412345123456789
//   oom_killed=true
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "shim/v1/shim.pb.h"

namespace berth::shim {

// From a waitpid(2) status: exit_code is the status or 128+signal.
v1::ExitStatus ExitStatusFromWait(int wait_status, int64_t exited_at_ns, bool oom_killed);

std::string FormatExitFile(const v1::ExitStatus& status);
absl::StatusOr<v1::ExitStatus> ParseExitFile(absl::string_view text);

absl::Status WriteExitFile(const std::string& path, const v1::ExitStatus& status);
absl::StatusOr<v1::ExitStatus> ReadExitFile(const std::string& path);

}  // namespace berth::shim
