// Root-only tests of UnpackLayer (ctest label `root`): ownership, device nodes,
// whiteouts in overlayfs form, setuid and file capabilities, and a real overlay
// mount over two unpacked layers.
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "agent/images/unpack.h"
#include "agent/images/unpack_testing.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::images {
namespace {

using ::berth::images::testing::Compression;
using ::berth::images::testing::Dir;
using ::berth::images::testing::File;
using ::berth::images::testing::LayerEntry;
using ::berth::images::testing::Node;
using ::berth::images::testing::Symlink;
using ::berth::images::testing::WriteLayer;
using ::berth::testing::IsOk;
using ::berth::testing::TempDir;

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st;
}

std::string Xattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = lgetxattr(path.c_str(), name, buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, n);
}

bool IsWhiteout(const std::string& path) {
  struct stat st = Lstat(path);
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.insert(e.path().filename().string());
  }
  return names;
}

class UnpackRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
  }

  // Writes `entries` as a layer and unpacks it into a new directory `name`.
  absl::StatusOr<UnpackStats> Unpack(const std::string& name,
                                     const std::vector<LayerEntry>& entries) {
    std::string blob = tmp_.Join(name + ".tar.gz");
    absl::Status written = WriteLayer(blob, Compression::kGzip, entries);
    if (!written.ok()) return written;
    if (mkdir(tmp_.Join(name).c_str(), 0755) != 0) return absl::InternalError("mkdir");
    return UnpackLayer(blob, tmp_.Join(name));
  }

  TempDir tmp_;
};

TEST_F(UnpackRootTest, Ownership) {
  LayerEntry dir = Dir("home/app", 0700);
  LayerEntry file = File("home/app/data", "x", 0640);
  LayerEntry link = Symlink("home/app/link", "data");
  for (LayerEntry* e : {&dir, &file, &link}) {
    e->uid = 1234;
    e->gid = 5678;
  }
  ASSERT_THAT(Unpack("l", {dir, file, link}), IsOk());
  for (const char* path : {"l/home/app", "l/home/app/data", "l/home/app/link"}) {
    struct stat st = Lstat(tmp_.Join(path));
    EXPECT_EQ(st.st_uid, 1234u) << path;
    EXPECT_EQ(st.st_gid, 5678u) << path;
  }
  EXPECT_EQ(Lstat(tmp_.Join("l/home")).st_uid, 0u);  // made as a missing parent
}

TEST_F(UnpackRootTest, DeviceNodesAndFifos) {
  LayerEntry fifo = Node("dev/fifo", AE_IFIFO, 0, 0);
  fifo.perm = 0620;
  ASSERT_THAT(
      Unpack("l", {Node("dev/null", AE_IFCHR, 1, 3), Node("dev/loop0", AE_IFBLK, 7, 0), fifo}),
      IsOk());
  struct stat st = Lstat(tmp_.Join("l/dev/null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  st = Lstat(tmp_.Join("l/dev/loop0"));
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 0));
  st = Lstat(tmp_.Join("l/dev/fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
}

TEST_F(UnpackRootTest, WhiteoutsBecomeOverlayForm) {
  absl::StatusOr<UnpackStats> stats =
      Unpack("l", {Dir("etc"), File("etc/.wh.motd", ""), File("gone/.wh.deeper", ""), Dir("opaque"),
                   File("opaque/kept", "k"), File("opaque/.wh..wh..opq", "")});
  ASSERT_THAT(stats, IsOk());
  EXPECT_TRUE(IsWhiteout(tmp_.Join("l/etc/motd")));
  EXPECT_TRUE(IsWhiteout(tmp_.Join("l/gone/deeper")));
  EXPECT_FALSE(std::filesystem::exists(tmp_.Join("l/etc/.wh.motd")));
  EXPECT_EQ(Xattr(tmp_.Join("l/opaque"), "trusted.overlay.opaque"), "y");
  EXPECT_FALSE(std::filesystem::exists(tmp_.Join("l/opaque/.wh..wh..opq")));
  EXPECT_TRUE(std::filesystem::exists(tmp_.Join("l/opaque/kept")));  // same layer: not hidden
  EXPECT_EQ(stats->whiteouts, 3u);
}

// "Whiteout files MUST only apply to resources in lower/parent layers".
TEST_F(UnpackRootTest, WhiteoutAndEntryOfTheSameName) {
  ASSERT_THAT(Unpack("l", {File("f", "file first"), File(".wh.f", ""), File(".wh.g", ""),
                           File("g", "file after"), Dir("d"), File("d/x", "x"), File(".wh.d", ""),
                           File(".wh.e", ""), Dir("e", 0750), File(".wh.p", ""), File("p/x", "x"),
                           File(".wh.q", ""), File("q/.wh..wh..opq", "")}),
              IsOk());
  EXPECT_TRUE(S_ISREG(Lstat(tmp_.Join("l/f")).st_mode));
  EXPECT_TRUE(S_ISREG(Lstat(tmp_.Join("l/g")).st_mode));
  // A directory of this layer replacing a removed lower one hides the lower's contents.
  EXPECT_TRUE(std::filesystem::exists(tmp_.Join("l/d/x")));
  EXPECT_EQ(Xattr(tmp_.Join("l/d"), "trusted.overlay.opaque"), "y");
  EXPECT_TRUE(S_ISDIR(Lstat(tmp_.Join("l/e")).st_mode));
  EXPECT_EQ(Lstat(tmp_.Join("l/e")).st_mode & 07777, 0750u);
  EXPECT_EQ(Xattr(tmp_.Join("l/e"), "trusted.overlay.opaque"), "y");
  // An entry under a whited-out name: the name becomes an opaque directory again.
  EXPECT_EQ(Lstat(tmp_.Join("l/p")).st_mode & 07777, 0755u);
  EXPECT_EQ(Xattr(tmp_.Join("l/p"), "trusted.overlay.opaque"), "y");
  EXPECT_TRUE(std::filesystem::exists(tmp_.Join("l/p/x")));
  EXPECT_EQ(Xattr(tmp_.Join("l/q"), "trusted.overlay.opaque"), "y");
}

TEST_F(UnpackRootTest, SetuidAndFileCapabilityKept) {
  LayerEntry su = File("bin/su", "elf", 04755);
  su.uid = 1234;
  su.gid = 1234;
  LayerEntry sgid_dir = Dir("srv", 02775);
  sgid_dir.gid = 50;
  // vfs_cap_data revision 2 (linux/capability.h): effective, permitted = CAP_NET_RAW (13).
  const std::string cap(
      "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
      "\x00\x00",
      20);
  LayerEntry ping = File("bin/ping", "elf", 0755);
  ping.uid = 1234;  // chown after setxattr would drop the capability
  ping.xattrs = {{"security.capability", cap}};
  ASSERT_THAT(Unpack("l", {su, sgid_dir, ping}), IsOk());
  struct stat st = Lstat(tmp_.Join("l/bin/su"));
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(Lstat(tmp_.Join("l/srv")).st_mode & 07777, 02775u);
  EXPECT_EQ(Xattr(tmp_.Join("l/bin/ping"), "security.capability"), cap);
}

// Two unpacked layers under a real overlay mount: the upper's whiteout hides `a`
// and its opaque `dir` hides everything the lower had there.
class OverlayTest : public UnpackRootTest {
 protected:
  void TearDown() override {
    if (mounted_ && umount2(merged_.c_str(), 0) != 0) umount2(merged_.c_str(), MNT_DETACH);
  }

  std::string merged_ = tmp_.Join("merged");
  bool mounted_ = false;
};

TEST_F(OverlayTest, MergedViewHonoursWhiteoutsAndOpaqueDirs) {
  ASSERT_THAT(Unpack("lower", {File("a", "a"), Dir("dir"), File("dir/x", "x"), File("b", "b")}),
              IsOk());
  ASSERT_THAT(Unpack("upper", {File(".wh.a", ""), Dir("dir"), File("dir/.wh..wh..opq", ""),
                               File("dir/y", "y")}),
              IsOk());
  ASSERT_EQ(mkdir(merged_.c_str(), 0755), 0);
  std::string options = "lowerdir=" + tmp_.Join("upper") + ":" + tmp_.Join("lower");
  ASSERT_EQ(mount("overlay", merged_.c_str(), "overlay", MS_RDONLY, options.c_str()), 0)
      << strerror(errno);
  mounted_ = true;
  EXPECT_EQ(List(merged_), (std::set<std::string>{"b", "dir"}));
  EXPECT_EQ(List(merged_ + "/dir"), (std::set<std::string>{"y"}));
}

}  // namespace
}  // namespace berth::images
