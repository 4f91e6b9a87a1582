// clone(2) of a container's init or of a process exec'd into it, and the
// parent's side of the sync protocol (sync.h): the child's stdio and sync
// ends, the parent's steps before "go" (cgroup, rlimits, oom_score_adj), and
// the child's {stage, errno} report turned into an error naming what failed.
#pragma once

#include <sys/types.h>

#include <optional>

#include "absl/status/statusor.h"
#include "os/cgroup/cgroup.h"
#include "os/syscalls.h"
#include "os/unique_fd.h"
#include "shim/init.h"
#include "shim/sync.h"
#include "shim/v1/shim.pb.h"

namespace berth::shim {

// What a child gets from the shim: /dev/null, stdout and stderr pipes, and its
// end of the sync socketpair; the shim keeps the read ends and the other end.
struct ChildEnds {
  UniqueFd devnull, out_r, out_w, err_r, err_w, parent, child;
};

// Makes the ends and points plan.stdio at them.
absl::StatusOr<ChildEnds> MakeChildEnds(InitPlan& plan);

// clone(flags) running `body` in the child. A PID namespace to join applies to
// children only (pid_namespaces(7)): the shim enters it for the clone and goes
// back to its own. Closes the child's ends in the parent.
absl::StatusOr<pid_t> CloneChild(int flags, const UniqueFd& pidns, const InitPlan& plan,
                                 ChildEnds& ends, void (*body)(const InitPlan&, int, Syscalls&));

// The parent's steps between clone and "go" that init and exec share. A
// setting the kernel refuses is named, with the capability it needs.
absl::Status PrepareChild(pid_t pid, std::optional<Cgroup>& cgroup, const v1::Process& process);

absl::Status SendSync(int fd, SyncKind kind);

// How long a child being set up (an init before its start, an exec) may take
// to report: it is visible in the container's PID namespace from clone on,
// and a hostile container can SIGSTOP it. Past this the shim stops waiting
// (its loop serves nothing meanwhile) and the caller kills the child.
inline constexpr int kChildReplyTimeoutMs = 10000;

// One sync message from the child, waiting at most `timeout_ms`: the bytes
// read (0 at EOF), or -1 with errno (ETIMEDOUT when it did not come in time).
ssize_t RecvSync(int fd, SyncMsg* msg, int timeout_ms = kChildReplyTimeoutMs);

// Waits for `want` (kReady, or kStart: EOF because exec closed the socket);
// DEADLINE_EXCEEDED after kChildReplyTimeoutMs.
absl::Status ReadChildReply(int fd, pid_t pid, const InitPlan& plan, SyncKind want);

void KillAndReap(pid_t pid);

}  // namespace berth::shim
