#include "agent/network/plugin_exec.h"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace berth::network {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string Script(const TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir.Join(name);
  WriteFileOrDie(path, "#!/bin/sh\n" + body);
  EXPECT_EQ(chmod(path.c_str(), 0755), 0);
  return path;
}

PluginCall Call(const std::string& path, absl::Duration timeout = absl::Seconds(20)) {
  return PluginCall{.path = path,
                    .env = {"CNI_COMMAND=ADD", "PATH=/usr/bin:/bin"},
                    .stdin_data = R"({"cniVersion":"1.0.0"})",
                    .timeout = timeout};
}

TEST(SpawnPluginExecTest, StdinStdoutStderrAndExactEnvironment) {
  TempDir dir;
  std::string path = Script(dir, "echo", "cat\necho to-stderr >&2\nenv > " + dir.Join("env"));
  SpawnPluginExec exec;
  absl::StatusOr<PluginOutput> out = exec.Run(Call(path));
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->wait_status, 0);
  EXPECT_EQ(out->out, R"({"cniVersion":"1.0.0"})");
  EXPECT_EQ(out->err, "to-stderr\n");
  absl::StatusOr<std::string> env = ReadFile(dir.Join("env"));
  ASSERT_THAT(env, IsOk());
  std::vector<std::string> vars = absl::StrSplit(absl::StripSuffix(*env, "\n"), '\n');
  // dash exports PWD itself; nothing of the test's environment leaks in.
  EXPECT_THAT(vars, UnorderedElementsAre("CNI_COMMAND=ADD", "PATH=/usr/bin:/bin",
                                         ::testing::StartsWith("PWD=")));
}

TEST(SpawnPluginExecTest, OnlyStdioIsOpenAndSignalsAreDefault) {
  TempDir dir;
  // ls opens the /proc/self/fd directory itself: fd 3.
  std::string path = Script(dir, "fds", "exec ls /proc/self/fd\n");
  signal(SIGPIPE, SIG_IGN);  // as berthd does; the plugin must not inherit it
  SpawnPluginExec exec;
  absl::StatusOr<PluginOutput> out = exec.Run(Call(path));
  ASSERT_THAT(out, IsOk());
  std::vector<std::string> fds = absl::StrSplit(absl::StripSuffix(out->out, "\n"), '\n');
  EXPECT_THAT(fds, ElementsAre("0", "1", "2", "3"));

  path = Script(dir, "sigs", "grep -E '^Sig(Blk|Ign)' /proc/self/status\n");
  out = exec.Run(Call(path));
  signal(SIGPIPE, SIG_DFL);
  ASSERT_THAT(out, IsOk());
  std::vector<std::string> lines = absl::StrSplit(absl::StripSuffix(out->out, "\n"), '\n');
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "SigBlk:\t0000000000000000");
  uint64_t ignored = 0;
  ASSERT_TRUE(absl::SimpleHexAtoi(absl::StripPrefix(lines[1], "SigIgn:\t"), &ignored));
  // No standard signal (1-31) is ignored. glibc's posix_spawn leaves its own
  // internal real-time signals (32, 33) ignored in every child it starts.
  EXPECT_EQ(ignored & 0x7fffffffu, 0u) << lines[1];
}

TEST(SpawnPluginExecTest, ExitStatusIsReported) {
  TempDir dir;
  std::string path = Script(dir, "fail", "echo oops >&2\nexit 3\n");
  SpawnPluginExec exec;
  absl::StatusOr<PluginOutput> out = exec.Run(Call(path));
  ASSERT_THAT(out, IsOk());
  EXPECT_TRUE(WIFEXITED(out->wait_status));
  EXPECT_EQ(WEXITSTATUS(out->wait_status), 3);
  EXPECT_THAT(PluginError("fail", "ADD", *out),
              StatusIs(absl::StatusCode::kInternal, "cni plugin `fail` ADD: exit status 3: oops"));
}

TEST(SpawnPluginExecTest, TimeoutKillsThePluginAndWhatItStarted) {
  TempDir dir;
  // The plugin starts a grandchild (as bridge starts host-local) and both hang.
  std::string path =
      Script(dir, "slow", "sleep 30 &\necho $! > " + dir.Join("child") + "\nsleep 30\n");
  SpawnPluginExec exec;
  absl::Time start = absl::Now();
  absl::StatusOr<PluginOutput> out = exec.Run(Call(path, absl::Seconds(1)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_THAT(out, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("timed out after")));
  absl::StatusOr<std::string> child = ReadFile(dir.Join("child"));
  ASSERT_THAT(child, IsOk());
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(*child), &pid));
  // The grandchild was reparented and killed; give init a moment to reap it.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = kill(pid, 0) != 0;
    if (!gone) {
      absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
      gone = !stat.ok() || absl::StrContains(*stat, ") Z ");  // a zombie is dead
    }
    if (!gone) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(gone) << "grandchild " << pid << " survived the timeout";
}

TEST(SpawnPluginExecTest, OutputIsBounded) {
  TempDir dir;
  std::string path =
      Script(dir, "big", "head -c 3000000 /dev/zero\nhead -c 200000 /dev/zero >&2\n");
  SpawnPluginExec exec;
  absl::StatusOr<PluginOutput> out = exec.Run(Call(path));
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->wait_status, 0);  // drained, so the plugin never blocked
  EXPECT_EQ(out->out.size(), SpawnPluginExec::kMaxStdout);
  EXPECT_EQ(out->err.size(), SpawnPluginExec::kMaxStderr);
}

TEST(SpawnPluginExecTest, WaitsForItsOwnChildOnly) {
  TempDir dir;
  pid_t other = -1;
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  ASSERT_EQ(posix_spawn(&other, "/bin/true", nullptr, nullptr, argv, environ), 0);
  absl::SleepFor(absl::Milliseconds(50));  // it has exited: a zombie waiting for us
  SpawnPluginExec exec;
  ASSERT_THAT(exec.Run(Call(Script(dir, "ok", "exit 0\n"))), IsOk());
  int status = -1;
  EXPECT_EQ(waitpid(other, &status, 0), other);  // still ours to reap
  EXPECT_EQ(status, 0);
}

TEST(SpawnPluginExecTest, LeavesNoDescriptorsBehind) {
  TempDir dir;
  absl::StatusOr<std::vector<std::string>> before = ListDir("/proc/self/fd");
  ASSERT_THAT(before, IsOk());
  SpawnPluginExec exec;
  ASSERT_THAT(exec.Run(Call(Script(dir, "ok", "echo hi\n"))), IsOk());
  ASSERT_THAT(exec.Run(Call(Script(dir, "hang", "sleep 30\n"), absl::Milliseconds(100))),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_THAT(exec.Run(Call(dir.Join("missing"))), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(ListDir("/proc/self/fd").value(), *before);
}

TEST(SpawnPluginExecTest, MissingBinaryFailsToSpawn) {
  SpawnPluginExec exec;
  EXPECT_THAT(
      exec.Run(Call("/nonexistent/plugin")),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("posix_spawn `/nonexistent/plugin`")));
}

TEST(PluginErrorTest, CniErrorObject) {
  PluginOutput out{
      .wait_status = 1 << 8,
      .out = R"({"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no ipam"})",
      .err = "noise"};
  EXPECT_THAT(
      PluginError("bridge", "ADD", out),
      StatusIs(absl::StatusCode::kInvalidArgument, "cni plugin `bridge` ADD: bad config; no ipam"));
  out.out = R"({"code":11,"msg":"busy"})";
  EXPECT_THAT(PluginError("bridge", "DEL", out),
              StatusIs(absl::StatusCode::kUnavailable, "cni plugin `bridge` DEL: busy"));
  out.out = R"({"code":"x","msg":"odd code"})";
  EXPECT_THAT(PluginError("p", "ADD", out), StatusIs(absl::StatusCode::kInternal));
  out.wait_status = 0;
  EXPECT_THAT(PluginError("p", "ADD", out), IsOk());
}

TEST(PluginErrorTest, NoJsonUsesStatusAndStderrOrStdout) {
  PluginOutput out{.wait_status = SIGKILL, .out = "", .err = ""};
  EXPECT_THAT(PluginError("p", "ADD", out),
              StatusIs(absl::StatusCode::kInternal, "cni plugin `p` ADD: killed by signal 9"));
  out = {.wait_status = 2 << 8, .out = "plain text\n", .err = ""};
  EXPECT_THAT(
      PluginError("p", "CHECK", out),
      StatusIs(absl::StatusCode::kInternal, "cni plugin `p` CHECK: exit status 2: plain text"));
}

TEST(FindPluginTest, FirstExecutableInOrder) {
  TempDir dir;
  ASSERT_THAT(MakeDirs(dir.Join("a"), 0755), IsOk());
  ASSERT_THAT(MakeDirs(dir.Join("b/dir"), 0755), IsOk());
  WriteFileOrDie(dir.Join("a/p"), "not executable");
  Script(dir, "b/p", "exit 0\n");
  std::vector<std::string> dirs = {dir.Join("missing"), dir.Join("a"), dir.Join("b")};
  absl::StatusOr<std::string> found = FindPlugin("p", dirs);
  ASSERT_THAT(found, IsOk());
  EXPECT_EQ(*found, dir.Join("b/p"));
  EXPECT_THAT(FindPlugin("dir", {dir.Join("b")}), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(FindPlugin("q", dirs),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("cni plugin `q` not found in [" + dir.Join("missing") + ", ")));
}

}  // namespace
}  // namespace berth::network
