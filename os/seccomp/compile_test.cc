// Compiled programs loaded for real: a forked child sets no_new_privs, loads the
// bytes as the shim would (prctl(PR_SET_SECCOMP)), makes syscalls and exits with
// the number of the first check that failed. Needs no privilege.
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/seccomp/seccomp.h"
#include "tests/support/status_matchers.h"

namespace berth::seccomp {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

// Docker's default capability set (moby oci/caps/defaults.go).
const std::vector<std::string> kDockerCaps = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};

std::string Compile(absl::string_view json, std::vector<std::string> caps = {}) {
  absl::StatusOr<Profile> profile = ParseProfile(json);
  EXPECT_THAT(profile, IsOk());
  if (!profile.ok()) return "";
  absl::StatusOr<std::string> bpf = CompileToBpf(*profile, CompileOptions{std::move(caps)});
  EXPECT_THAT(bpf, IsOk());
  return bpf.ok() ? *bpf : "";
}

// Runs `body` in a forked child under `bpf` (none if empty). Returns the exit
// code, 200 + errno if loading failed, or -signal if the child was killed.
int RunUnder(const std::string& bpf, int (*body)()) {
  std::vector<sock_filter> insns(bpf.size() / sizeof(sock_filter));
  std::memcpy(insns.data(), bpf.data(), insns.size() * sizeof(sock_filter));
  sock_fprog prog{static_cast<unsigned short>(insns.size()), insns.data()};
  pid_t pid = fork();
  if (pid == 0) {
    if (!insns.empty()) {
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(200 + errno);
      if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) _exit(200 + errno);
    }
    _exit(body());
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return 255;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Syscall `r` failed with `err`.
bool Failed(long r, int err) { return r == -1 && errno == err; }

TEST(CompileToBpfTest, ProgramIsWholeInstructions) {
  std::string bpf = Compile(R"({"defaultAction": "SCMP_ACT_ALLOW"})");
  EXPECT_FALSE(bpf.empty());
  EXPECT_EQ(bpf.size() % sizeof(sock_filter), 0u);
}

TEST(CompileToBpfTest, DefaultProfileCompiles) {
  absl::StatusOr<Profile> profile = DefaultProfile();
  ASSERT_THAT(profile, IsOk());
  for (const auto& caps : {std::vector<std::string>{}, kDockerCaps}) {
    absl::StatusOr<std::string> bpf = CompileToBpf(*profile, CompileOptions{caps});
    ASSERT_THAT(bpf, IsOk());
    EXPECT_GT(bpf->size(), 100 * sizeof(sock_filter));
    EXPECT_EQ(bpf->size() % sizeof(sock_filter), 0u);
    EXPECT_LE(bpf->size() / sizeof(sock_filter), size_t{BPF_MAXINSNS});
    RecordProperty(caps.empty() ? "instructions_no_caps" : "instructions_docker_caps",
                   static_cast<int>(bpf->size() / sizeof(sock_filter)));
  }
}

TEST(CompileToBpfTest, UnknownSyscallNamesAreSkipped) {
  std::string bpf = Compile(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["no_such_syscall", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})");
  EXPECT_EQ(
      RunUnder(bpf, [] { return Failed(syscall(SYS_mkdirat, AT_FDCWD, "/", 0), ENOSYS) ? 0 : 1; }),
      0);
}

TEST(CompileToBpfTest, RuleLikeTheDefaultIsDropped) {
  // libseccomp refuses such a rule (EACCES); runc drops it, and so do we.
  Compile(R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
      {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
      {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]})");
}

TEST(CompileToBpfTest, ErrorsNameTheRule) {
  Profile profile;
  profile.default_action = Action::kAllow;
  profile.syscalls.resize(2);
  profile.syscalls[1].names = {"getcwd"};
  profile.syscalls[1].action = Action::kErrno;
  profile.syscalls[1].args = {ArgRule{7, ArgOp::kEqual, 0, 0}};  // only a parser would refuse it
  EXPECT_THAT(CompileToBpf(profile, {}), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  HasSubstr("syscalls[1]: argument index 7")));
}

TEST(LoadedFilterTest, FirstOfConflictingRulesWins) {
  // libseccomp keeps the first action given for the same syscall and arguments.
  std::string bpf = Compile(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 130},
      {"names": ["getcwd"], "action": "SCMP_ACT_KILL"}]})");
  EXPECT_EQ(RunUnder(bpf,
                     [] {
                       char buf[256];
                       return Failed(syscall(SYS_getcwd, buf, sizeof(buf)), EOWNERDEAD) ? 0 : 1;
                     }),
            0);
}

// Natural results, without a filter, for the checks below.
int NaturalBody() {
  if (syscall(SYS_unshare, 0) != 0) return 1;
  if (!Failed(syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent-berth/x", 0700), ENOENT)) return 2;
  if (!Failed(syscall(SYS_clone3, nullptr, 0), EINVAL)) return 3;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fcntl(fd, F_GETFL) < 0 || fcntl(fd, F_GETPIPE_SZ) != -1 || errno != EBADF) return 4;
  if (syscall(SYS_unshare, CLONE_FILES | CLONE_SYSVSEM) != 0) return 5;
  return 0;
}

TEST(LoadedFilterTest, ControlWithoutFilter) { EXPECT_EQ(RunUnder("", NaturalBody), 0); }

TEST(LoadedFilterTest, ErrnoRuleFailsOnlyItsSyscall) {
  std::string bpf = Compile(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})");
  EXPECT_EQ(RunUnder(bpf,
                     [] {
                       if (!Failed(syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent-berth/x", 0700),
                                   ENOSYS)) {
                         return 1;
                       }
                       if (syscall(SYS_getpid) != getpid()) return 2;
                       if (syscall(SYS_unshare, 0) != 0) return 3;
                       return 0;
                     }),
            0);
}

TEST(LoadedFilterTest, ArgumentComparisons) {
  // Two comparisons on one argument are ORed (runc); MASKED_EQ is (arg & value) == valueTwo.
  std::string bpf = Compile(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 130,
       "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 1032, "op": "SCMP_CMP_EQ"}]},
      {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 130,
       "args": [{"index": 0, "value": 262144, "valueTwo": 262144, "op": "SCMP_CMP_MASKED_EQ"}]}]})");
  EXPECT_EQ(RunUnder(bpf,
                     [] {
                       int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                       if (!Failed(fcntl(fd, F_GETFL), EOWNERDEAD)) return 1;  // F_GETFL is 3
                       if (!Failed(fcntl(fd, F_GETPIPE_SZ), EOWNERDEAD)) return 2;
                       if (fcntl(fd, F_GETFD) != FD_CLOEXEC) return 3;
                       if (!Failed(syscall(SYS_unshare, CLONE_FILES | CLONE_SYSVSEM), EOWNERDEAD)) {
                         return 4;
                       }
                       if (syscall(SYS_unshare, CLONE_FILES) != 0) return 5;
                       return 0;
                     }),
            0);
}

TEST(LoadedFilterTest, KillProcess) {
  std::string bpf = Compile(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]})");
  EXPECT_EQ(RunUnder(bpf, [] { return static_cast<int>(syscall(SYS_getppid) > 0 ? 1 : 2); }),
            -SIGSYS);
}

int DefaultProfileBody() {
  if (syscall(SYS_getpid) != getpid()) return 1;
  if (!Failed(syscall(SYS_unshare, 0), EPERM)) return 2;              // needs CAP_SYS_ADMIN
  if (!Failed(syscall(SYS_keyctl, 0, -1, 0, 0, 0), EPERM)) return 3;  // never allowed
  if (!Failed(syscall(SYS_clone3, nullptr, 0), ENOSYS)) return 4;  // so glibc falls back to clone
  if (!Failed(socket(AF_VSOCK, SOCK_STREAM, 0), EPERM)) return 5;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return 6;
  close(fd);
  if (!Failed(syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent-berth/x", 0700), ENOENT)) return 7;
  return 0;
}

TEST(LoadedFilterTest, DefaultProfileBlocksWithoutSysAdmin) {
  absl::StatusOr<Profile> profile = DefaultProfile();
  ASSERT_THAT(profile, IsOk());
  absl::StatusOr<std::string> bpf = CompileToBpf(*profile, CompileOptions{kDockerCaps});
  ASSERT_THAT(bpf, IsOk());
  EXPECT_EQ(RunUnder(*bpf, DefaultProfileBody), 0);
}

TEST(LoadedFilterTest, DefaultProfileWithSysAdminAllowsUnshare) {
  absl::StatusOr<Profile> profile = DefaultProfile();
  ASSERT_THAT(profile, IsOk());
  std::vector<std::string> caps = kDockerCaps;
  caps.push_back("SYS_ADMIN");
  absl::StatusOr<std::string> bpf = CompileToBpf(*profile, CompileOptions{caps});
  ASSERT_THAT(bpf, IsOk());
  EXPECT_EQ(RunUnder(*bpf,
                     [] {
                       if (syscall(SYS_unshare, 0) != 0) return 1;
                       if (!Failed(syscall(SYS_clone3, nullptr, 0), EINVAL)) return 2;
                       return 0;
                     }),
            0);
}

#if defined(__x86_64__)
// A 32-bit syscall from a 64-bit process (i386 numbers): what the x86 entry of
// Docker's archMap is for. Returns -errno like the kernel.
long Int80(long nr, long arg0) {
  long ret;
  asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(arg0) : "memory");
  return ret;
}
constexpr long kI386Getpid = 20, kI386Unshare = 310;

TEST(LoadedFilterTest, CompatArchesFollowTheProfile) {
  if (RunUnder("", [] { return Int80(kI386Getpid, 0) == getpid() ? 0 : 1; }) != 0) {
    GTEST_SKIP() << "no ia32 emulation in this kernel";
  }
  absl::StatusOr<Profile> profile = DefaultProfile();
  ASSERT_THAT(profile, IsOk());
  absl::StatusOr<std::string> bpf = CompileToBpf(*profile, CompileOptions{kDockerCaps});
  ASSERT_THAT(bpf, IsOk());
  EXPECT_EQ(RunUnder(*bpf,
                     [] {
                       if (Int80(kI386Getpid, 0) != getpid()) return 1;
                       if (Int80(kI386Unshare, 0) != -EPERM) return 2;
                       return 0;
                     }),
            0);
  // Without x86 in the filter a 32-bit syscall is a bad arch: the thread is killed.
  std::string native_only = Compile(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]})");
  EXPECT_EQ(RunUnder(native_only, [] { return Int80(kI386Getpid, 0) > 0 ? 0 : 1; }), -SIGSYS);
}
#endif

}  // namespace
}  // namespace berth::seccomp
