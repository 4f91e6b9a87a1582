// ReadCgroupStats on a real cgroup of this machine, as root: a child forked
// here, moved into /berth-test-<random>/c, touches 16 MiB and burns some CPU;
// the reader must see it. Skipped unless root.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/cgroup_reader.h"
#include "metrics/proc_reader.h"
#include "os/cgroup/cgroup.h"
#include "tests/support/status_matchers.h"

namespace berth::metrics {
namespace {

using ::berth::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr size_t kTouched = 16 << 20;

// Waits for a byte on `go`, touches kTouched bytes, spins ~50 ms of CPU, reports
// on `done`, then sleeps until killed. Only syscalls after fork.
[[noreturn]] void ChildBody(int go, int done) {
  char c;
  if (::read(go, &c, 1) != 1) _exit(100);
  void* p = ::mmap(nullptr, kTouched, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(101);
  std::memset(p, 1, kTouched);
  struct timespec start, now;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  do {
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 50000000L);
  if (::write(done, "d", 1) != 1) _exit(102);
  for (;;) ::pause();
}

TEST(ReadCgroupStatsRootTest, SeesAChildsMemoryAndCpu) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto layout = CgroupLayout::Detect();
  ASSERT_THAT(layout, IsOk());
  const std::string parent = "/berth-test-" + std::to_string(std::random_device()());
  auto cg = Cgroup::Create(*layout, parent + "/c");
  ASSERT_THAT(cg, IsOk());
  auto parent_cg = Cgroup::Open(*layout, parent);
  ASSERT_THAT(parent_cg, IsOk());

  int go[2], done[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(done, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ChildBody(go[0], done[1]);
  ::close(go[0]);
  ::close(done[1]);
  EXPECT_THAT(cg->AddProcess(pid), IsOk());
  EXPECT_EQ(::write(go[1], "g", 1), 1);
  char c;
  EXPECT_EQ(::read(done[0], &c, 1), 1);

  auto s = ReadCgroupStats(*layout, parent + "/c");
  auto procs = ReadCgroupProcs(*layout, parent + "/c");
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(go[1]);
  ::close(done[0]);
  EXPECT_THAT(cg->Destroy(), IsOk());
  EXPECT_THAT(parent_cg->Destroy(), IsOk());

  ASSERT_THAT(s, IsOk());
  EXPECT_THAT(s->errors, IsEmpty());
  ASSERT_TRUE(s->memory.usage.has_value());
  EXPECT_GE(*s->memory.usage, kTouched);
  ASSERT_TRUE(s->memory.working_set.has_value());
  EXPECT_GT(*s->memory.working_set, 0u);
  ASSERT_TRUE(s->cpu.usage_ns.has_value());
  EXPECT_GE(*s->cpu.usage_ns, 40000000u);
  EXPECT_EQ(s->pids.current, 1u);
  EXPECT_EQ(s->memory.limit, kUnlimited);
  ASSERT_THAT(procs, IsOk());
  EXPECT_THAT(*procs, ElementsAre(pid));
}

}  // namespace
}  // namespace berth::metrics
