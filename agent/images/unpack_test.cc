// Unprivileged tests of UnpackLayer: layers built with libarchive's writer,
// unpacked into a temp dir. Root-only behaviour is in unpack_root_test.cc.
#include "agent/images/unpack.h"

#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "agent/images/unpack_testing.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::images {
namespace {

using ::berth::images::testing::Compression;
using ::berth::images::testing::Dir;
using ::berth::images::testing::File;
using ::berth::images::testing::Hardlink;
using ::berth::images::testing::LayerEntry;
using ::berth::images::testing::Symlink;
using ::berth::images::testing::WriteLayer;
using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::testing::HasSubstr;

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, n);
}

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(mkdir(layer_.c_str(), 0755), 0); }

  absl::StatusOr<UnpackStats> Unpack(const std::vector<LayerEntry>& entries,
                                     Compression compression = Compression::kGzip,
                                     const UnpackOptions& options = {}) {
    absl::Status written = WriteLayer(blob_, compression, entries);
    if (!written.ok()) return written;
    return UnpackLayer(blob_, layer_, options);
  }
  std::string L(const std::string& path) const { return layer_ + "/" + path; }

  TempDir tmp_;
  std::string layer_ = tmp_.Join("layer");
  std::string blob_ = tmp_.Join("blob");
};

class UnpackCompressionTest : public UnpackTest,
                              public ::testing::WithParamInterface<Compression> {};

TEST_P(UnpackCompressionTest, FilesDirectoriesAndSymlinks) {
  LayerEntry script = File("usr/bin/hello", "#!/bin/sh\necho hi\n", 0755);
  script.mtime = 1234567890;
  script.mtime_nsec = 500;
  LayerEntry etc = Dir("etc", 0750);
  etc.mtime = 1111111111;
  absl::StatusOr<UnpackStats> stats =
      Unpack({Dir("usr"), Dir("usr/bin"), script, etc, File("etc/os-release", "ID=berth\n", 0600),
              Symlink("etc/motd", "../usr/share/motd"), File("empty", "")},
             GetParam());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->entries, 7u);
  EXPECT_EQ(stats->bytes, 27u);

  EXPECT_EQ(Contents(L("usr/bin/hello")), "#!/bin/sh\necho hi\n");
  struct stat st = Lstat(L("usr/bin/hello"));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);
  EXPECT_EQ(st.st_mtim.tv_nsec, 500);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(Lstat(L("etc/os-release")).st_mode & 07777, 0600u);
  EXPECT_EQ(Lstat(L("empty")).st_size, 0);

  // A directory's time survives the files written into it after its entry.
  st = Lstat(L("etc"));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1111111111);

  EXPECT_TRUE(S_ISLNK(Lstat(L("etc/motd")).st_mode));
  EXPECT_EQ(ReadLink(L("etc/motd")), "../usr/share/motd");
  EXPECT_EQ(Lstat(L("etc/motd")).st_mtim.tv_sec, 1600000000);
}

INSTANTIATE_TEST_SUITE_P(AllCompressions, UnpackCompressionTest,
                         ::testing::Values(Compression::kNone, Compression::kGzip,
                                           Compression::kZstd));

TEST_F(UnpackTest, HardlinksShareTheInode) {
  ASSERT_THAT(Unpack({File("bin/busybox", "elf", 0755), Hardlink("bin/sh", "bin/busybox"),
                      Hardlink("/bin/ls", "/bin/busybox")}),
              IsOk());
  struct stat a = Lstat(L("bin/busybox"));
  EXPECT_EQ(Lstat(L("bin/sh")).st_ino, a.st_ino);
  EXPECT_EQ(Lstat(L("bin/ls")).st_ino, a.st_ino);
  EXPECT_EQ(a.st_nlink, 3u);
}

TEST_F(UnpackTest, MissingParentsAreMade0755) {
  ASSERT_THAT(Unpack({File("a/b/c", "x")}), IsOk());
  EXPECT_EQ(Lstat(L("a")).st_mode & 07777, 0755u);
  EXPECT_EQ(Lstat(L("a/b")).st_mode & 07777, 0755u);
  EXPECT_EQ(Contents(L("a/b/c")), "x");
}

TEST_F(UnpackTest, ReadOnlyDirectoryGetsItsModeAfterItsContents) {
  ASSERT_THAT(Unpack({Dir("ro", 0555), File("ro/file", "x"), Dir("ro/sub", 0500),
                      File("ro/sub/deeper", "y")}),
              IsOk());
  EXPECT_EQ(Lstat(L("ro")).st_mode & 07777, 0555u);
  EXPECT_EQ(Lstat(L("ro/sub")).st_mode & 07777, 0500u);
  EXPECT_EQ(Contents(L("ro/sub/deeper")), "y");
  chmod(L("ro/sub").c_str(), 0700);  // let TempDir clean up when not root
  chmod(L("ro").c_str(), 0700);
}

TEST_F(UnpackTest, AbsolutePathsAreTakenFromTheLayerRoot) {
  ASSERT_THAT(Unpack({Dir("/"), File("/abs/x", "1"), File("./dot/y", "2")}), IsOk());
  EXPECT_EQ(Contents(L("abs/x")), "1");
  EXPECT_EQ(Contents(L("dot/y")), "2");
  EXPECT_EQ(Lstat(layer_).st_mode & 07777, 0755u);  // the root entry leaves the dir alone
}

TEST_F(UnpackTest, DotDotEscapeIsRejected) {
  EXPECT_THAT(Unpack({File("../escaped", "x")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("layer entry \"../escaped\": escapes the layer")));
  EXPECT_THAT(Unpack({File("a/../../escaped", "x")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("escapes the layer")));
  EXPECT_FALSE(Exists(tmp_.Join("escaped")));
}

TEST_F(UnpackTest, HardlinkOutsideIsRejected) {
  struct stat passwd = Lstat("/etc/passwd");
  EXPECT_THAT(Unpack({Hardlink("pw", "../../../../etc/passwd")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("hardlink target \"../../../../etc/passwd\": escapes the layer")));
  // An absolute target is a path in the layer, where there is no etc/passwd.
  EXPECT_THAT(Unpack({Hardlink("pw", "/etc/passwd")}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("layer entry \"pw\"")));
  EXPECT_FALSE(Exists(L("pw")));
  EXPECT_EQ(Lstat("/etc/passwd").st_nlink, passwd.st_nlink);
}

TEST_F(UnpackTest, PathThroughSymlinkStaysInsideTheLayer) {
  ASSERT_THAT(Unpack({Symlink("evil", "/"), File("evil/etc/x", "in"), Symlink("up", "../../.."),
                      File("up/y", "in too"), Dir("d"), Dir("tmp"),
                      Symlink("d/back", "../../../tmp"), File("d/back/z", "z")}),
              IsOk());
  EXPECT_EQ(Contents(L("etc/x")), "in");
  EXPECT_EQ(Contents(L("y")), "in too");
  EXPECT_EQ(Contents(L("tmp/z")), "z");
  EXPECT_TRUE(S_ISLNK(Lstat(L("evil")).st_mode));
  EXPECT_FALSE(Exists("/etc/x"));
  EXPECT_FALSE(Exists("/y"));
  EXPECT_FALSE(Exists("/tmp/z"));
}

TEST_F(UnpackTest, LastComponentSymlinkIsReplacedNotFollowed) {
  std::string outside = tmp_.Join("outside");
  ASSERT_THAT(Unpack({Symlink("link", outside), File("link", "replaced")}), IsOk());
  EXPECT_TRUE(S_ISREG(Lstat(L("link")).st_mode));
  EXPECT_FALSE(Exists(outside));
}

TEST_F(UnpackTest, DanglingSymlinkParentIsAnError) {
  EXPECT_THAT(Unpack({Symlink("gone", "/nowhere"), File("gone/x", "x")}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dangling")));
}

TEST_F(UnpackTest, LaterEntriesReplaceEarlierOnes) {
  ASSERT_THAT(Unpack({File("f", "first"), File("f", "second"), Dir("d"), File("d/child", "c"),
                      File("d", "file now"), File("s", "s"), Symlink("s", "f"), File("g", "g"),
                      Dir("g", 0700)}),
              IsOk());
  EXPECT_EQ(Contents(L("f")), "second");
  EXPECT_EQ(Contents(L("d")), "file now");
  EXPECT_EQ(ReadLink(L("s")), "f");
  EXPECT_TRUE(S_ISDIR(Lstat(L("g")).st_mode));
  EXPECT_EQ(Lstat(L("g")).st_mode & 07777, 0700u);
}

TEST_F(UnpackTest, DirectoryOverDirectoryTakesTheNewAttributes) {
  LayerEntry again = Dir("d", 0711);
  again.mtime = 42;
  ASSERT_THAT(Unpack({Dir("d", 0755), File("d/x", "x"), again}), IsOk());
  EXPECT_EQ(Lstat(L("d")).st_mode & 07777, 0711u);
  EXPECT_EQ(Lstat(L("d")).st_mtim.tv_sec, 42);
  EXPECT_EQ(Contents(L("d/x")), "x");
}

TEST_F(UnpackTest, WhiteoutsArePlainFilesWhenNotConverted) {
  ASSERT_THAT(Unpack({File(".wh.a", ""), File("d/.wh..wh..opq", "")}, Compression::kGzip,
                     {.overlay_whiteouts = false}),
              IsOk());
  EXPECT_TRUE(S_ISREG(Lstat(L(".wh.a")).st_mode));
  EXPECT_TRUE(S_ISREG(Lstat(L("d/.wh..wh..opq")).st_mode));
}

TEST_F(UnpackTest, WhiteoutNameAsDirectoryIsRejected) {
  EXPECT_THAT(Unpack({File(".wh.d/x", "")}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layer entry \".wh.d/x\"")));
}

TEST_F(UnpackTest, AufsMetadataIsSkipped) {
  ASSERT_THAT(Unpack({Dir(".wh..wh.plnk"), File(".wh..wh.plnk/1.2", "x"), File("kept", "")}),
              IsOk());
  EXPECT_FALSE(Exists(L(".wh..wh.plnk")));
  EXPECT_TRUE(Exists(L("kept")));
}

TEST_F(UnpackTest, UserXattrsKeptTrustedSkipped) {
  LayerEntry f = File("f", "x");
  f.xattrs = {{"user.origin", "berth"}, {"trusted.overlay.opaque", "y"}};
  absl::StatusOr<UnpackStats> stats = Unpack({f});
  ASSERT_THAT(stats, IsOk());
  char buf[64];
  ssize_t n = lgetxattr(L("f").c_str(), "user.origin", buf, sizeof(buf));
  ASSERT_EQ(n, 5) << strerror(errno);
  EXPECT_EQ(std::string(buf, n), "berth");
  // libarchive writes each xattr twice (SCHILY.xattr and LIBARCHIVE.xattr), and
  // reads both.
  EXPECT_GE(stats->skipped_xattrs, 1u);
}

TEST_F(UnpackTest, NonAsciiNames) {
  ASSERT_THAT(Unpack({File("caf\xc3\xa9", "x")}), IsOk());
  EXPECT_EQ(Contents(L("caf\xc3\xa9")), "x");
}

TEST_F(UnpackTest, LargeFileIsStreamed) {
  std::string data(24 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) >> 5);
  absl::StatusOr<UnpackStats> stats = Unpack({File("big", data)}, Compression::kZstd);
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->bytes, data.size());
  EXPECT_TRUE(Contents(L("big")) == data);
}

TEST_F(UnpackTest, Limits) {
  EXPECT_THAT(Unpack({File("a", "12345"), File("b", "678")}, Compression::kGzip, {.max_bytes = 7}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("layer entry \"b\"")));
  EXPECT_THAT(
      Unpack({File("a", ""), File("b", ""), File("c", "")}, Compression::kGzip, {.max_entries = 2}),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("layer entry \"c\"")));
}

TEST_F(UnpackTest, CorruptGzipIsDataLoss) {
  ASSERT_THAT(
      WriteLayer(blob_, Compression::kGzip, {File("a", std::string(100000, 'a')), File("b", "b")}),
      IsOk());
  std::string bytes = Contents(blob_);
  ASSERT_GT(bytes.size(), 64u);
  for (size_t i = 20; i < 60; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
  std::ofstream(blob_, std::ios::binary | std::ios::trunc) << bytes;
  EXPECT_THAT(UnpackLayer(blob_, layer_), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(UnpackTest, TruncatedGzipIsDataLoss) {
  ASSERT_THAT(WriteLayer(blob_, Compression::kGzip, {File("a", std::string(1 << 20, 'a'))}),
              IsOk());
  ASSERT_EQ(truncate(blob_.c_str(), 200), 0);
  EXPECT_THAT(UnpackLayer(blob_, layer_), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(UnpackTest, NotAnArchive) {
  std::ofstream(blob_) << "this is not a tar file, not gzip and not zstd either";
  EXPECT_THAT(UnpackLayer(blob_, layer_), StatusIs(absl::StatusCode::kDataLoss));
  std::ofstream(blob_, std::ios::trunc).flush();
  EXPECT_THAT(UnpackLayer(blob_, layer_), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(UnpackTest, MissingBlobOrDirNamesThePath) {
  EXPECT_THAT(UnpackLayer(tmp_.Join("nope"), layer_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(tmp_.Join("nope"))));
  ASSERT_THAT(WriteLayer(blob_, Compression::kNone, {File("a", "")}), IsOk());
  EXPECT_THAT(UnpackLayer(blob_, tmp_.Join("nodir")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(tmp_.Join("nodir"))));
}

}  // namespace
}  // namespace berth::images
