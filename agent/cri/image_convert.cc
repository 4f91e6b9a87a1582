// ImageRecord -> CRI Image, shared by ImageStatus and ListImages.
#include "absl/strings/numbers.h"
#include "agent/cri/cri_service.h"
#include "os/status.h"

namespace berth {

runtime::v1::Image ToCriImage(const images::ImageRecord& r) {
  runtime::v1::Image img;
  img.set_id(r.id);
  for (const std::string& t : r.repo_tags) img.add_repo_tags(t);
  for (const std::string& d : r.repo_digests) img.add_repo_digests(d);
  img.set_size(static_cast<uint64_t>(r.size));
  // The image config's User, as containerd reads it (getUserFromImage): a
  // number is the uid, a name is the username, "" sets neither; the group
  // after ':' is not CRI's concern here.
  const std::string& full = r.config.config.user;
  const std::string user = full.substr(0, full.find(':'));
  int64_t uid = 0;
  if (!user.empty() && absl::SimpleAtoi(user, &uid)) {
    img.mutable_uid()->set_value(uid);
  } else if (!user.empty()) {
    img.set_username(user);
  }
  img.mutable_spec()->set_image(r.id);
  return img;
}

}  // namespace berth
