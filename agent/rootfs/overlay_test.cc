// Unprivileged tests of overlay.h: spec checks, the names and option strings
// handed to the kernel, and the file-system steps that need no mount. The
// mounts themselves are in overlay_root_test.cc.
#include "agent/rootfs/overlay.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "os/files.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::rootfs {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using internal::OverlayNames;
using ::testing::HasSubstr;

// An OK StatusOr whose value matches `m`.
MATCHER_P(HoldsValue, m, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(m, *arg, result_listener);
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

OverlaySpec Writable() {
  OverlaySpec spec;
  spec.lower_dirs = {"/l/top", "/l/base"};
  spec.upper_dir = "/c/upper";
  spec.work_dir = "/c/work";
  spec.target = "/c/rootfs";
  return spec;
}

TEST(CheckSpecTest, AcceptsWritableAndReadonlySpecs) {
  EXPECT_THAT(internal::CheckSpec(Writable()), IsOk());
  OverlaySpec ro = Writable();
  ro.readonly = true;
  EXPECT_THAT(internal::CheckSpec(ro), IsOk());
  ro.upper_dir.clear();
  ro.work_dir.clear();
  EXPECT_THAT(internal::CheckSpec(ro), IsOk());
}

TEST(CheckSpecTest, NamesTheBadField) {
  OverlaySpec spec = Writable();
  spec.lower_dirs.clear();
  EXPECT_THAT(internal::CheckSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lower_dirs")));

  spec = Writable();
  spec.lower_dirs[1] = "relative/layer";
  EXPECT_THAT(internal::CheckSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("lower_dirs[1] `relative/layer`: not an absolute path")));

  spec = Writable();
  spec.work_dir.clear();
  EXPECT_THAT(internal::CheckSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("give both or neither")));

  spec = Writable();
  spec.upper_dir.clear();
  spec.work_dir.clear();
  EXPECT_THAT(internal::CheckSpec(spec), StatusIs(absl::StatusCode::kInvalidArgument,
                                                  HasSubstr("writable overlay needs upper_dir")));

  spec.readonly = true;
  spec.lower_dirs.pop_back();
  EXPECT_THAT(internal::CheckSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least two layers")));

  spec = Writable();
  spec.target = "//";
  EXPECT_THAT(internal::CheckSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target `/`")));
  spec.target = "rootfs";
  EXPECT_THAT(internal::CheckSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target `rootfs`")));
}

TEST(NewApiNamesTest, PathsGoVerbatimExceptBackslashesInUpperAndWork) {
  OverlayNames paths{{"/l/a:b,c", "/l/x\\y"}, "/c/up\\per", "/c/work"};
  OverlayNames fds{{"/proc/self/fd/3", "/proc/self/fd/4"}, "/proc/self/fd/5", "/proc/self/fd/6"};
  OverlayNames names = internal::NewApiNames(paths, fds);
  // "lowerdir+" values are not unescaped by the kernel (ovl_mount_dir_noesc).
  EXPECT_THAT(names.lower, ::testing::ElementsAre("/l/a:b,c", "/l/x\\y"));
  EXPECT_EQ(names.upper, "/c/up\\\\per");
  EXPECT_EQ(names.work, "/c/work");
}

TEST(NewApiNamesTest, PathsLongerThanAnFsconfigValueBecomeFdPaths) {
  std::string fits = "/" + std::string(internal::kMaxFsconfigValue - 1, 'a');
  std::string too_long = fits + "b";
  OverlayNames paths{{fits, too_long}, too_long, fits};
  OverlayNames fds{{"/proc/self/fd/3", "/proc/self/fd/4"}, "/proc/self/fd/5", "/proc/self/fd/6"};
  OverlayNames names = internal::NewApiNames(paths, fds);
  EXPECT_THAT(names.lower, ::testing::ElementsAre(fits, "/proc/self/fd/4"));
  EXPECT_EQ(names.upper, "/proc/self/fd/5");
  EXPECT_EQ(names.work, fits);
}

TEST(NewApiNamesTest, NoUpperMeansNoUpperOrWork) {
  OverlayNames names = internal::NewApiNames({{"/a", "/b"}, "", ""}, {{"/fd/3", "/fd/4"}, "", ""});
  EXPECT_EQ(names.upper, "");
  EXPECT_EQ(names.work, "");
}

TEST(JoinMountDataTest, ListsLayersTopFirstThenUpperAndWork) {
  EXPECT_THAT(
      internal::JoinMountData({{"/l/top", "/l/mid", "/l/base"}, "/c/upper", "/c/work"}),
      HoldsValue(std::string("lowerdir=/l/top:/l/mid:/l/base,upperdir=/c/upper,workdir=/c/work")));
  EXPECT_THAT(internal::JoinMountData({{"/l/top", "/l/base"}, "", ""}),
              HoldsValue(std::string("lowerdir=/l/top:/l/base")));
}

TEST(JoinMountDataTest, RefusesSeparatorsNamingTheField) {
  EXPECT_THAT(internal::JoinMountData({{"/l/top", "/l/a:b"}, "/c/upper", "/c/work"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lower_dirs[1] `/l/a:b`")));
  EXPECT_THAT(internal::JoinMountData({{"/l/top"}, "/c/up,per", "/c/work"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("upper_dir `/c/up,per`")));
  EXPECT_THAT(internal::JoinMountData({{"/l/top"}, "/c/upper", "/c/wo\\rk"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("work_dir")));
}

TEST(JoinMountDataTest, RefusesMoreThanAPage) {
  // "lowerdir=" (9) + 4086 bytes of paths: exactly kMaxMountData.
  OverlayNames names{{"/" + std::string(4085, 'a')}, "", ""};
  EXPECT_THAT(internal::JoinMountData(names), IsOk());
  names.lower[0] += "a";
  EXPECT_THAT(internal::JoinMountData(names),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("4096 bytes")));
}

// Image layers as a layer store names them: long, one dir per chain ID.
OverlayNames Layers(int n, const std::string& prefix) {
  OverlayNames names;
  for (int i = 0; i < n; ++i) names.lower.push_back(absl::StrCat(prefix, i));
  names.upper = prefix + "upper";
  names.work = prefix + "work";
  return names;
}

TEST(LegacyMountDataTest, RealPathsWhenTheyFit) {
  OverlayNames paths = Layers(3, "/var/lib/berth/layers/");
  OverlayNames fds = Layers(3, "/proc/self/fd/");
  EXPECT_THAT(internal::LegacyMountData(paths, fds),
              HoldsValue(HasSubstr("lowerdir=/var/lib/berth/layers/0:")));
}

TEST(LegacyMountDataTest, FdPathsForSeparatorsOrTooManyLayers) {
  OverlayNames fds = Layers(200, "/proc/self/fd/1");
  OverlayNames paths = Layers(3, "/l/a:b/");
  EXPECT_THAT(internal::LegacyMountData(paths, Layers(3, "/proc/self/fd/")),
              HoldsValue(HasSubstr("lowerdir=/proc/self/fd/0:/proc/self/fd/1:")));

  // 200 layers of ~100 bytes: ~20 KB of paths, ~3.8 KB as fd paths.
  paths = Layers(200, "/var/lib/berth/layers/sha256-" + std::string(64, 'f') + "/");
  absl::StatusOr<std::string> data = internal::LegacyMountData(paths, fds);
  ASSERT_THAT(data, IsOk());
  EXPECT_THAT(*data, HasSubstr("lowerdir=/proc/self/fd/10:/proc/self/fd/11:"));
  EXPECT_LE(data->size(), internal::kMaxMountData);

  // Past ~210 layers not even fd paths fit a page.
  EXPECT_THAT(internal::LegacyMountData(Layers(300, paths.upper), Layers(300, "/proc/self/fd/1")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("300 layers")));
}

TEST(FdPathTest, NamesTheFdInProc) { EXPECT_EQ(internal::FdPath(17), "/proc/self/fd/17"); }

class OverlayFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(MakeDirs(dir_.Join("l/top"), 0755), IsOk());
    ASSERT_THAT(MakeDirs(dir_.Join("l/base"), 0755), IsOk());
    ASSERT_THAT(MakeDirs(dir_.Join("c/upper"), 0755), IsOk());
    ASSERT_THAT(MakeDirs(dir_.Join("c/work"), 0700), IsOk());
    spec_.lower_dirs = {dir_.Join("l/top"), dir_.Join("l/base")};
    spec_.upper_dir = dir_.Join("c/upper");
    spec_.work_dir = dir_.Join("c/work");
    spec_.target = dir_.Join("c/rootfs");
  }
  TempDir dir_;
  OverlaySpec spec_;
};

TEST_F(OverlayFilesTest, MissingLayerIsNotFoundNamingIt) {
  spec_.lower_dirs[1] = dir_.Join("l/gone");
  EXPECT_THAT(MountOverlay(spec_),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("lower_dirs[1]: open `" + dir_.Join("l/gone"))));
  EXPECT_FALSE(Exists(spec_.target));  // checked before anything is made
}

TEST_F(OverlayFilesTest, FileWhereADirShouldBeIsInvalid) {
  WriteFileOrDie(dir_.Join("c/file"), "x");
  spec_.work_dir = dir_.Join("c/file");
  EXPECT_THAT(MountOverlay(spec_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("work_dir `" + dir_.Join("c/file") + "`: not a directory")));
  spec_.work_dir = dir_.Join("c/work");
  spec_.upper_dir = dir_.Join("c/nope");
  EXPECT_THAT(MountOverlay(spec_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("upper_dir: open `")));
}

TEST_F(OverlayFilesTest, UnmountOfNothingIsOk) {
  EXPECT_THAT(UnmountOverlay(dir_.Join("never/made")), IsOk());
  EXPECT_THAT(UnmountOverlay(dir_.Join("c/upper")), IsOk());  // a dir, nothing mounted
  EXPECT_THAT(UnmountOverlay("rootfs"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(OverlayFilesTest, CreateRollsBackTheDirsItMade) {
  EXPECT_THAT(CreateContainerRootfs(dir_.Join("ctr"), {dir_.Join("l/top"), dir_.Join("l/gone")}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("lower_dirs[1]")));
  EXPECT_TRUE(Exists(dir_.Join("ctr")));  // the container's dir is not ours to remove
  EXPECT_FALSE(Exists(dir_.Join("ctr/upper")));
  EXPECT_FALSE(Exists(dir_.Join("ctr/work")));
  EXPECT_FALSE(Exists(dir_.Join("ctr/rootfs")));
}

TEST_F(OverlayFilesTest, RemoveNeverFollowsSymlinksOutOfTheUpperDir) {
  const std::string ctr = dir_.Join("ctr");
  ASSERT_THAT(MakeDirs(ctr + "/upper/etc/deep/er", 0755), IsOk());
  ASSERT_THAT(MakeDirs(ctr + "/work/work", 0), IsOk());
  ASSERT_THAT(MakeDirs(ctr + "/rootfs", 0755), IsOk());
  WriteFileOrDie(ctr + "/upper/etc/deep/er/file", "x");
  WriteFileOrDie(dir_.Join("l/base/precious"), "keep me");
  ASSERT_EQ(symlink(dir_.Join("l/base").c_str(), (ctr + "/upper/escape").c_str()), 0);
  ASSERT_EQ(symlink(dir_.Join("l").c_str(), (ctr + "/upper/etc/deep/up").c_str()), 0);
  WriteFileOrDie(ctr + "/keep", "the container's other files");

  EXPECT_THAT(RemoveContainerRootfs(ctr), IsOk());
  EXPECT_FALSE(Exists(ctr + "/upper"));
  EXPECT_FALSE(Exists(ctr + "/work"));
  EXPECT_FALSE(Exists(ctr + "/rootfs"));
  EXPECT_TRUE(Exists(ctr + "/keep"));
  EXPECT_TRUE(Exists(dir_.Join("l/base/precious")));
  EXPECT_THAT(RemoveContainerRootfs(ctr), IsOk());  // again: nothing left, still OK
}

}  // namespace
}  // namespace berth::rootfs
