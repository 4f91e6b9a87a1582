// The CRI ImageService of a real berthd against a real registry (Debian's
// docker-registry on loopback): PullImage, ImageStatus, ListImages,
// RemoveImage, ImageFsInfo over the unix socket, and --import of the demo image.
#include <gmock/gmock.h>
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cri/api.h"
#include "agent/images/registry_testing.h"
#include "agent/images/unpack_testing.h"
#include "os/files.h"
#include "os/unique_fd.h"
#include "tests/support/berthd_process.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth {
namespace {

namespace v1 = runtime::v1;
using ::berth::testing::BerthdProcess;
using ::berth::testing::IsOk;
using ::berth::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ImagesE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(berth::testing::Shell("mkdir -p " + dir_.Join("registry")), 0);
    auto reg = images::testing::TestRegistry::Start(dir_.Join("registry"), {});
    ASSERT_THAT(reg, IsOk());
    registry_ = *std::move(reg);
    const std::string tar = dir_.Join("layer.tar");
    ASSERT_THAT(images::testing::WriteLayer(
                    tar, images::testing::Compression::kNone,
                    {images::testing::Dir("etc"), images::testing::File("etc/hello", "hi\n")}),
                IsOk());
    ASSERT_EQ(berth::testing::Shell("gzip -n " + tar), 0);
    absl::StatusOr<std::string> tgz = ReadFile(tar + ".gz");
    ASSERT_THAT(tgz, IsOk());
    auto pushed = registry_->PushImage("library/hello", "v1", {*tgz});
    ASSERT_THAT(pushed, IsOk());
    config_digest_ = pushed->config_digest;
    ASSERT_THAT(berthd_.Start({"--registry-config-dir=" + dir_.Join("registries")}), IsOk());
    stub_ = v1::ImageService::NewStub(berthd_.Channel());
  }

  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return ctx;
  }

  TempDir dir_;
  std::unique_ptr<images::testing::TestRegistry> registry_;
  std::string config_digest_;
  BerthdProcess berthd_{dir_};
  std::unique_ptr<v1::ImageService::Stub> stub_;
};

TEST_F(ImagesE2eTest, PullStatusListFsInfoRemove) {
  const std::string ref = registry_->host() + "/library/hello:v1";
  v1::PullImageRequest pull;
  pull.mutable_image()->set_image(ref);
  v1::PullImageResponse pulled;
  grpc::Status s = stub_->PullImage(Ctx().get(), pull, &pulled);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(pulled.image_ref(), config_digest_);

  v1::ImageStatusRequest status;
  status.mutable_image()->set_image(ref);
  status.set_verbose(true);
  v1::ImageStatusResponse st;
  ASSERT_TRUE(stub_->ImageStatus(Ctx().get(), status, &st).ok());
  EXPECT_EQ(st.image().id(), config_digest_);
  EXPECT_THAT(st.image().repo_tags(), ElementsAre(ref));
  ASSERT_EQ(st.image().repo_digests_size(), 1);
  EXPECT_THAT(st.image().repo_digests(0), StartsWith(registry_->host() + "/library/hello@sha256:"));
  EXPECT_EQ(st.image().uid().value(), 1000);  // the config's User "1000:1000"
  EXPECT_GT(st.image().size(), 0u);
  EXPECT_THAT(st.info().at("info"), HasSubstr("\"imageSpec\""));

  // An image that is not there: an empty answer, not an error (api.proto).
  status.mutable_image()->set_image("not/there:v9");
  st.Clear();
  ASSERT_TRUE(stub_->ImageStatus(Ctx().get(), status, &st).ok());
  EXPECT_FALSE(st.has_image());

  v1::ListImagesResponse list;
  ASSERT_TRUE(stub_->ListImages(Ctx().get(), v1::ListImagesRequest(), &list).ok());
  ASSERT_EQ(list.images_size(), 1);
  v1::ListImagesRequest filtered;
  filtered.mutable_filter()->mutable_image()->set_image(config_digest_.substr(7, 12));
  list.Clear();
  ASSERT_TRUE(stub_->ListImages(Ctx().get(), filtered, &list).ok());
  EXPECT_EQ(list.images_size(), 1);

  v1::ImageFsInfoResponse fs;
  ASSERT_TRUE(stub_->ImageFsInfo(Ctx().get(), v1::ImageFsInfoRequest(), &fs).ok());
  ASSERT_EQ(fs.image_filesystems_size(), 1);
  EXPECT_EQ(fs.image_filesystems(0).fs_id().mountpoint(), berthd_.root_dir() + "/images");
  EXPECT_GT(fs.image_filesystems(0).used_bytes().value(), 0u);
  EXPECT_GT(fs.image_filesystems(0).inodes_used().value(), 0u);

  v1::RemoveImageRequest remove;
  remove.mutable_image()->set_image(ref);
  v1::RemoveImageResponse removed;
  ASSERT_TRUE(stub_->RemoveImage(Ctx().get(), remove, &removed).ok());
  ASSERT_TRUE(stub_->RemoveImage(Ctx().get(), remove, &removed).ok());  // idempotent
  list.Clear();
  ASSERT_TRUE(stub_->ListImages(Ctx().get(), v1::ListImagesRequest(), &list).ok());
  EXPECT_EQ(list.images_size(), 0);
}

TEST_F(ImagesE2eTest, BadPullsAreClearErrors) {
  v1::PullImageRequest pull;
  v1::PullImageResponse pulled;
  grpc::Status s = stub_->PullImage(Ctx().get(), pull, &pulled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("image.image"));
  pull.mutable_image()->set_image(registry_->host() + "/library/hello:nope");
  s = stub_->PullImage(Ctx().get(), pull, &pulled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("/v2/library/hello/manifests/nope"));
  pull.mutable_image()->set_image("library/UPPER");  // repository names are lowercase
  s = stub_->PullImage(Ctx().get(), pull, &pulled);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// An uncompressed base layer (what many build tools push) once deadlocked
// the store: the pull hung forever, then every pull sharing the layer, and
// SIGTERM never ended berthd. A pull cut off by its client's deadline must
// end too, and free what it held.
TEST_F(ImagesE2eTest, UncompressedThenGzipSharingTheLayerAndADeadlineEndsAPull) {
  const std::string tar = dir_.Join("base.tar");
  ASSERT_THAT(images::testing::WriteLayer(
                  tar, images::testing::Compression::kNone,
                  {images::testing::Dir("etc"), images::testing::File("etc/base", "raw\n")}),
              IsOk());
  absl::StatusOr<std::string> raw = ReadFile(tar);
  ASSERT_THAT(raw, IsOk());
  ASSERT_EQ(berth::testing::Shell("gzip -n -k " + tar), 0);
  absl::StatusOr<std::string> tgz = ReadFile(tar + ".gz");
  ASSERT_THAT(tgz, IsOk());
  using images::testing::BlobCompression;
  ASSERT_THAT(registry_->PushImage("library/raw", "v1", {{*raw, BlobCompression::kNone}}, {}),
              IsOk());
  ASSERT_THAT(registry_->PushImage("library/gz", "v1", {{*tgz, BlobCompression::kGzip}}, {}),
              IsOk());
  for (const char* repo : {"library/raw:v1", "library/gz:v1"}) {
    v1::PullImageRequest pull;
    pull.mutable_image()->set_image(registry_->host() + "/" + repo);
    v1::PullImageResponse pulled;
    const absl::Time begin = absl::Now();
    grpc::Status s = stub_->PullImage(Ctx().get(), pull, &pulled);
    ASSERT_TRUE(s.ok()) << repo << ": " << s.error_message();
    std::cout << "pull " << repo << ": " << absl::ToDoubleMilliseconds(absl::Now() - begin)
              << " ms\n";
  }

  // A registry that takes the connection and never answers.
  UniqueFd silent(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(bind(silent.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(silent.get(), 8), 0);
  ASSERT_EQ(getsockname(silent.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  v1::PullImageRequest pull;
  pull.mutable_image()->set_image(absl::StrCat("127.0.0.1:", ntohs(a.sin_port), "/library/x:v1"));
  v1::PullImageResponse pulled;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  EXPECT_EQ(stub_->PullImage(&ctx, pull, &pulled).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  // The cancelled pull ends inside berthd too: a graceful stop does not wait
  // out curl's minute-long stall timeout.
  const absl::Time stop = absl::Now();
  absl::StatusOr<int> code = berthd_.Stop(SIGTERM, absl::Seconds(20));
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(absl::Now() - stop, absl::Seconds(10)) << berthd_.Log();
}

TEST(ImagesImportTest, TheDemoImageIsImportedAtStart) {
  TempDir dir;
  ASSERT_EQ(berth::testing::Shell(absl::StrCat(BERTH_SOURCE_DIR, "/deploy/demo-image.sh ",
                                               dir.Join("demo"), " >/dev/null")),
            0);
  BerthdProcess berthd(dir);
  ASSERT_THAT(berthd.Start({"--import=" + dir.Join("demo")}), IsOk());
  auto stub = v1::ImageService::NewStub(berthd.Channel());
  v1::ImageStatusRequest req;
  req.mutable_image()->set_image("berth/demo");
  v1::ImageStatusResponse st;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->ImageStatus(&ctx, req, &st).ok());
  ASSERT_TRUE(st.has_image()) << berthd.Log();
  EXPECT_THAT(st.image().repo_tags(), ElementsAre("docker.io/berth/demo:latest"));
}

}  // namespace
}  // namespace berth
