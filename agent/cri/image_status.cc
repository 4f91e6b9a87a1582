// ImageStatus: api.proto `rpc ImageStatus(ImageStatusRequest) returns (ImageStatusResponse)`.
// "If the image is not present, returns a response with ImageStatusResponse.Image
// set to nil" — not an error.
#include "absl/strings/str_cat.h"
#include "agent/cri/cri_service.h"
#include "nlohmann/json.hpp"
#include "os/status.h"

namespace berth {

absl::StatusOr<runtime::v1::ImageStatusResponse> CriService::ImageStatus(
    const runtime::v1::ImageStatusRequest& request) {
  const std::string& image = request.image().image();
  if (image.empty()) return absl::InvalidArgumentError("image.image is empty");
  runtime::v1::ImageStatusResponse response;
  absl::StatusOr<images::ImageRecord> r = images_->Resolve(image);
  if (absl::IsNotFound(r.status())) return response;
  if (!r.ok()) return r.status();
  *response.mutable_image() = ToCriImage(*r);
  if (request.verbose()) {
    nlohmann::json info = {{"id", r->id},
                           {"manifestDigest", r->manifest_digest},
                           {"chainIds", r->chain_ids},
                           {"layers", r->layers},
                           {"imageSpec", nlohmann::json::parse(r->config_json, nullptr, false)}};
    (*response.mutable_info())["info"] = info.dump();
  }
  return response;
}

}  // namespace berth
