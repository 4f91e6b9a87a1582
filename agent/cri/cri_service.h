// CriService: the CRI v1 handlers as plain C++ (no gRPC types but the generated
// messages). One file per RPC beside this header: version.cc, status.cc, ...
// Each returns absl::StatusOr<Response>; the gRPC services in grpc_services.cc
// route every call here through the RpcBoundary.
//
// CRI semantics: https://github.com/kubernetes/cri-api/blob/master/pkg/apis/runtime/v1/api.proto
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "agent/cri/api.h"
#include "agent/images/images.h"
#include "agent/options.h"
#include "agent/store/db.h"

namespace berth {

class CriService {
 public:
  // Opens the state database (<root>/berth.db) and the image store
  // (<root>/images), and imports the OCI layouts of options.import_dirs.
  static absl::StatusOr<std::unique_ptr<CriService>> Create(AgentOptions options);

  absl::StatusOr<runtime::v1::VersionResponse> Version(const runtime::v1::VersionRequest& request);
  absl::StatusOr<runtime::v1::StatusResponse> Status(const runtime::v1::StatusRequest& request);

  absl::StatusOr<runtime::v1::ListImagesResponse> ListImages(
      const runtime::v1::ListImagesRequest& request);
  absl::StatusOr<runtime::v1::ImageStatusResponse> ImageStatus(
      const runtime::v1::ImageStatusRequest& request);
  absl::StatusOr<runtime::v1::PullImageResponse> PullImage(
      const runtime::v1::PullImageRequest& request);
  absl::StatusOr<runtime::v1::RemoveImageResponse> RemoveImage(
      const runtime::v1::RemoveImageRequest& request);
  absl::StatusOr<runtime::v1::ImageFsInfoResponse> ImageFsInfo(
      const runtime::v1::ImageFsInfoRequest& request);

  const AgentOptions& options() const { return options_; }
  images::ImageManager& images() { return *images_; }

 private:
  explicit CriService(AgentOptions options) : options_(std::move(options)) {}

  AgentOptions options_;
  std::unique_ptr<store::Database> db_;
  std::unique_ptr<images::ImageManager> images_;
};

// The state database's schema, one entry per version (agent/store/db.h).
const std::vector<std::string>& BerthSchema();

// An image as CRI shows it.
runtime::v1::Image ToCriImage(const images::ImageRecord& record);

// The shim binary berthd launches: --shim-path, else berth-shim beside berthd.
std::string ShimPath(const AgentOptions& options);

}  // namespace berth
