// PullImage: api.proto `rpc PullImage(PullImageRequest) returns (PullImageResponse)`.
// image_ref is the image id (the config digest), as containerd answers and as
// Image.id and Container.image_id must equal.
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cri/cri_service.h"
#include "os/status.h"

namespace berth {

absl::StatusOr<runtime::v1::PullImageResponse> CriService::PullImage(
    const runtime::v1::PullImageRequest& request, const images::Cancelled& cancelled) {
  const std::string& image = request.image().image();
  if (image.empty()) return absl::InvalidArgumentError("image.image is empty");
  images::Credentials creds;
  const runtime::v1::AuthConfig& auth = request.auth();
  creds.username = auth.username();
  creds.password = auth.password();
  creds.identity_token = auth.identity_token();
  creds.registry_token = auth.registry_token();
  if (!auth.auth().empty()) {
    // "auth" is base64("user:password"), as in docker's config.json.
    std::string decoded;
    if (!absl::Base64Unescape(auth.auth(), &decoded) || decoded.find(':') == std::string::npos) {
      return absl::InvalidArgumentError("auth.auth is not base64 of \"user:password\"");
    }
    creds.username = decoded.substr(0, decoded.find(':'));
    creds.password = decoded.substr(decoded.find(':') + 1);
  }
  const absl::Time begin = absl::Now();
  absl::StatusOr<images::ImageRecord> r = images_->Pull(image, creds, cancelled);
  if (agent_metrics_ != nullptr) {
    agent_metrics_->ImagePulled(r.ok() ? static_cast<uint64_t>(r->size) : 0, absl::Now() - begin,
                                r.ok());
  }
  if (!r.ok()) return r.status();
  runtime::v1::PullImageResponse response;
  response.set_image_ref(r->id);
  return response;
}

}  // namespace berth
