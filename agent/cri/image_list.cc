// ListImages: api.proto `rpc ListImages(ListImagesRequest) returns (ListImagesResponse)`.
// With filter.image set, only the image it names (by reference or id).
#include "agent/cri/cri_service.h"
#include "os/status.h"

namespace berth {

absl::StatusOr<runtime::v1::ListImagesResponse> CriService::ListImages(
    const runtime::v1::ListImagesRequest& request) {
  runtime::v1::ListImagesResponse response;
  const std::string& wanted = request.filter().image().image();
  if (!wanted.empty()) {
    absl::StatusOr<images::ImageRecord> r = images_->Resolve(wanted);
    if (r.ok()) *response.add_images() = ToCriImage(*r);
    return response;
  }
  for (const images::ImageRecord& r : images_->List()) *response.add_images() = ToCriImage(r);
  return response;
}

}  // namespace berth
