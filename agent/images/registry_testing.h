// A real registry for tests: Debian's docker-registry (distribution 2.8) on
// 127.0.0.1:<free port> with its storage in a temp dir, plus what tests need
// around it: pushing blobs, manifests and whole images through the
// distribution API, corrupting a stored blob, and (optionally) token auth with
// a tiny token endpoint that signs RS256 JWTs the registry trusts.
//
//   BERTH_ASSIGN_OR_RETURN(auto reg, TestRegistry::Start(dir.Join("registry"), {}));
//   BERTH_ASSIGN_OR_RETURN(PushedImage img, reg->PushImage("library/busybox", "latest",
//                                                           {layer_tgz}, "amd64"));
//   // pull "127.0.0.1:<port>/library/busybox:latest" ...
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "os/unique_fd.h"

namespace berth::images::testing {

struct TestRegistryOptions {
  // The registry demands a bearer token from our token endpoint, which hands
  // one out to anyone (anonymous pull, as Docker Hub does).
  bool token_auth = false;
};

// A layer as pushed: its blob bytes and how they are compressed.
enum class BlobCompression { kNone, kGzip, kZstd };
struct TestLayer {
  std::string blob;
  BlobCompression compression = BlobCompression::kGzip;
};

struct PushOptions {
  std::string arch = "amd64";
  // Docker's schema 2 media types (what `docker push` sends) instead of OCI's.
  bool docker = false;
};

struct PushedImage {
  std::string manifest_digest;
  std::string config_digest;
  std::vector<std::string> layer_digests;  // compressed blobs
  std::vector<std::string> diff_ids;       // uncompressed
  std::string manifest;                    // the JSON pushed
};

class TestRegistry {
 public:
  static absl::StatusOr<std::unique_ptr<TestRegistry>> Start(const std::string& dir,
                                                             const TestRegistryOptions& options);
  ~TestRegistry();

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& storage() const { return storage_; }
  int token_requests() const { return token_requests_.load(); }

  absl::StatusOr<std::string> PushBlob(const std::string& repo, const std::string& bytes);
  absl::StatusOr<std::string> PushManifest(const std::string& repo, const std::string& reference,
                                           const std::string& media_type, const std::string& body);
  // An OCI image of gzip layers (tar.gz bytes, bottom first) for linux/`arch`.
  absl::StatusOr<PushedImage> PushImage(const std::string& repo, const std::string& tag,
                                        const std::vector<std::string>& layers_tgz,
                                        const std::string& arch = "amd64");
  // An image of `layers` in any compression, with OCI or Docker media types.
  absl::StatusOr<PushedImage> PushImage(const std::string& repo, const std::string& tag,
                                        const std::vector<TestLayer>& layers,
                                        const PushOptions& options);
  // An OCI index (or, `docker`, a Docker manifest list) naming `manifests`
  // (digest, size, arch) under `tag`.
  absl::StatusOr<std::string> PushIndex(const std::string& repo, const std::string& tag,
                                        const std::vector<PushedImage>& images,
                                        const std::vector<std::string>& arches,
                                        bool docker = false);
  // Overwrites a stored blob's bytes in the registry's storage (same size).
  absl::Status CorruptBlob(const std::string& digest);

 private:
  TestRegistry() = default;
  absl::Status Request(const std::string& method, const std::string& url,
                       const std::string& content_type, const std::string& body, long want,
                       std::string* location, std::string* digest);
  void ServeTokens();
  // A JWT for `scope` ("repository:<name>:<actions>"), signed as the registry expects.
  absl::StatusOr<std::string> MintToken(const std::string& scope, const std::string& subject);

  int port_ = 0;
  pid_t pid_ = -1;
  std::string dir_, storage_;
  // Token endpoint (token_auth).
  UniqueFd token_listener_;
  int token_port_ = 0;
  std::string jwt_header_b64_;  // {"alg":"RS256","x5c":[...]}
  std::string key_path_;
  std::thread token_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> token_requests_{0};
  std::atomic<int> jti_{0};
};

}  // namespace berth::images::testing
