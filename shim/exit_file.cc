#include "shim/exit_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "os/files.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::shim {

v1::ExitStatus ExitStatusFromWait(int wait_status, int64_t exited_at_ns, bool oom_killed) {
  v1::ExitStatus s;
  if (WIFSIGNALED(wait_status)) {
    s.set_signal(WTERMSIG(wait_status));
    s.set_exit_code(128 + WTERMSIG(wait_status));
  } else {
    s.set_exit_code(WEXITSTATUS(wait_status));
  }
  s.set_exited_at_ns(exited_at_ns);
  s.set_oom_killed(oom_killed);
  return s;
}

std::string FormatExitFile(const v1::ExitStatus& s) {
  return absl::StrCat("exit_code=", s.exit_code(), "\nsignal=", s.signal(),
                      "\nexited_at_ns=", s.exited_at_ns(),
                      "\noom_killed=", s.oom_killed() ? "true" : "false", "\n");
}

absl::StatusOr<v1::ExitStatus> ParseExitFile(absl::string_view text) {
  v1::ExitStatus s;
  unsigned seen = 0;  // one bit per field: a repeated line is not a missing one
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, '=');
    int32_t i32 = 0;
    int64_t i64 = 0;
    bool ok = true;
    unsigned bit = 0;
    if (kv.first == "exit_code") {
      ok = absl::SimpleAtoi(kv.second, &i32);
      s.set_exit_code(i32);
      bit = 1;
    } else if (kv.first == "signal") {
      ok = absl::SimpleAtoi(kv.second, &i32);
      s.set_signal(i32);
      bit = 2;
    } else if (kv.first == "exited_at_ns") {
      ok = absl::SimpleAtoi(kv.second, &i64);
      s.set_exited_at_ns(i64);
      bit = 4;
    } else if (kv.first == "oom_killed") {
      ok = kv.second == "true" || kv.second == "false";
      s.set_oom_killed(kv.second == "true");
      bit = 8;
    } else {
      continue;  // newer fields
    }
    if (!ok) return absl::DataLossError(absl::StrCat("exit file: bad line `", line, "`"));
    seen |= bit;
  }
  if (seen != 15) return absl::DataLossError("exit file: missing fields");
  return s;
}

absl::Status WriteExitFile(const std::string& path, const v1::ExitStatus& status) {
  return WriteFileAtomically(path, FormatExitFile(status));
}

absl::StatusOr<v1::ExitStatus> ReadExitFile(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseExitFile(text);
}

}  // namespace berth::shim
