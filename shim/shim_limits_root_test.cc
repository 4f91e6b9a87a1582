// berth-shim limits and security settings on real containers, as root: cgroup
// limits (memory + OOM, pids, cpuset), freezer, live updates, rlimits,
// oom_score_adj, credentials and capabilities, seccomp and no_new_privs.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "os/files.h"
#include "os/seccomp/seccomp.h"
#include "shim/exit_file.h"
#include "shim/testing/shim_fixture.h"
#include "tests/support/status_matchers.h"

namespace berth::shim::testing {
namespace {

using ::berth::testing::IsOk;
using ::testing::AnyOf;
using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? std::string(absl::StripAsciiWhitespace(*s)) : "<unreadable " + path + ">";
}

TEST_F(ShimTest, MemoryLimitIsEnforcedAndTheOomKillReported) {
  v1::ContainerSpec spec = Spec({"/bin/probe", "alloc", "256"}, true);
  spec.mutable_resources()->set_memory_limit(16 << 20);
  spec.mutable_resources()->set_memory_swap(16 << 20);
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(Read(CgroupDir("memory", "c0") + "/memory.limit_in_bytes"), "16777216");
  v1::ExitStatus exit = RunToExit(*shim);
  EXPECT_EQ(exit.signal(), SIGKILL);
  EXPECT_EQ(exit.exit_code(), 137);
  EXPECT_TRUE(exit.oom_killed());
  EXPECT_THAT(LogText(*shim), Not(HasSubstr("done")));
  absl::StatusOr<v1::ExitStatus> file = ReadExitFile(shim->bundle + "/exit");
  ASSERT_THAT(file, IsOk());
  EXPECT_TRUE(file->oom_killed());
}

TEST_F(ShimTest, PidsLimitStopsAForkBomb) {
  v1::ContainerSpec spec = Spec({"/bin/probe", "forkbomb", "100"}, true);
  spec.mutable_resources()->set_pids_max(8);
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  ProbeOutput out = ParseProbe(LogText(*shim));
  EXPECT_EQ(One(out, "fork_errno"), "EAGAIN");
  int forked = 0;
  ASSERT_TRUE(absl::SimpleAtoi(One(out, "forked"), &forked));
  EXPECT_LT(forked, 8);
}

TEST_F(ShimTest, CpusetPinsTheContainer) {
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "needs two cpus";
  v1::ContainerSpec spec = Spec({"/bin/probe", "cpus"}, true);
  spec.mutable_resources()->set_cpuset_cpus("1");
  spec.mutable_resources()->set_cpu_shares(512);
  spec.mutable_resources()->set_cpu_quota_us(50000);
  spec.mutable_resources()->set_cpu_period_us(100000);
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(Read(CgroupDir("cpu", "c0") + "/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Read(CgroupDir("cpu", "c0") + "/cpu.shares"), "512");
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  EXPECT_EQ(One(ParseProbe(LogText(*shim)), "affinity"), "1");
}

TEST_F(ShimTest, PauseResumeAndUpdateARunningContainer) {
  absl::StatusOr<LaunchedShim> shim = Launch(Spec({"/bin/probe", "sleep", "60"}, true));
  ASSERT_THAT(shim, IsOk());
  ASSERT_THAT(Call(*shim, StartRequest()), IsOk());
  v1::Request pause;
  pause.mutable_pause();
  ASSERT_THAT(Call(*shim, pause), IsOk());
  EXPECT_EQ(Read(CgroupDir("freezer", "c0") + "/freezer.state"), "FROZEN");
  absl::StatusOr<v1::Response> st = Call(*shim, StateRequest());
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->state().state(), v1::PAUSED);
  v1::Request resume;
  resume.mutable_resume();
  ASSERT_THAT(Call(*shim, resume), IsOk());
  EXPECT_EQ(Read(CgroupDir("freezer", "c0") + "/freezer.state"), "THAWED");

  v1::Request update;
  update.mutable_update()->mutable_resources()->set_memory_limit(32 << 20);
  update.mutable_update()->mutable_resources()->set_pids_max(42);
  ASSERT_THAT(Call(*shim, update), IsOk());
  EXPECT_EQ(Read(CgroupDir("memory", "c0") + "/memory.limit_in_bytes"), "33554432");
  EXPECT_EQ(Read(CgroupDir("pids", "c0") + "/pids.max"), "42");

  // kill --all reaches every process of the cgroup.
  ASSERT_THAT(Call(*shim, KillRequest(SIGKILL, true)), IsOk());
  absl::StatusOr<v1::Response> w = Call(*shim, WaitRequest());
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->exit().signal(), SIGKILL);
}

TEST_F(ShimTest, RlimitsAndOomScoreAdjAreSetOrRefusedByName) {
  v1::ContainerSpec spec = Spec({"/bin/probe", "report"});
  v1::Rlimit* r = spec.mutable_process()->add_rlimits();
  r->set_type("RLIMIT_NOFILE");
  r->set_soft(512);
  r->set_hard(1024);
  spec.mutable_process()->set_oom_score_adj(500);
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  ProbeOutput out = ParseProbe(LogText(*shim));
  EXPECT_EQ(One(out, "rlimit.nofile"), "512:1024");
  EXPECT_EQ(One(out, "oom_score_adj"), "500");

  // Raising a hard limit or lowering oom_score_adj needs CAP_SYS_RESOURCE,
  // which root here lacks: refused, naming the setting (or done, where allowed).
  struct rlimit mine;
  getrlimit(RLIMIT_NOFILE, &mine);
  v1::ContainerSpec raise = Spec({"/bin/probe", "report"});
  v1::Rlimit* big = raise.mutable_process()->add_rlimits();
  big->set_type("RLIMIT_NOFILE");
  big->set_soft(mine.rlim_max + 1);
  big->set_hard(mine.rlim_max + 1);
  absl::StatusOr<LaunchedShim> raised = Launch(raise);
  if (!raised.ok()) {
    EXPECT_THAT(raised.status().message(), AllOf(HasSubstr("process.rlimits[0] RLIMIT_NOFILE"),
                                                 HasSubstr("CAP_SYS_RESOURCE")));
  } else {
    EXPECT_EQ(RunToExit(*raised).exit_code(), 0);
    EXPECT_EQ(One(ParseProbe(LogText(*raised)), "rlimit.nofile"),
              absl::StrCat(mine.rlim_max + 1, ":", mine.rlim_max + 1));
  }
  v1::ContainerSpec lower = Spec({"/bin/probe", "report"});
  lower.mutable_process()->set_oom_score_adj(-500);
  absl::StatusOr<LaunchedShim> lowered = Launch(lower);
  if (!lowered.ok()) {
    EXPECT_THAT(lowered.status().message(),
                AllOf(HasSubstr("process.oom_score_adj -500"), HasSubstr("CAP_SYS_RESOURCE")));
  } else {
    EXPECT_EQ(RunToExit(*lowered).exit_code(), 0);
    EXPECT_EQ(One(ParseProbe(LogText(*lowered)), "oom_score_adj"), "-500");
  }
}

TEST_F(ShimTest, UserGroupsAndAmbientCapabilities) {
  v1::ContainerSpec spec = Spec({"/bin/probe", "report"});
  v1::Process* p = spec.mutable_process();
  p->mutable_user()->set_uid(1000);
  p->mutable_user()->set_gid(1001);
  p->mutable_user()->add_additional_gids(10);
  p->mutable_user()->add_additional_gids(20);
  v1::Capabilities* caps = p->mutable_capabilities();
  caps->Clear();
  for (auto* set : {caps->mutable_bounding(), caps->mutable_effective(), caps->mutable_permitted(),
                    caps->mutable_inheritable(), caps->mutable_ambient()}) {
    set->Add("CAP_NET_BIND_SERVICE");
  }
  p->set_no_new_privileges(true);
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  ProbeOutput out = ParseProbe(LogText(*shim));
  EXPECT_EQ(One(out, "uid"), "1000");
  EXPECT_EQ(One(out, "gid"), "1001");
  EXPECT_EQ(One(out, "groups"), "10,20");
  EXPECT_EQ(One(out, "cap.amb"), "0000000000000400");
  EXPECT_EQ(One(out, "cap.eff"), "0000000000000400");
  EXPECT_EQ(One(out, "cap.bnd"), "0000000000000400");
  EXPECT_EQ(One(out, "no_new_privs"), "1");
}

TEST_F(ShimTest, SeccompProfilesApply) {
  // Docker's default profile: loaded (mode 2) and the container still runs.
  absl::StatusOr<seccomp::Profile> profile = seccomp::DefaultProfile();
  ASSERT_THAT(profile, IsOk());
  absl::StatusOr<std::string> bpf = seccomp::CompileToBpf(*profile, seccomp::CompileOptions());
  ASSERT_THAT(bpf, IsOk());
  v1::ContainerSpec spec = Spec({"/bin/probe", "report"});
  spec.mutable_process()->set_seccomp_bpf(*bpf);
  absl::StatusOr<LaunchedShim> shim = Launch(spec);
  ASSERT_THAT(shim, IsOk());
  EXPECT_EQ(RunToExit(*shim).exit_code(), 0);
  EXPECT_EQ(One(ParseProbe(LogText(*shim)), "seccomp"), "2");

  // A profile of our own, without no_new_privs (loaded before caps drop).
  absl::StatusOr<seccomp::Profile> own = seccomp::ParseProfile(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
  })");
  ASSERT_THAT(own, IsOk());
  bpf = seccomp::CompileToBpf(*own, seccomp::CompileOptions());
  ASSERT_THAT(bpf, IsOk());
  v1::ContainerSpec mk = Spec({"sh", "-c", "mkdir /tmp/x || exit 9"});
  mk.mutable_process()->set_seccomp_bpf(*bpf);
  absl::StatusOr<LaunchedShim> denied = Launch(mk);
  ASSERT_THAT(denied, IsOk());
  EXPECT_EQ(RunToExit(*denied).exit_code(), 9);
  EXPECT_THAT(LogText(*denied), HasSubstr("Operation not permitted"));
}

}  // namespace
}  // namespace berth::shim::testing
