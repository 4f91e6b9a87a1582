#include "shim/pin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "os/files.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::shim {
namespace {

struct PinnedNs {
  bool PinOptions::*wanted;
  int flag;
  const char* name;  // under /proc/self/ns/ and DIR/
};
constexpr PinnedNs kPinned[] = {
    {&PinOptions::net, CLONE_NEWNET, "net"},
    {&PinOptions::ipc, CLONE_NEWIPC, "ipc"},
    {&PinOptions::uts, CLONE_NEWUTS, "uts"},
};

// sysctl(8)'s two spellings swap '.' and '/': "net.ipv4.conf.eth0/100.rp_filter" is
// /proc/sys/net/ipv4/conf/eth0.100/rp_filter (a VLAN interface's name has a dot).
std::string SwapDotsAndSlashes(absl::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (c == '.') {
      c = '/';
    } else if (c == '/') {
      c = '.';
    }
  }
  return out;
}

absl::Status CheckSysctlSyntax(absl::string_view key) {
  auto bad = [key](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("sysctl `", key, "`: ", why));
  };
  if (key.empty()) return bad("empty name");
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-' &&
        c != '/') {
      return bad("characters other than [A-Za-z0-9_.-/] in the name");
    }
  }
  if (absl::StrContains(key, "..")) return bad("\"..\" in the name");
  // Both spellings must split into non-empty components: the dotted one is what
  // the policy reads, the slashed one is the path under /proc/sys.
  const std::string dotted = NormalizeSysctlKey(key);
  for (absl::string_view part : absl::StrSplit(dotted, '.')) {
    if (part.empty()) return bad("empty component in the name");
  }
  for (absl::string_view part : absl::StrSplit(SwapDotsAndSlashes(dotted), '/')) {
    if (part.empty() || part == "." || part == "..") return bad("empty component in the name");
  }
  return absl::OkStatus();
}

absl::Status BringLoopbackUp() {
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return ErrnoStatus(errno, "socket", "AF_INET");
  struct ifreq ifr = {};
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0)
    return ErrnoStatus(errno, "ioctl SIOCGIFFLAGS", "lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0)
    return ErrnoStatus(errno, "ioctl SIOCSIFFLAGS", "lo");
  return absl::OkStatus();
}

absl::Status WriteSysctl(const std::string& key, const std::string& value) {
  const std::string path = "/proc/sys/" + SwapDotsAndSlashes(NormalizeSysctlKey(key));
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd && errno == ENOENT) {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl `", key, "`: not known to this kernel (no `", path, "`)"));
  }
  if (!fd) return Annotate(ErrnoStatus(errno, "open", path), absl::StrCat("sysctl `", key, "`"));
  ssize_t n = write(fd.get(), value.data(), value.size());
  if (n < 0) {
    return Annotate(ErrnoStatus(errno, "write", path),
                    absl::StrCat("sysctl `", key, "` = `", value, "`"));
  }
  if (static_cast<size_t>(n) != value.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl `", key, "` = `", value, "`: short write to `", path, "`"));
  }
  return absl::OkStatus();
}

absl::Status CheckPinOptions(const PinOptions& o) {
  if (o.dir.empty() || o.dir[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("pin dir `", o.dir, "` is not absolute"));
  }
  if (!o.net && !o.ipc && !o.uts) {
    return absl::InvalidArgumentError("nothing to pin: none of --net, --ipc, --uts");
  }
  if (!o.hostname.empty() && !o.uts) {
    return absl::InvalidArgumentError("a hostname needs a new UTS namespace (--uts)");
  }
  if (o.hostname.size() > HOST_NAME_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("hostname `", o.hostname, "` is longer than ", HOST_NAME_MAX, " bytes"));
  }
  for (const auto& [key, value] : o.sysctls) {
    BERTH_RETURN_IF_ERROR(CheckSandboxSysctl(key, o.net, o.ipc));
  }
  return absl::OkStatus();
}

// Step 5: DIR/<x> for each namespace, each a bind mount of /proc/self/ns/<x>.
// On failure, what was made is unmounted and removed (DIR too, if it was ours).
absl::Status PinEach(const PinOptions& o) {
  struct stat st;
  const bool dir_existed = stat(o.dir.c_str(), &st) == 0;
  BERTH_RETURN_IF_ERROR(MakeDirs(o.dir, 0700));
  std::vector<std::pair<std::string, bool>> made;  // (path, mounted)
  absl::Cleanup undo = [&] {
    for (auto it = made.rbegin(); it != made.rend(); ++it) {
      if (it->second) umount2(it->first.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
      unlink(it->first.c_str());
    }
    if (!dir_existed) rmdir(o.dir.c_str());
  };
  for (const PinnedNs& ns : kPinned) {
    if (!(o.*ns.wanted)) continue;
    const std::string target = absl::StrCat(o.dir, "/", ns.name);
    // O_EXCL: never mount over a file we did not make (an older pin, say).
    UniqueFd fd(open(target.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
    if (!fd) return ErrnoStatus(errno, "create", target);
    made.emplace_back(target, false);
    if (fchmod(fd.get(), 0444) != 0) return ErrnoStatus(errno, "fchmod", target);
    fd.reset();
    const std::string source = absl::StrCat("/proc/self/ns/", ns.name);
    if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return Annotate(ErrnoStatus(errno, "mount", target), absl::StrCat("bind ", source));
    }
    made.back().second = true;
  }
  std::move(undo).Cancel();
  return absl::OkStatus();
}

}  // namespace

std::string NormalizeSysctlKey(absl::string_view key) {
  const size_t sep = key.find_first_of("./");
  if (sep != absl::string_view::npos && key[sep] == '/') return SwapDotsAndSlashes(key);
  return std::string(key);
}

absl::Status CheckSandboxSysctl(absl::string_view key, bool own_net, bool own_ipc) {
  BERTH_RETURN_IF_ERROR(CheckSysctlSyntax(key));
  const std::string k = NormalizeSysctlKey(key);
  if (k == "kernel.hostname" || k == "kernel.domainname") {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl `", key, "` is the UTS namespace's: set the pod's hostname instead"));
  }
  // Kubernetes pkg/kubelet/sysctl/namespace.go: namespaces and prefixNamespaces.
  const bool ipc = k == "kernel.sem" || absl::StartsWith(k, "kernel.shm") ||
                   absl::StartsWith(k, "kernel.msg") || absl::StartsWith(k, "fs.mqueue.");
  const bool net = absl::StartsWith(k, "net.");
  if (!ipc && !net) {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl `", key, "` is not namespaced: refusing to set it for a pod"));
  }
  if ((ipc && !own_ipc) || (net && !own_net)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl `", key, "` belongs to the ", ipc ? "IPC" : "network",
                     " namespace, which the pod shares with the host: refusing to set it"));
  }
  return absl::OkStatus();
}

std::vector<std::string> PinArgs(const PinOptions& o) {
  std::vector<std::string> args = {"--pin-namespaces", o.dir};
  if (o.net) args.push_back("--net");
  if (o.ipc) args.push_back("--ipc");
  if (o.uts) args.push_back("--uts");
  if (!o.hostname.empty()) {
    args.push_back("--hostname");
    args.push_back(o.hostname);
  }
  for (const auto& [key, value] : o.sysctls) {
    args.push_back("--sysctl");
    args.push_back(absl::StrCat(key, "=", value));
  }
  return args;
}

absl::StatusOr<PinOptions> ParsePinArgs(int argc, const char* const* argv) {
  if (argc < 3 || absl::string_view(argv[1]) != "--pin-namespaces") {
    return absl::InvalidArgumentError(
        "usage: berth-shim --pin-namespaces DIR [--net] [--ipc] "
        "[--uts] [--hostname NAME] [--sysctl KEY=VALUE]...");
  }
  PinOptions o;
  o.dir = argv[2];
  for (int i = 3; i < argc; ++i) {
    const absl::string_view flag = argv[i];
    if (flag == "--net") {
      o.net = true;
    } else if (flag == "--ipc") {
      o.ipc = true;
    } else if (flag == "--uts") {
      o.uts = true;
    } else if ((flag == "--hostname" || flag == "--sysctl") && i + 1 < argc) {
      const absl::string_view value = argv[++i];
      if (flag == "--hostname") {
        o.hostname = std::string(value);
        continue;
      }
      const size_t eq = value.find('=');
      if (eq == absl::string_view::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--sysctl `", value, "`: expected KEY=VALUE"));
      }
      o.sysctls.emplace_back(std::string(value.substr(0, eq)), std::string(value.substr(eq + 1)));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown or incomplete flag `", flag, "`"));
    }
  }
  return o;
}

absl::Status RunPin(const PinOptions& o) {
  BERTH_RETURN_IF_ERROR(CheckPinOptions(o));
  int flags = 0;
  for (const PinnedNs& ns : kPinned) {
    if (o.*ns.wanted) flags |= ns.flag;
  }
  if (unshare(flags) != 0) return ErrnoStatus(errno, "unshare");
  if (o.uts && !o.hostname.empty() && sethostname(o.hostname.data(), o.hostname.size()) != 0) {
    return ErrnoStatus(errno, "sethostname", o.hostname);
  }
  if (o.net) BERTH_RETURN_IF_ERROR(BringLoopbackUp());
  for (const auto& [key, value] : o.sysctls) BERTH_RETURN_IF_ERROR(WriteSysctl(key, value));
  return PinEach(o);
}

void RunPause() {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);
  while (true) {
    // Children that ended before the mask was set, then one pass per SIGCHLD
    // (signals coalesce: one SIGCHLD may stand for many exits).
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    siginfo_t info;
    int sig;
    do {
      sig = sigwaitinfo(&all, &info);
    } while (sig != SIGCHLD && sig != SIGTERM && sig != SIGINT);
    if (sig != SIGCHLD) _exit(0);
  }
}

}  // namespace berth::shim
