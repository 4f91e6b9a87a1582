// The parent (shim) <-> child (container init) protocol over one SOCK_SEQPACKET
// socketpair. Each message is one fixed-size SyncMsg, so a read is a whole message.
//
//   shim (parent)                                    container init (child)
//   ─────────────                                    ──────────────────────
//   clone(CLONE_NEW* | SIGCHLD) ───────────────────► blocks in read(sync)
//   write setgroups "deny", uid_map, gid_map
//   cgroup AddProcess(child), prlimit, oom_score_adj
//   kGo ───────────────────────────────────────────► setns(paths), unshare(cgroup ns),
//                                                     mounts, pivot_root, hostname,
//                                                     sysctls, masked/readonly paths,
//                                                     setsid, user, caps, NNP, seccomp
//                          ◄──────────────────────── kReady   (or kFailed {stage, errno}; _exit)
//   (create answered; later a "start" request)
//   kStart ────────────────────────────────────────► execve(args) for each PATH candidate
//                          ◄──────────────────────── EOF: exec worked (the fd was O_CLOEXEC)
//                          ◄──────────────────────── or kFailed {kExec, errno, candidate};
//                          _exit(127)
//
// The child never allocates and never returns: every path, argv and env was
// prepared by the parent before clone() (STYLE.md 10). An exec'd process
// (ExecRequest) uses the same protocol with the namespaces joined by setns.
#pragma once

#include <cstdint>

namespace berth::shim {

enum class SyncKind : uint32_t { kGo = 1, kReady = 2, kFailed = 3, kStart = 4 };

// Where the child was when it failed; each has a name for the error message.
enum class Stage : uint32_t {
  kNone = 0,
  kWaitGo,
  kSetns,
  kUnshareCgroup,
  kMountPropagation,
  kBindRoot,
  kMount,
  kDevices,
  kPivotRoot,
  kSysctl,
  kMaskedPath,
  kReadonlyPath,
  kReadonlyRoot,
  kHostname,
  kSetsid,
  kStdio,
  kNoNewPrivs,
  kSeccomp,
  kCapBounding,
  kKeepCaps,
  kSetGroups,
  kSetGid,
  kSetUid,
  kCapSet,
  kCapAmbient,
  kChdir,
  kWaitStart,
  kExec,
  kTerminal,
  kAppArmor,
  kWorkdir,
};

const char* StageName(Stage stage);

struct SyncMsg {
  SyncKind kind;
  Stage stage;
  int32_t err;    // errno
  int32_t index;  // which mount / path / exec candidate, or -1
};

}  // namespace berth::shim
