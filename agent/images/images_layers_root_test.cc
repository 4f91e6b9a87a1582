// Layers as real registries hold them: uncompressed (what many build tools
// push), gzip and zstd, under OCI and Docker schema-2 media types, behind an
// OCI index or a Docker manifest list; and pulls that end when their client
// goes. An uncompressed base layer once deadlocked the store: its blob digest
// is its chain id, and a pull claimed both.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "agent/images/images_test_fixture.h"
#include "os/unique_fd.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Cancelled once `deadline` passes, as a gRPC call's context is.
Cancelled Until(absl::Time deadline) {
  return [deadline] { return absl::Now() > deadline; };
}

class LayerFormatsTest : public ImagesTest {
 protected:
  // One tar (busybox and a file), then compressed with Debian's gzip and zstd:
  // the three blobs share one diff id.
  void SetUp() override {
    ImagesTest::SetUp();
    if (IsSkipped()) return;
    absl::StatusOr<std::string> busybox = ReadFile("/bin/busybox");
    ASSERT_THAT(busybox, IsOk());
    tar_ = LayerIn("base", Compression::kNone,
                   {Dir("bin"), File("bin/busybox", *busybox, 0755), Symlink("bin/sh", "busybox"),
                    Dir("etc"), File("etc/os", "base\n")});
    gzip_ = Squeeze("gzip -n -c");
    zstd_ = Squeeze("zstd -q -c");
    upper_zstd_ = LayerIn("upper", Compression::kZstd, {Dir("etc"), File("etc/upper", "zstd\n")});
  }

  std::string Squeeze(const std::string& command) {
    const std::string in = dir_.Join("squeeze.tar"), out = dir_.Join("squeezed");
    berth::testing::WriteFileOrDie(in, tar_);
    EXPECT_EQ(berth::testing::Shell(absl::StrCat(command, " ", in, " > ", out)), 0);
    absl::StatusOr<std::string> bytes = ReadFile(out);
    return bytes.ok() ? *bytes : "";
  }

  std::string tar_, gzip_, zstd_, upper_zstd_;
};

TEST_F(LayerFormatsTest, AnUncompressedBaseLayerPullsThenAGzipImageSharingIt) {
  absl::StatusOr<PushedImage> raw = registry_->PushImage(
      "library/raw", "v1", {TestLayer{tar_, BlobCompression::kNone}}, PushOptions{});
  ASSERT_THAT(raw, IsOk());
  ASSERT_EQ(raw->layer_digests[0], raw->diff_ids[0]);  // the case that deadlocked
  absl::StatusOr<PushedImage> gz = registry_->PushImage(
      "library/gz", "v1",
      {TestLayer{gzip_, BlobCompression::kGzip}, TestLayer{upper_zstd_, BlobCompression::kZstd}},
      PushOptions{});
  ASSERT_THAT(gz, IsOk());

  const absl::Time begin = absl::Now();
  absl::StatusOr<ImageRecord> a =
      images_->Pull(Ref("library/raw:v1"), {}, Until(absl::Now() + absl::Seconds(30)));
  ASSERT_THAT(a, IsOk());
  absl::StatusOr<ImageRecord> b =
      images_->Pull(Ref("library/gz:v1"), {}, Until(absl::Now() + absl::Seconds(30)));
  ASSERT_THAT(b, IsOk());
  EXPECT_LT(absl::Now() - begin, absl::Seconds(5));
  EXPECT_EQ(a->chain_ids[0], b->chain_ids[0]);  // one layer dir for both
  const std::string root = Mount(*b);
  EXPECT_TRUE(Exists(root + "/bin/busybox"));
  absl::StatusOr<std::string> upper = ReadFile(root + "/etc/upper");
  ASSERT_THAT(upper, IsOk());
  EXPECT_EQ(*upper, "zstd\n");
  // Pulled again, each in turn: nothing was left claimed.
  ASSERT_THAT(images_->Remove(a->id), IsOk());
  EXPECT_THAT(images_->Pull(Ref("library/raw:v1"), {}, Until(absl::Now() + absl::Seconds(30))),
              IsOk());
}

TEST_F(LayerFormatsTest, DockerSchema2ManifestListWithEveryCompression) {
  PushOptions docker{.docker = true};
  absl::StatusOr<PushedImage> amd = registry_->PushImage(
      "library/docker", "amd",
      {TestLayer{zstd_, BlobCompression::kZstd}, TestLayer{upper_zstd_, BlobCompression::kZstd}},
      docker);
  ASSERT_THAT(amd, IsOk());
  PushOptions arm = docker;
  arm.arch = "arm64";
  absl::StatusOr<PushedImage> other =
      registry_->PushImage("library/docker", "arm", {TestLayer{tar_, BlobCompression::kNone}}, arm);
  ASSERT_THAT(other, IsOk());
  ASSERT_THAT(registry_->PushIndex("library/docker", "v1", {*amd, *other}, {"amd64", "arm64"},
                                   /*docker=*/true),
              IsOk());
  absl::StatusOr<ImageRecord> img =
      images_->Pull(Ref("library/docker:v1"), {}, Until(absl::Now() + absl::Seconds(30)));
  ASSERT_THAT(img, IsOk());
  EXPECT_EQ(img->id, amd->config_digest);
  const std::string root = Mount(*img);
  EXPECT_TRUE(Exists(root + "/bin/busybox"));
  EXPECT_TRUE(Exists(root + "/etc/upper"));
}

// A registry that answers the manifest and config, then sends half of a
// layer and stalls (a wedged CDN, a dead proxy): the pull must end when its
// client gives up, and free what it claimed.
class StallingRegistry {
 public:
  // `oversize`: instead of stalling, the layer comes whole and then 1 MiB
  // more than the manifest declares (a hostile or broken registry).
  StallingRegistry(std::string manifest, std::string config_digest, std::string config,
                   std::string layer, bool oversize = false)
      : manifest_(std::move(manifest)),
        config_digest_(std::move(config_digest)),
        config_(std::move(config)),
        layer_(std::move(layer)),
        oversize_(oversize) {
    listener_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(listener_.get(), 16) != 0 ||
        getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "listen: " << strerror(errno);
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~StallingRegistry() {
    stop_ = true;
    shutdown(listener_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int stalled() const { return stalled_.load(); }

 private:
  void Serve() {
    std::vector<UniqueFd> held;  // stalled connections stay open until the end
    while (!stop_) {
      UniqueFd c(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) return;
      std::string req;
      char buf[4096];
      while (!absl::StrContains(req, "\r\n\r\n")) {
        ssize_t n = read(c.get(), buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      const std::string path = req.substr(4, req.find(' ', 4) - 4);
      if (absl::StrContains(path, "/manifests/")) {
        Send(c, "application/vnd.oci.image.manifest.v1+json", manifest_, manifest_.size());
      } else if (absl::EndsWith(path, config_digest_)) {
        Send(c, "application/octet-stream", config_, config_.size());
      } else if (oversize_) {
        const std::string more = layer_ + std::string(1 << 20, 'x');
        Send(c, "application/octet-stream", more, more.size());
      } else {
        Send(c, "application/octet-stream", layer_.substr(0, layer_.size() / 2), layer_.size());
        ++stalled_;
        held.push_back(std::move(c));
      }
    }
  }
  static void Send(const UniqueFd& c, const std::string& type, const std::string& body,
                   size_t length) {
    const std::string head = absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: ", type,
                                          "\r\nContent-Length: ", length, "\r\n\r\n");
    const std::string out = head + body;
    (void)!write(c.get(), out.data(), out.size());
  }

  std::string manifest_, config_digest_, config_, layer_;
  bool oversize_ = false;
  UniqueFd listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> stalled_{0};
  std::thread thread_;
};

TEST_F(LayerFormatsTest, ACancelledPullEndsAndFreesItsClaimsForTheNext) {
  absl::StatusOr<PushedImage> raw = registry_->PushImage(
      "library/raw", "v1", {TestLayer{tar_, BlobCompression::kNone}}, PushOptions{});
  ASSERT_THAT(raw, IsOk());
  const std::string cfg_path =
      absl::StrCat(registry_->storage(), "/docker/registry/v2/blobs/sha256/",
                   raw->config_digest.substr(7, 2), "/", raw->config_digest.substr(7), "/data");
  absl::StatusOr<std::string> cfg = ReadFile(cfg_path);
  ASSERT_THAT(cfg, IsOk());
  StallingRegistry stall(raw->manifest, raw->config_digest, *cfg, tar_);

  // The stalled pull holds the layer while a second pull of the same content
  // from the good registry waits for it; the first ends at its deadline, the
  // second then goes on and succeeds.
  const absl::Time begin = absl::Now();
  auto stalled = std::async(std::launch::async, [&] {
    return images_->Pull(stall.host() + "/library/raw:v1", {},
                         Until(absl::Now() + absl::Seconds(2)));
  });
  for (int i = 0; i < 500 && stall.stalled() == 0; ++i) usleep(10000);
  ASSERT_EQ(stall.stalled(), 1);
  absl::StatusOr<ImageRecord> good =
      images_->Pull(Ref("library/raw:v1"), {}, Until(absl::Now() + absl::Seconds(30)));
  absl::StatusOr<ImageRecord> cancelled = stalled.get();
  EXPECT_THAT(cancelled, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(absl::Now() - begin, absl::Seconds(10));
  ASSERT_THAT(good, IsOk());
  EXPECT_THAT(good->repo_tags, ElementsAre(Ref("library/raw:v1")));
  // The cancelled pull left no temp dir and no image.
  absl::StatusOr<std::vector<std::string>> layers = ListDir(dir_.Join("images/layers"));
  ASSERT_THAT(layers, IsOk());
  for (const std::string& l : *layers) EXPECT_FALSE(absl::StartsWith(l, "tmp-")) << l;
  EXPECT_EQ(images_->List().size(), 1u);
}

TEST_F(LayerFormatsTest, ABlobPastItsDeclaredSizeFailsThePullAndLeavesNothing) {
  absl::StatusOr<PushedImage> raw = registry_->PushImage(
      "library/raw", "v1", {TestLayer{tar_, BlobCompression::kNone}}, PushOptions{});
  ASSERT_THAT(raw, IsOk());
  absl::StatusOr<std::string> cfg = ReadFile(
      absl::StrCat(registry_->storage(), "/docker/registry/v2/blobs/sha256/",
                   raw->config_digest.substr(7, 2), "/", raw->config_digest.substr(7), "/data"));
  ASSERT_THAT(cfg, IsOk());
  StallingRegistry big(raw->manifest, raw->config_digest, *cfg, tar_, /*oversize=*/true);
  EXPECT_THAT(
      images_->Pull(big.host() + "/library/raw:v1", {}, Until(absl::Now() + absl::Seconds(30))),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("more than its declared")));
  EXPECT_FALSE(Exists(dir_.Join("images/content/blobs/sha256/" + raw->layer_digests[0].substr(7))));
  absl::StatusOr<std::vector<std::string>> layers = ListDir(dir_.Join("images/layers"));
  ASSERT_THAT(layers, IsOk());
  for (const std::string& l : *layers) EXPECT_FALSE(absl::StartsWith(l, "tmp-")) << l;
  EXPECT_TRUE(images_->List().empty());
}

// A gzip bomb: 16 KiB that unpack to 16 MiB, against a 1 MiB limit; and a
// layer of more files than allowed. Each fails its pull naming the limit and
// leaves no layer behind (the small compressed blob stays in the content
// store, verified, until the next garbage collection).
TEST_F(LayerFormatsTest, ADecompressionBombFailsThePullAndLeavesNoLayer) {
  OpenManager("", true, /*max_layer_bytes=*/1 << 20, /*max_layer_entries=*/1000);
  const std::string bomb =
      LayerIn("bomb", Compression::kGzip, {File("zeros", std::string(16 << 20, '\0'))});
  ASSERT_LT(bomb.size(), 100000u);
  ASSERT_THAT(registry_->PushImage("library/bomb", "v1", {TestLayer{bomb, BlobCompression::kGzip}},
                                   PushOptions{}),
              IsOk());
  std::vector<LayerEntry> files;
  for (int i = 0; i < 1500; ++i) files.push_back(File("f" + std::to_string(i), "x"));
  ASSERT_THAT(registry_->PushImage(
                  "library/many", "v1",
                  {TestLayer{LayerIn("many", Compression::kGzip, files), BlobCompression::kGzip}},
                  PushOptions{}),
              IsOk());
  for (const char* ref : {"library/bomb:v1", "library/many:v1"}) {
    EXPECT_THAT(images_->Pull(Ref(ref), {}, Until(absl::Now() + absl::Seconds(30))),
                StatusIs(absl::StatusCode::kResourceExhausted))
        << ref;
  }
  absl::StatusOr<std::vector<std::string>> layers = ListDir(dir_.Join("images/layers"));
  ASSERT_THAT(layers, IsOk());
  EXPECT_TRUE(layers->empty()) << layers->front();
  EXPECT_TRUE(images_->List().empty());
  // Within the limits, the same manager pulls.
  ASSERT_THAT(
      registry_->PushImage("library/small", "v1",
                           {TestLayer{LayerIn("small", Compression::kGzip, {File("a", "a")}),
                                      BlobCompression::kGzip}},
                           PushOptions{}),
      IsOk());
  EXPECT_THAT(images_->Pull(Ref("library/small:v1"), {}, Until(absl::Now() + absl::Seconds(30))),
              IsOk());
}

// The highest thread count of this process while `run` runs.
int PeakThreads(const std::function<void()>& run) {
  std::atomic<bool> done{false};
  std::atomic<int> peak{0};
  std::thread sampler([&] {
    do {
      std::ifstream in("/proc/self/status");
      for (std::string line; std::getline(in, line);) {
        if (absl::StartsWith(line, "Threads:")) {
          peak = std::max(peak.load(), std::atoi(line.c_str() + 8));
        }
      }
      usleep(2000);
    } while (!done);
  });
  run();
  done = true;
  sampler.join();
  return peak;
}

// At 6d1084a every layer had a thread of its own from the start (std::async
// before the semaphore): 20,000 layers, 20,000 threads, and TasksMax - which
// the shims share - ran out node-wide.
TEST_F(LayerFormatsTest, AManifestOfManyLayersUsesAFewThreads) {
  constexpr int kLayers = 300;
  std::vector<TestLayer> layers;
  const std::string tiny = LayerIn("tiny", Compression::kNone, {File("f", "x")});
  for (int i = 0; i < kLayers; ++i) layers.push_back({tiny, BlobCompression::kNone});
  ASSERT_THAT(registry_->PushImage("library/many", "v1", layers, PushOptions{}), IsOk());
  const int before = PeakThreads([] {});
  absl::StatusOr<ImageRecord> img;
  const int peak = PeakThreads([&] {
    img = images_->Pull(Ref("library/many:v1"), {}, Until(absl::Now() + absl::Seconds(120)));
  });
  ASSERT_THAT(img, IsOk());
  EXPECT_EQ(img->chain_ids.size(), static_cast<size_t>(kLayers));
  std::cout << "threads: " << before << " before, " << peak << " at most while pulling " << kLayers
            << " layers\n";
  EXPECT_LT(peak - before, 20);
}

}  // namespace
}  // namespace berth::images
