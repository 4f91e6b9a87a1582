#include "agent/images/unpack_path.h"

#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

TEST(CleanLayerPathTest, MakesNamesRelativeToTheRoot) {
  EXPECT_EQ(*CleanLayerPath("etc/passwd"), "etc/passwd");
  EXPECT_EQ(*CleanLayerPath("./etc/passwd"), "etc/passwd");
  EXPECT_EQ(*CleanLayerPath("/etc/passwd"), "etc/passwd");
  EXPECT_EQ(*CleanLayerPath("//etc//./passwd/"), "etc/passwd");
  EXPECT_EQ(*CleanLayerPath("usr/../etc/x"), "etc/x");
  EXPECT_EQ(*CleanLayerPath("./"), "");
  EXPECT_EQ(*CleanLayerPath("/"), "");
  EXPECT_EQ(*CleanLayerPath("a/.."), "");
}

TEST(CleanLayerPathTest, RejectsEscapes) {
  EXPECT_THAT(CleanLayerPath("../etc/passwd"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("escapes the layer")));
  EXPECT_THAT(CleanLayerPath("a/../../b"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CleanLayerPath("/.."), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CleanLayerPath("./.."), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CleanLayerPath("..."), IsOk());  // an ordinary name
}

TEST(ClassifyWhiteoutTest, OrdinaryNames) {
  EXPECT_EQ(ClassifyWhiteout("etc/passwd")->kind, WhiteoutKind::kNone);
  EXPECT_EQ(ClassifyWhiteout("etc/wh.x")->kind, WhiteoutKind::kNone);
  EXPECT_EQ(ClassifyWhiteout("etc/x.wh.y")->kind, WhiteoutKind::kNone);
}

TEST(ClassifyWhiteoutTest, Whiteouts) {
  absl::StatusOr<Whiteout> w = ClassifyWhiteout("etc/.wh.motd");
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->kind, WhiteoutKind::kWhiteout);
  EXPECT_EQ(w->target, "etc/motd");
  w = ClassifyWhiteout(".wh.a");
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->target, "a");
}

TEST(ClassifyWhiteoutTest, Opaque) {
  absl::StatusOr<Whiteout> w = ClassifyWhiteout("a/b/.wh..wh..opq");
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->kind, WhiteoutKind::kOpaque);
  EXPECT_EQ(w->target, "a/b");
  w = ClassifyWhiteout(".wh..wh..opq");
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->kind, WhiteoutKind::kOpaque);
  EXPECT_EQ(w->target, "");
}

TEST(ClassifyWhiteoutTest, AufsMetadataIsSkipped) {
  EXPECT_EQ(ClassifyWhiteout(".wh..wh.plnk")->kind, WhiteoutKind::kAufsMeta);
  EXPECT_EQ(ClassifyWhiteout(".wh..wh.plnk/123.456")->kind, WhiteoutKind::kAufsMeta);
  EXPECT_EQ(ClassifyWhiteout(".wh..wh..opq/x")->kind, WhiteoutKind::kAufsMeta);
}

TEST(ClassifyWhiteoutTest, RejectsImpossibleNames) {
  EXPECT_THAT(ClassifyWhiteout("a/.wh.b/c"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("as a directory")));
  EXPECT_THAT(ClassifyWhiteout("a/.wh."), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ClassifyWhiteout("a/.wh.."), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ClassifyWhiteout("a/.wh..."), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SplitParentTest, Splits) {
  EXPECT_EQ(SplitParent("a/b/c"), std::make_pair(absl::string_view("a/b"), absl::string_view("c")));
  EXPECT_EQ(SplitParent("c"), std::make_pair(absl::string_view(), absl::string_view("c")));
}

}  // namespace
}  // namespace berth::images
