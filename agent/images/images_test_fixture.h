// ImagesTest: an ImageManager on a temp dir with a real registry on loopback
// (Debian's docker-registry) and helpers that build layers; root only, since
// layers hold whiteout device nodes. Shared by the images root tests.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "agent/images/images.h"
#include "agent/images/registry_testing.h"
#include "agent/images/unpack_testing.h"
#include "agent/rootfs/overlay.h"
#include "os/files.h"
#include "tests/support/berthd_process.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::images {

using namespace ::berth::images::testing;  // NOLINT: the image-building helpers

inline bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

class ImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (whiteouts are device nodes)";
    ASSERT_EQ(mkdir(dir_.Join("registry").c_str(), 0755), 0);
    absl::StatusOr<std::unique_ptr<TestRegistry>> reg =
        TestRegistry::Start(dir_.Join("registry"), {});
    ASSERT_THAT(reg, ::berth::testing::IsOk());
    registry_ = *std::move(reg);
    absl::StatusOr<store::Database> db =
        store::Database::Open(dir_.Join("berth.db"), {kImagesSchemaV1, kImagesSchemaV2});
    ASSERT_THAT(db, ::berth::testing::IsOk());
    db_ = std::make_unique<store::Database>(*std::move(db));
    ASSERT_EQ(mkdir(dir_.Join("hosts").c_str(), 0755), 0);
    OpenManager();
  }

  void TearDown() override {
    for (const std::string& m : mounted_) (void)rootfs::RemoveContainerRootfs(m);
  }

  // `boot_id` "" is this boot's; `flush_behind` false leaves pulls unflushed.
  void OpenManager(const std::string& boot_id = "", bool flush_behind = true,
                   uint64_t max_layer_bytes = 0, uint64_t max_layer_entries = 0) {
    images_.reset();
    absl::StatusOr<std::unique_ptr<ImageManager>> m =
        ImageManager::Open(ImageManagerOptions{.root = dir_.Join("images"),
                                               .hosts_dir = dir_.Join("hosts"),
                                               .boot_id = boot_id,
                                               .flush_behind = flush_behind,
                                               .max_layer_bytes = max_layer_bytes,
                                               .max_layer_entries = max_layer_entries},
                           db_.get());
    ASSERT_THAT(m, ::berth::testing::IsOk());
    images_ = *std::move(m);
  }

  // A gzip layer of `entries`, as a registry stores it.
  std::string Layer(const std::string& name, const std::vector<LayerEntry>& entries) {
    const std::string tar = dir_.Join(name + ".tar");
    EXPECT_THAT(WriteLayer(tar, Compression::kNone, entries), ::berth::testing::IsOk());
    EXPECT_EQ(berth::testing::Shell(absl::StrCat("gzip -n -f ", tar)), 0);
    absl::StatusOr<std::string> tgz = ReadFile(tar + ".gz");
    EXPECT_THAT(tgz, ::berth::testing::IsOk());
    return tgz.ok() ? *tgz : "";
  }

  // A layer of `entries` in `compression` (tar, tar.gz or tar.zst bytes).
  std::string LayerIn(const std::string& name, Compression compression,
                      const std::vector<LayerEntry>& entries) {
    const std::string path = dir_.Join(name + ".layer");
    EXPECT_THAT(WriteLayer(path, compression, entries), ::berth::testing::IsOk());
    absl::StatusOr<std::string> bytes = ReadFile(path);
    EXPECT_THAT(bytes, ::berth::testing::IsOk());
    return bytes.ok() ? *bytes : "";
  }

  // Debian's busybox-static plus a few files of our own.
  std::string Base() {
    absl::StatusOr<std::string> busybox = ReadFile("/bin/busybox");
    EXPECT_THAT(busybox, ::berth::testing::IsOk());
    return Layer("base",
                 {Dir("bin"), File("bin/busybox", busybox.ok() ? *busybox : "", 0755),
                  Symlink("bin/sh", "busybox"), File("bin/hello", "#!/bin/sh\necho hi\n", 0755),
                  Dir("etc"), File("etc/a", "a\n"), File("etc/b", "b\n"), Dir("dir"),
                  File("dir/x", "x\n"), File("dir/keep", "k\n")});
  }
  // Deletes etc/a and makes dir opaque with only y in it.
  std::string Upper() {
    return Layer("upper", {Dir("etc"), File("etc/.wh.a", ""), Dir("dir"),
                           File("dir/.wh..wh..opq", ""), File("dir/y", "y\n")});
  }

  std::string Ref(const std::string& rest) { return registry_->host() + "/" + rest; }

  // The merged view of `image`'s layers, mounted under the test dir.
  std::string Mount(const ImageRecord& image) {
    const std::string dir = dir_.Join(absl::StrCat("ctr", mounted_.size()));
    EXPECT_EQ(mkdir(dir.c_str(), 0755), 0);
    absl::StatusOr<std::string> root =
        rootfs::CreateContainerRootfs(dir, images_->LayerDirs(image));
    EXPECT_THAT(root, ::berth::testing::IsOk());
    mounted_.push_back(dir);
    return root.ok() ? *root : "";
  }

  berth::testing::TempDir dir_;
  std::unique_ptr<TestRegistry> registry_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<ImageManager> images_;
  std::vector<std::string> mounted_;
};

}  // namespace berth::images
