// ImageFsInfo: api.proto `rpc ImageFsInfo(ImageFsInfoRequest) returns (ImageFsInfoResponse)`.
// What the image store (blobs and unpacked layers) occupies, and where.
#include "absl/time/clock.h"
#include "agent/cri/cri_service.h"
#include "os/status.h"

namespace berth {

absl::StatusOr<runtime::v1::ImageFsInfoResponse> CriService::ImageFsInfo(
    const runtime::v1::ImageFsInfoRequest& request) {
  BERTH_ASSIGN_OR_RETURN(images::StoreUsage usage, images_->Usage());
  runtime::v1::ImageFsInfoResponse response;
  runtime::v1::FilesystemUsage* fs = response.add_image_filesystems();
  fs->set_timestamp(absl::ToUnixNanos(absl::Now()));
  fs->mutable_fs_id()->set_mountpoint(images_->root());
  fs->mutable_used_bytes()->set_value(static_cast<uint64_t>(usage.used_bytes));
  fs->mutable_inodes_used()->set_value(static_cast<uint64_t>(usage.inodes_used));
  return response;
}

}  // namespace berth
