#include "os/status.h"

#include <fcntl.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/unique_fd.h"
#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;

TEST(ErrnoStatusTest, NamesCallPathAndError) {
  absl::Status s = ErrnoStatus(ENOENT, "open", "/run/berth/x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "open `/run/berth/x`: No such file or directory");
}

TEST(ErrnoStatusTest, WithoutPath) {
  EXPECT_THAT(ErrnoStatus(EMFILE, "socket"),
              StatusIs(absl::StatusCode::kResourceExhausted, Eq("socket: Too many open files")));
}

TEST(ErrnoStatusTest, MapsCommonErrnos) {
  EXPECT_THAT(ErrnoStatus(EEXIST, "mkdir", "/x"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(ErrnoStatus(EACCES, "open", "/x"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(ErrnoStatus(EPERM, "mount", "/x"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(ErrnoStatus(EINVAL, "clone"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ErrnoStatus(EBUSY, "umount", "/x"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(AnnotateTest, PrefixesContextKeepsCodeAndPayload) {
  absl::Status inner = ErrnoStatus(ENOENT, "open", "/x");
  inner.SetPayload("berth/stage", absl::Cord("rootfs"));
  absl::Status outer = Annotate(inner, "container abc");
  EXPECT_THAT(outer, StatusIs(absl::StatusCode::kNotFound,
                              Eq("container abc: open `/x`: No such file or directory")));
  ASSERT_TRUE(outer.GetPayload("berth/stage").has_value());
  EXPECT_EQ(*outer.GetPayload("berth/stage"), "rootfs");
}

TEST(AnnotateTest, OkStaysOk) { EXPECT_THAT(Annotate(absl::OkStatus(), "ctx"), IsOk()); }

absl::Status FailsWith(absl::StatusCode code) { return absl::Status(code, "inner"); }

absl::Status UsesReturnIfError(absl::StatusCode code, bool* reached_end) {
  BERTH_RETURN_IF_ERROR(FailsWith(code));
  *reached_end = true;
  return absl::OkStatus();
}

TEST(ReturnIfErrorTest, ReturnsErrorAndStopsThere) {
  bool reached = false;
  EXPECT_THAT(UsesReturnIfError(absl::StatusCode::kAborted, &reached),
              StatusIs(absl::StatusCode::kAborted, Eq("inner")));
  EXPECT_FALSE(reached);
  EXPECT_THAT(UsesReturnIfError(absl::StatusCode::kOk, &reached), IsOk());
  EXPECT_TRUE(reached);
}

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError("odd");
  return n / 2;
}

absl::StatusOr<int> Quarter(int n) {
  BERTH_ASSIGN_OR_RETURN(int half, Half(n));
  BERTH_ASSIGN_OR_RETURN(half, Half(half));  // assigns to an existing variable too
  return half;
}

TEST(AssignOrReturnTest, AssignsValueOrReturnsError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument, Eq("odd")));
  EXPECT_THAT(Quarter(7), StatusIs(absl::StatusCode::kInvalidArgument));
}

absl::StatusOr<UniqueFd> OpenNull() { return OpenFile("/dev/null", O_RDONLY); }

absl::Status MovesOnlyType() {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenNull());
  return fd.valid() ? absl::OkStatus() : absl::InternalError("no fd");
}

TEST(AssignOrReturnTest, WorksWithMoveOnlyTypes) { EXPECT_THAT(MovesOnlyType(), IsOk()); }

}  // namespace
}  // namespace berth
