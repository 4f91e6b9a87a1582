// The last steps before execve, shared by a container's init and by processes
// exec'd into it: session, stdio, user and groups, capabilities, no_new_privs,
// seccomp, working directory (capabilities(7), prctl(2), seccomp(2), credentials(7)).
//
// BuildProcessPlan resolves everything in the parent (capability names to
// masks, argv/envp arrays, the PATH candidates for args[0]); RunProcess runs in
// the child and only makes syscalls on that data.
//
// Order (runc's finalizeNamespace, crun's apply_security_settings):
//   dup2 stdio; setsid (and TIOCSCTTY on a terminal); chdir (as root, the directory may be
//   unreadable later); no_new_privs; seccomp now if !no_new_privs (loading a filter without NNP
//   needs CAP_SYS_ADMIN, which the caps step may drop); drop the bounding set;
//   PR_SET_KEEPCAPS; setgroups, setresgid, setresuid; capset; ambient raise;
//   wait for "start"; seccomp now if no_new_privs (as late as possible, so the
//   filter only has to allow execve); execve each candidate.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shim/sync.h"
#include "shim/v1/shim.pb.h"

namespace berth::shim {

struct CapSets {
  uint64_t bounding = 0, effective = 0, permitted = 0, inheritable = 0, ambient = 0;
};

struct ProcessPlan {
  std::vector<std::string> candidates;  // full paths to try for args[0]
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> argv;  // into args, null-terminated
  std::vector<char*> envp;  // into env, null-terminated
  std::string cwd;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  CapSets caps;
  int last_cap = 40;
  bool no_new_privs = false;
  std::string apparmor_exec;  // "exec <profile>", or empty
  bool terminal = false;      // stdin becomes the controlling terminal
  std::string seccomp;        // struct sock_filter[]
  struct sock_fprog seccomp_prog = {};
};

// Masks for capability names ("CAP_SYS_ADMIN", or "SYS_ADMIN"); the error names
// `field[i]` and the unknown name.
absl::StatusOr<uint64_t> CapMask(const google::protobuf::RepeatedPtrField<std::string>& names,
                                 absl::string_view field);

absl::StatusOr<std::unique_ptr<ProcessPlan>> BuildProcessPlan(const v1::Process& process);

// Runs the steps above on the child's side of `sync_fd` (stdio already on
// 0, 1, 2). Never returns: execs, or reports {stage, errno} and _exits.
[[noreturn]] void RunProcess(const ProcessPlan& plan, int sync_fd);

// Reports a failure to the parent and _exits; for the child only.
[[noreturn]] void FailChild(int sync_fd, Stage stage, int err, int index = -1);

}  // namespace berth::shim
