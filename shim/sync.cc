#include "shim/sync.h"

namespace berth::shim {

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kNone:
      return "none";
    case Stage::kWaitGo:
      return "wait for the shim";
    case Stage::kSetns:
      return "setns";
    case Stage::kUnshareCgroup:
      return "unshare cgroup namespace";
    case Stage::kMountPropagation:
      return "make / rslave";
    case Stage::kBindRoot:
      return "bind-mount the root";
    case Stage::kMount:
      return "mount";
    case Stage::kDevices:
      return "devices";
    case Stage::kPivotRoot:
      return "pivot_root";
    case Stage::kSysctl:
      return "sysctl";
    case Stage::kMaskedPath:
      return "masked path";
    case Stage::kReadonlyPath:
      return "read-only path";
    case Stage::kReadonlyRoot:
      return "read-only root";
    case Stage::kHostname:
      return "sethostname";
    case Stage::kSetsid:
      return "setsid";
    case Stage::kStdio:
      return "stdio";
    case Stage::kNoNewPrivs:
      return "no_new_privs";
    case Stage::kSeccomp:
      return "seccomp";
    case Stage::kCapBounding:
      return "drop bounding capability";
    case Stage::kKeepCaps:
      return "PR_SET_KEEPCAPS";
    case Stage::kSetGroups:
      return "setgroups";
    case Stage::kSetGid:
      return "setresgid";
    case Stage::kSetUid:
      return "setresuid";
    case Stage::kCapSet:
      return "capset";
    case Stage::kCapAmbient:
      return "raise ambient capability";
    case Stage::kChdir:
      return "chdir";
    case Stage::kWaitStart:
      return "wait for start";
    case Stage::kExec:
      return "exec";
    case Stage::kTerminal:
      return "make stdin the controlling terminal";
    case Stage::kAppArmor:
      return "set the AppArmor exec profile";
    case Stage::kWorkdir:
      return "make the working directory";
  }
  return "unknown stage";
}

}  // namespace berth::shim
