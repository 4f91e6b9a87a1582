// Real overlay mounts, as root, in a temp dir (ctest label `root`; skipped
// otherwise). Each test's TearDown takes off whatever is still mounted under
// its temp dir, even after a failure, and checks /proc/self/mountinfo is clean.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/rootfs/overlay.h"
#include "os/files.h"
#include "os/mountinfo.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::rootfs {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return in ? out.str() : "<missing>";
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// Mounts at or under `dir`, deepest last.
std::vector<MountInfo> MountsUnder(const std::string& dir) {
  std::vector<MountInfo> out;
  absl::StatusOr<std::string> text = ReadFile("/proc/self/mountinfo");
  if (!text.ok()) return out;
  absl::StatusOr<std::vector<MountInfo>> mounts = ParseMountInfo(*text);
  if (!mounts.ok()) return out;
  for (MountInfo& m : *mounts) {
    if (m.mount_point == dir || absl::StartsWith(m.mount_point, dir + "/")) {
      out.push_back(std::move(m));
    }
  }
  return out;
}

class OverlayRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
  }

  void TearDown() override {
    internal::ForceLegacyMountForTesting(false);
    for (int i = 0; i < 64; ++i) {
      std::vector<MountInfo> left = MountsUnder(dir_.path());
      if (left.empty()) break;
      umount2(left.back().mount_point.c_str(), MNT_DETACH);
    }
    std::vector<std::string> left;
    for (const MountInfo& m : MountsUnder(dir_.path())) left.push_back(m.mount_point);
    EXPECT_THAT(left, IsEmpty());
  }

  std::string Layer(const std::string& name) {
    std::string path = dir_.Join(name);
    EXPECT_THAT(MakeDirs(path, 0755), IsOk());
    return path;
  }

  // A spec with a fresh upper and work dir under `c/`.
  OverlaySpec Spec(std::vector<std::string> lowers) {
    OverlaySpec spec;
    spec.lower_dirs = std::move(lowers);
    spec.upper_dir = Layer("c/upper");
    spec.work_dir = Layer("c/work");
    spec.target = dir_.Join("c/rootfs");
    return spec;
  }

  bool Mounted(const std::string& target) {
    for (const MountInfo& m : MountsUnder(target)) {
      if (m.mount_point == target && m.fs_type == "overlay") return true;
    }
    return false;
  }

  TempDir dir_;
};

TEST_F(OverlayRootTest, TopLayerWinsWhiteoutsHideAndWritesGoUp) {
  for (bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "mount(2) fallback" : "new mount API");
    internal::ForceLegacyMountForTesting(legacy);
    const std::string run = legacy ? "legacy/" : "new/";
    std::string top = Layer(run + "top"), mid = Layer(run + "mid"), base = Layer(run + "base");
    WriteFileOrDie(base + "/same", "base");
    WriteFileOrDie(mid + "/same", "mid");
    WriteFileOrDie(top + "/same", "top");
    WriteFileOrDie(base + "/hidden", "from base");
    WriteFileOrDie(base + "/only-base", "base");
    // A whiteout: a 0:0 character device (overlayfs.rst, "whiteouts").
    ASSERT_EQ(mknod((mid + "/hidden").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);

    OverlaySpec spec = Spec({top, mid, base});
    ASSERT_THAT(MountOverlay(spec), IsOk());
    EXPECT_TRUE(Mounted(spec.target));
    EXPECT_EQ(Slurp(spec.target + "/same"), "top");
    EXPECT_FALSE(Exists(spec.target + "/hidden"));
    EXPECT_EQ(Slurp(spec.target + "/only-base"), "base");

    WriteFileOrDie(spec.target + "/new", "written");
    WriteFileOrDie(spec.target + "/only-base", "changed");
    ASSERT_EQ(unlink((spec.target + "/same").c_str()), 0);
    EXPECT_EQ(Slurp(spec.upper_dir + "/new"), "written");
    EXPECT_EQ(Slurp(spec.upper_dir + "/only-base"), "changed");  // copied up
    EXPECT_EQ(Slurp(base + "/only-base"), "base");               // lower untouched
    struct stat st;
    ASSERT_EQ(lstat((spec.upper_dir + "/same").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) << "a whiteout in upper";
    EXPECT_EQ(Slurp(top + "/same"), "top");

    ASSERT_THAT(UnmountOverlay(spec.target), IsOk());
    EXPECT_FALSE(Mounted(spec.target));
    ASSERT_THAT(RemoveContainerRootfs(dir_.Join("c")), IsOk());
  }
}

TEST_F(OverlayRootTest, AContainerRootfsIsVolatileOnBothMountPaths) {
  auto options_at = [&](const std::string& target) {
    for (const MountInfo& m : MountsUnder(target)) {
      if (m.mount_point == target && m.fs_type == "overlay") return m.super_options;
    }
    return std::string("(not mounted)");
  };
  for (bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "mount(2) fallback" : "new mount API");
    internal::ForceLegacyMountForTesting(legacy);
    const std::string base = Layer(legacy ? "legacy/base" : "new/base");
    WriteFileOrDie(base + "/f", "base");
    // Plain MountOverlay: no volatile unless asked.
    OverlaySpec spec = Spec({base});
    ASSERT_THAT(MountOverlay(spec), IsOk());
    EXPECT_THAT(options_at(spec.target), Not(HasSubstr("volatile")));
    ASSERT_THAT(RemoveContainerRootfs(dir_.Join("c")), IsOk());
    // A container's rootfs: volatile, and writes still land in its upper dir.
    absl::StatusOr<std::string> root = CreateContainerRootfs(dir_.Join("c"), {base});
    ASSERT_THAT(root, IsOk());
    EXPECT_THAT(options_at(*root), HasSubstr("volatile"));
    WriteFileOrDie(*root + "/new", "written");
    EXPECT_EQ(Slurp(dir_.Join("c/upper/new")), "written");
    ASSERT_THAT(RemoveContainerRootfs(dir_.Join("c")), IsOk());
    EXPECT_FALSE(Exists(dir_.Join("c/upper")));
  }
  internal::ForceLegacyMountForTesting(false);
}

TEST_F(OverlayRootTest, ReadonlyRejectsWritesWithOrWithoutUpper) {
  for (bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "mount(2) fallback" : "new mount API");
    internal::ForceLegacyMountForTesting(legacy);
    std::string top = Layer("top"), base = Layer("base");
    WriteFileOrDie(base + "/etc", "base");
    OverlaySpec spec;
    spec.lower_dirs = {top, base};
    spec.target = dir_.Join("ro");
    spec.readonly = true;
    ASSERT_THAT(MountOverlay(spec), IsOk());
    EXPECT_EQ(Slurp(spec.target + "/etc"), "base");
    int fd = open((spec.target + "/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    EXPECT_EQ(fd, -1);
    EXPECT_EQ(errno, EROFS);
    ASSERT_THAT(UnmountOverlay(spec.target), IsOk());

    // One layer, read-only: the per-container layout keeps an upper dir.
    absl::StatusOr<std::string> rootfs = CreateContainerRootfs(dir_.Join("ctr"), {base}, true);
    ASSERT_THAT(rootfs, IsOk());
    EXPECT_EQ(Slurp(*rootfs + "/etc"), "base");
    EXPECT_EQ(open((*rootfs + "/etc").c_str(), O_WRONLY | O_CLOEXEC), -1);
    EXPECT_EQ(errno, EROFS);
    ASSERT_THAT(RemoveContainerRootfs(dir_.Join("ctr")), IsOk());
  }
}

// Layers named as a layer store names them, long enough that 200 of them make
// ~20 KB of "lowerdir", five times what mount(2) takes; one deeper than an
// fsconfig value may be (255 bytes).
TEST_F(OverlayRootTest, TwoHundredLongLayers) {
  std::vector<std::string> lowers;
  size_t total = 0;
  for (int i = 0; i < 200; ++i) {
    std::string name = absl::StrCat(
        "layers/sha256-", std::string(64, static_cast<char>('a' + i % 26)), "-", i, "/fs");
    if (i == 100) name = absl::StrCat("layers/", std::string(200, 'd'), "/", std::string(100, 'e'));
    lowers.push_back(Layer(name));
    WriteFileOrDie(lowers.back() + "/who", absl::StrCat(i));
    WriteFileOrDie(absl::StrCat(lowers.back(), "/f", i), "x");
    total += lowers.back().size() + 1;
  }
  ASSERT_GT(total, 4096u * 4);
  ASSERT_GT(lowers[100].size(), internal::kMaxFsconfigValue);
  for (bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "mount(2) fallback" : "new mount API");
    internal::ForceLegacyMountForTesting(legacy);
    absl::StatusOr<std::string> rootfs = CreateContainerRootfs(dir_.Join("ctr"), lowers);
    ASSERT_THAT(rootfs, IsOk());
    EXPECT_EQ(Slurp(*rootfs + "/who"), "0");
    EXPECT_TRUE(Exists(*rootfs + "/f0"));
    EXPECT_TRUE(Exists(*rootfs + "/f100"));
    EXPECT_TRUE(Exists(*rootfs + "/f199"));
    ASSERT_THAT(RemoveContainerRootfs(dir_.Join("ctr")), IsOk());
    EXPECT_FALSE(Exists(dir_.Join("ctr/rootfs")));
  }
}

// ':' and ',' separate overlay options in mount(2) data; the new API takes each
// path alone, and the fallback names such dirs by fd.
TEST_F(OverlayRootTest, SeparatorsInPaths) {
  for (bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "mount(2) fallback" : "new mount API");
    internal::ForceLegacyMountForTesting(legacy);
    std::string top = Layer("a:b,c"), base = Layer("base");
    WriteFileOrDie(top + "/f", "top");
    const std::string ctr = dir_.Join("x:y,z");
    absl::StatusOr<std::string> rootfs = CreateContainerRootfs(ctr, {top, base});
    ASSERT_THAT(rootfs, IsOk());
    EXPECT_EQ(Slurp(*rootfs + "/f"), "top");
    WriteFileOrDie(*rootfs + "/g", "up");
    EXPECT_EQ(Slurp(ctr + "/upper/g"), "up");
    ASSERT_THAT(RemoveContainerRootfs(ctr), IsOk());
  }
}

TEST_F(OverlayRootTest, UnmountIsIdempotentAndTakesOffStackedMounts) {
  std::string top = Layer("top"), base = Layer("base");
  OverlaySpec spec;
  spec.lower_dirs = {top, base};
  spec.target = dir_.Join("ro");
  spec.readonly = true;
  ASSERT_THAT(MountOverlay(spec), IsOk());
  ASSERT_THAT(MountOverlay(spec), IsOk());  // a retried mount stacks a second one
  EXPECT_EQ(MountsUnder(spec.target).size(), 2u);
  EXPECT_THAT(UnmountOverlay(spec.target), IsOk());
  EXPECT_THAT(MountsUnder(spec.target), IsEmpty());
  EXPECT_THAT(UnmountOverlay(spec.target), IsOk());
  EXPECT_THAT(UnmountOverlay(dir_.Join("never")), IsOk());
  EXPECT_THAT(UnmountOverlay(top), IsOk());  // a plain dir
}

TEST_F(OverlayRootTest, BusyOverlayIsDetached) {
  std::string base = Layer("base");
  WriteFileOrDie(base + "/f", "x");
  absl::StatusOr<std::string> rootfs = CreateContainerRootfs(dir_.Join("ctr"), {base});
  ASSERT_THAT(rootfs, IsOk());
  int busy = open((*rootfs + "/f").c_str(), O_RDONLY | O_CLOEXEC);  // umount2 -> EBUSY
  ASSERT_GE(busy, 0);
  EXPECT_THAT(RemoveContainerRootfs(dir_.Join("ctr")), IsOk());
  EXPECT_FALSE(Mounted(*rootfs));
  EXPECT_FALSE(Exists(*rootfs));
  char c;
  EXPECT_EQ(read(busy, &c, 1), 1);  // still readable through the detached mount
  close(busy);
}

TEST_F(OverlayRootTest, FailuresAreClearAndLeaveNothingMounted) {
  std::string other = Layer("other");
  ASSERT_EQ(mount("tmpfs", other.c_str(), "tmpfs", 0, "size=1m"), 0);
  std::string base = Layer("base"), top = Layer("top");
  Layer("other/upper");
  Layer("other/work");
  for (bool legacy : {false, true}) {
    SCOPED_TRACE(legacy ? "mount(2) fallback" : "new mount API");
    internal::ForceLegacyMountForTesting(legacy);
    OverlaySpec spec = Spec({top, base});

    // Work dir on another mount than the upper dir: refused before mounting.
    spec.work_dir = dir_.Join("other/work");
    EXPECT_THAT(MountOverlay(spec),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("work_dir `" + spec.work_dir + "`: not on the same mount")));
    EXPECT_FALSE(Mounted(spec.target));

    // The lower layer is gone: refused before mounting.
    spec = Spec({top, dir_.Join("gone")});
    EXPECT_THAT(MountOverlay(spec),
                StatusIs(absl::StatusCode::kNotFound, HasSubstr("lower_dirs[1]: open `")));
    EXPECT_FALSE(Mounted(spec.target));

    // Upper on a read-only mount: the kernel refuses, and says why.
    ASSERT_EQ(mount(nullptr, other.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, "size=1m"), 0);
    spec = Spec({top, base});
    spec.upper_dir = dir_.Join("other/upper");
    spec.work_dir = dir_.Join("other/work");
    absl::Status status = MountOverlay(spec);
    ASSERT_EQ(mount(nullptr, other.c_str(), nullptr, MS_REMOUNT, "size=1m"), 0);
    EXPECT_FALSE(status.ok());
    EXPECT_FALSE(Mounted(spec.target));
    std::string message(status.message());
    if (legacy) {
      EXPECT_THAT(message, HasSubstr("mount overlay on `" + spec.target + "`"));
      EXPECT_THAT(message, HasSubstr("(kernel: see dmesg)"));
    } else {
      EXPECT_THAT(message, HasSubstr("fsconfig upperdir `" + spec.upper_dir + "`"));
      EXPECT_THAT(message, HasSubstr("(kernel: overlay: "));
      EXPECT_THAT(message, HasSubstr("read-only"));
      EXPECT_THAT(message, HasSubstr("; mount(2) fallback: "));
    }
  }
  EXPECT_EQ(umount2(other.c_str(), 0), 0);
}

}  // namespace
}  // namespace berth::rootfs
