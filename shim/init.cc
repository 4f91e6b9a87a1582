#include "shim/init.h"

#include <errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/close_range.h>

namespace berth::shim {
namespace {

void WaitGo(int sync_fd) {
  SyncMsg msg;
  ssize_t n = read(sync_fd, &msg, sizeof(msg));
  if (n != sizeof(msg) || msg.kind != SyncKind::kGo) {
    FailChild(sync_fd, Stage::kWaitGo, n < 0 ? errno : EPIPE);
  }
}

void JoinAndStdio(const InitPlan& plan, int sync_fd, Syscalls& sys) {
  for (size_t i = 0; i < plan.join.size(); ++i) {
    if (int err = sys.Setns(plan.join[i].first, plan.join[i].second)) {
      FailChild(sync_fd, Stage::kSetns, err, static_cast<int>(i));
    }
  }
  for (int fd = 0; fd < 3; ++fd) {
    if (plan.stdio[fd] >= 0 && dup2(plan.stdio[fd], fd) < 0) {
      FailChild(sync_fd, Stage::kStdio, errno, fd);
    }
  }
  // Everything else closes at execve: no fd of the shim reaches the container
  // (CVE-2024-21626 was such a leak). The sync fd is already O_CLOEXEC.
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
}

}  // namespace

void RunInit(const InitPlan& plan, int sync_fd, Syscalls& sys) {
  WaitGo(sync_fd);
  if (plan.new_userns) {
    // The maps are written: become the namespace's root, so files we create
    // have a mapped owner (caps are kept: setresuid to the ns root, credentials(7)).
    if (setresgid(0, 0, 0) != 0) FailChild(sync_fd, Stage::kSetGid, errno);
    if (setresuid(0, 0, 0) != 0) FailChild(sync_fd, Stage::kSetUid, errno);
    // Changing the uid cleared the dumpable flag, which makes /proc/self/* root's
    // (the host's) and so /proc/self/fd/<n>, our mount targets, unreachable.
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) FailChild(sync_fd, Stage::kSetUid, errno);
  }
  JoinAndStdio(plan, sync_fd, sys);
  if (plan.unshare_cgroup) {
    if (int err = sys.Unshare(CLONE_NEWCGROUP)) FailChild(sync_fd, Stage::kUnshareCgroup, err);
  }
  Stage stage = Stage::kNone;
  int index = -1;
  if (int err = RunRootfs(plan.rootfs, sys, &stage, &index)) {
    FailChild(sync_fd, stage, err, index);
  }
  RunProcess(*plan.process, sync_fd);
}

void RunJoined(const InitPlan& plan, int sync_fd, Syscalls& sys) {
  WaitGo(sync_fd);
  JoinAndStdio(plan, sync_fd, sys);
  RunProcess(*plan.process, sync_fd);
}

}  // namespace berth::shim
