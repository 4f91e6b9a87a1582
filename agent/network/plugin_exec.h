// Running one CNI plugin binary: the process seam of the network library.
//
// A plugin is an executable that reads its config on stdin, takes its
// parameters from CNI_* environment variables and answers on stdout: a result,
// or on a non-zero exit an error object {"code", "msg", "details"} (SPEC.md,
// section 2, "Execution Protocol", and section 5, "Error"). stderr is free-form.
//
// PluginExec is the interface the Cni class calls; SpawnPluginExec is the real
// one. It posix_spawn()s the binary
//   - with exactly the environment given (no inherited variables),
//   - stdin a sealed memfd holding the config (no pipe to block on or SIGPIPE),
//   - stdout and stderr O_CLOEXEC pipes read with poll(2) up to a bound each,
//   - every other descriptor closed (posix_spawn_file_actions_addclosefrom_np),
//     default signal dispositions and an empty mask (the agent ignores SIGPIPE),
//   - in its own process group, so a timeout SIGKILLs the plugin and whatever it
//     delegated to (IPAM plugins, iptables) at once,
// and waits for that one pid through a pidfd: the agent has other children, and
// waitpid(-1) would steal their exit statuses.
//
//   SpawnPluginExec exec;
//   BERTH_ASSIGN_OR_RETURN(PluginOutput out, exec.Run({.path = "/usr/lib/cni/bridge",
//       .env = {"CNI_COMMAND=VERSION"}, .stdin_data = "{}", .timeout = absl::Seconds(5)}));
//   BERTH_RETURN_IF_ERROR(PluginError("bridge", "VERSION", out));
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace berth::network {

struct PluginCall {
  std::string path;              // the binary
  std::vector<std::string> env;  // "KEY=value", the whole environment
  std::string stdin_data;
  absl::Duration timeout = absl::Seconds(60);
};

struct PluginOutput {
  int wait_status = 0;  // as waitpid(2) reports it
  std::string out;      // stdout, cut at the bound
  std::string err;      // stderr, cut at the bound
};

class PluginExec {
 public:
  virtual ~PluginExec() = default;
  // Runs the plugin to completion. Errors are about running it (spawn failed:
  // the errno's code; DEADLINE_EXCEEDED after the plugin's process group was
  // killed at `timeout`); a plugin that ran and failed is an OK PluginOutput.
  virtual absl::StatusOr<PluginOutput> Run(const PluginCall& call) = 0;
};

class SpawnPluginExec : public PluginExec {
 public:
  static constexpr size_t kMaxStdout = 1 << 20;
  static constexpr size_t kMaxStderr = 64 << 10;
  absl::StatusOr<PluginOutput> Run(const PluginCall& call) override;
};

// OK when the plugin exited 0. Otherwise the plugin's own message, as libcni
// formats a CNI error ("msg; details"), or when stdout holds no error object,
// its exit status and stderr: ``cni plugin `bridge` ADD: failed to set bridge
// addr: ...``. The CNI error code picks the status code: 11 (try again later)
// is UNAVAILABLE, 1, 2, 4, 6 and 7 (bad version, field, environment, content or
// config) INVALID_ARGUMENT, others INTERNAL.
absl::Status PluginError(absl::string_view type, absl::string_view command,
                         const PluginOutput& output);

// The first of `bin_dirs` holding an executable regular file named `type`
// (libcni's FindInPath). FAILED_PRECONDITION names the type and the directories.
absl::StatusOr<std::string> FindPlugin(absl::string_view type,
                                       const std::vector<std::string>& bin_dirs);

}  // namespace berth::network
