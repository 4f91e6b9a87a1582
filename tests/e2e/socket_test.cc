// The unix socket berthd claims: a live one (another berthd, or any server) is
// refused with a clear message; a stale one left by a crash is replaced; a file
// that is not a socket is never deleted.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/cri/api.h"
#include "os/files.h"
#include "tests/support/berthd_process.h"
#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::BerthdProcess;
using ::berth::testing::BindUnixSocket;
using ::berth::testing::IsOk;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::HasSubstr;

bool VersionOk(BerthdProcess& berthd) {
  auto stub = runtime::v1::RuntimeService::NewStub(berthd.Channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  runtime::v1::VersionResponse response;
  return stub->Version(&ctx, runtime::v1::VersionRequest(), &response).ok();
}

TEST(SocketTest, SecondBerthdOnALiveSocketRefusesToStart) {
  TempDir dir;
  BerthdProcess first(dir, "first");
  ASSERT_THAT(first.Start(), IsOk());

  // Same socket, its own root: the socket alone must stop it.
  TempDir other;
  BerthdProcess second(dir, "second");
  absl::StatusOr<int> code = second.RunToExit({"--root=" + other.Join("root")});
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(second.Log(), HasSubstr("another berthd serves `" + first.socket_path() + "`"));
  EXPECT_THAT(second.Log(), HasSubstr("locked by pid " + std::to_string(first.pid())));
  // The first one is untouched and still serving.
  EXPECT_TRUE(VersionOk(first));
}

TEST(SocketTest, SecondBerthdOnTheSameRootRefusesToStart) {
  TempDir dir;
  BerthdProcess first(dir, "first");
  ASSERT_THAT(first.Start(), IsOk());
  TempDir other;
  BerthdProcess second(dir, "second");
  absl::StatusOr<int> code = second.RunToExit({"--socket=" + other.Join("b.sock")});
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(second.Log(), HasSubstr("berthd.lock` is locked by pid"));
  EXPECT_TRUE(VersionOk(first));
}

TEST(SocketTest, ALiveSocketOfAnotherServerIsRefused) {
  TempDir dir;
  BerthdProcess berthd(dir);
  ASSERT_THAT(MakeDirs(berthd.state_dir(), 0700), IsOk());
  UniqueFd other = BindUnixSocket(berthd.socket_path(), /*listen=*/true);
  absl::StatusOr<int> code = berthd.RunToExit({});
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(berthd.Log(), HasSubstr("is in use: another server accepts connections on it"));
  EXPECT_EQ(*ProbeUnixSocket(berthd.socket_path()), SocketProbe::kLive);
}

TEST(SocketTest, StaleSocketFromACrashIsReplaced) {
  TempDir dir;
  BerthdProcess crashed(dir, "crashed");
  ASSERT_THAT(crashed.Start(), IsOk());
  absl::StatusOr<int> code = crashed.Stop(SIGKILL);
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 128 + SIGKILL);
  ASSERT_EQ(*ProbeUnixSocket(crashed.socket_path()), SocketProbe::kStale);

  BerthdProcess restarted(dir, "restarted");
  ASSERT_THAT(restarted.Start(), IsOk());
  EXPECT_THAT(restarted.Log(), HasSubstr("replacing stale socket"));
  EXPECT_TRUE(VersionOk(restarted));
}

TEST(SocketTest, AFileThatIsNotASocketIsLeftAlone) {
  TempDir dir;
  BerthdProcess berthd(dir);
  ASSERT_THAT(MakeDirs(berthd.state_dir(), 0700), IsOk());
  WriteFileOrDie(berthd.socket_path(), "precious");
  absl::StatusOr<int> code = berthd.RunToExit({});
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(berthd.Log(), HasSubstr("exists and is not a socket"));
  EXPECT_EQ(*ReadFile(berthd.socket_path()), "precious");
}

TEST(FlagsTest, UnknownFlagAndStrayArgumentsAreRefused) {
  TempDir dir;
  BerthdProcess berthd(dir);
  absl::StatusOr<int> code = berthd.RunToExit({"--no-such-flag=1"});
  ASSERT_THAT(code, IsOk());
  EXPECT_NE(*code, 0);
  BerthdProcess stray(dir, "stray");
  code = stray.RunToExit({"serve"});
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 2);
  EXPECT_THAT(stray.Log(), HasSubstr("unexpected argument `serve`"));
}

}  // namespace
}  // namespace berth
