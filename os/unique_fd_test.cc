#include "os/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int Pipe(int* other) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  *other = fds[1];
  return fds[0];
}

TEST(UniqueFdTest, ClosesOnDestruction) {
  int w;
  int r = Pipe(&w);
  {
    UniqueFd a(r), b(w);
    EXPECT_TRUE(IsOpen(r));
  }
  EXPECT_FALSE(IsOpen(r));
  EXPECT_FALSE(IsOpen(w));
}

TEST(UniqueFdTest, DefaultIsInvalid) {
  UniqueFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(fd);
  EXPECT_EQ(fd.get(), -1);
}

TEST(UniqueFdTest, MoveTransfersOwnership) {
  int w;
  int r = Pipe(&w);
  UniqueFd wfd(w);
  UniqueFd a(r);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.get(), r);
  UniqueFd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), r);
  EXPECT_TRUE(IsOpen(r));
}

TEST(UniqueFdTest, MoveAssignClosesPreviousFd) {
  int w;
  int r = Pipe(&w);
  UniqueFd a(r);
  UniqueFd b(w);
  a = std::move(b);
  EXPECT_FALSE(IsOpen(r));
  EXPECT_EQ(a.get(), w);
}

TEST(UniqueFdTest, ReleaseKeepsFdOpen) {
  int w;
  int r = Pipe(&w);
  UniqueFd wfd(w);
  int raw;
  {
    UniqueFd a(r);
    raw = a.release();
    EXPECT_FALSE(a.valid());
  }
  EXPECT_EQ(raw, r);
  EXPECT_TRUE(IsOpen(r));
  ::close(raw);
}

TEST(UniqueFdTest, ResetClosesOldAndTakesNew) {
  int w;
  int r = Pipe(&w);
  UniqueFd a(r);
  a.reset(w);
  EXPECT_FALSE(IsOpen(r));
  EXPECT_EQ(a.get(), w);
  a.reset();
  EXPECT_FALSE(IsOpen(w));
  EXPECT_FALSE(a.valid());
}

TEST(UniqueFdTest, ResetToSameFdDoesNotClose) {
  int w;
  int r = Pipe(&w);
  UniqueFd wfd(w);
  UniqueFd a(r);
  a.reset(r);
  EXPECT_TRUE(IsOpen(r));
}

TEST(OpenFileTest, SetsCloexec) {
  absl::StatusOr<UniqueFd> fd = OpenFile("/dev/null", O_RDONLY);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST(OpenFileTest, MissingFileIsNotFoundNamingPath) {
  EXPECT_THAT(OpenFile("/nonexistent/berth", O_RDONLY),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("open `/nonexistent/berth`")));
}

}  // namespace
}  // namespace berth
