// RemoveImage: api.proto `rpc RemoveImage(RemoveImageRequest) returns (RemoveImageResponse)`.
// "This call is idempotent, and must not return an error if the image has
// already been removed." Removing by one tag removes the image and all its
// tags, as containerd does (crictl rmi).
#include "agent/cri/cri_service.h"
#include "os/status.h"

namespace berth {

absl::StatusOr<runtime::v1::RemoveImageResponse> CriService::RemoveImage(
    const runtime::v1::RemoveImageRequest& request) {
  const std::string& image = request.image().image();
  if (image.empty()) return absl::InvalidArgumentError("image.image is empty");
  BERTH_RETURN_IF_ERROR(images_->Remove(image));
  return runtime::v1::RemoveImageResponse();
}

}  // namespace berth
