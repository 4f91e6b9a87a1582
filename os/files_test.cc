#include "os/files.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth {
namespace {

using ::berth::testing::BindUnixSocket;
using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::HasSubstr;

TEST(MakeDirsTest, CreatesParentsAndIsIdempotent) {
  TempDir dir;
  std::string deep = dir.Join("a/b/c");
  ASSERT_THAT(MakeDirs(deep, 0700), IsOk());
  struct stat st;
  ASSERT_EQ(::stat(deep.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_THAT(MakeDirs(deep, 0700), IsOk());
}

TEST(MakeDirsTest, RefusesAFileInTheWay) {
  TempDir dir;
  WriteFileOrDie(dir.Join("file"), "x");
  EXPECT_THAT(MakeDirs(dir.Join("file"), 0700),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a directory")));
  EXPECT_THAT(MakeDirs(dir.Join("file/sub"), 0700),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(LockFileTest, SecondLockFailsNamingHolder) {
  TempDir dir;
  std::string path = dir.Join("x.lock");
  absl::StatusOr<UniqueFd> first = LockFile(path);
  ASSERT_THAT(first, IsOk());
  // flock locks belong to the open file description, so a second open in the
  // same process conflicts just as another process would.
  EXPECT_THAT(LockFile(path), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("locked by pid " + std::to_string(getpid()))));
  first->reset();
  EXPECT_THAT(LockFile(path), IsOk());
}

TEST(ProbeUnixSocketTest, Absent) {
  TempDir dir;
  EXPECT_EQ(*ProbeUnixSocket(dir.Join("none.sock")), SocketProbe::kAbsent);
}

TEST(ProbeUnixSocketTest, Live) {
  TempDir dir;
  UniqueFd server = BindUnixSocket(dir.Join("s.sock"), /*listen=*/true);
  EXPECT_EQ(*ProbeUnixSocket(dir.Join("s.sock")), SocketProbe::kLive);
}

TEST(ProbeUnixSocketTest, StaleWhenNobodyListens) {
  TempDir dir;
  BindUnixSocket(dir.Join("s.sock"), /*listen=*/false);  // closed at once: what a crash leaves
  EXPECT_EQ(*ProbeUnixSocket(dir.Join("s.sock")), SocketProbe::kStale);
}

TEST(ProbeUnixSocketTest, RegularFileIsRefused) {
  TempDir dir;
  WriteFileOrDie(dir.Join("f"), "precious");
  EXPECT_THAT(ProbeUnixSocket(dir.Join("f")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is not a socket")));
}

TEST(ProbeUnixSocketTest, TooLongPath) {
  TempDir dir;
  std::string longdir = dir.Join(std::string(100, 'd'));
  ASSERT_THAT(MakeDirs(longdir, 0700), IsOk());
  // bind() can't make a socket at a path this long, but mknod(2) can make the inode.
  std::string path = longdir + "/s.sock";
  ASSERT_EQ(::mknod(path.c_str(), S_IFSOCK | 0600, 0), 0);
  EXPECT_THAT(ProbeUnixSocket(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than")));
}

TEST(ReadFileTest, ReadsWholeFileAndNamesMissingOne) {
  TempDir dir;
  std::string big(100000, 'x');
  WriteFileOrDie(dir.Join("big"), big);
  EXPECT_EQ(*ReadFile(dir.Join("big")), big);
  EXPECT_THAT(ReadFile(dir.Join("nope")), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

}  // namespace
}  // namespace berth
