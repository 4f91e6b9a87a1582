#include "shim/idmap.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::shim {
namespace {

absl::Status WriteProcFile(pid_t pid, absl::string_view name, absl::string_view text) {
  const std::string path = absl::StrCat("/proc/", pid, "/", name);
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY));
  // One write: the kernel takes a map in a single write(2) only.
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, "write", path);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> FormatIdMap(
    const google::protobuf::RepeatedPtrField<v1::IdMapping>& mappings, absl::string_view field) {
  if (mappings.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  std::string text;
  for (int i = 0; i < mappings.size(); ++i) {
    const v1::IdMapping& m = mappings[i];
    if (m.size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "].size is 0"));
    }
    absl::StrAppend(&text, m.container_id(), " ", m.host_id(), " ", m.size(), "\n");
  }
  return text;
}

absl::Status WriteIdMaps(pid_t pid, const google::protobuf::RepeatedPtrField<v1::IdMapping>& uids,
                         const google::protobuf::RepeatedPtrField<v1::IdMapping>& gids) {
  BERTH_ASSIGN_OR_RETURN(std::string uid_map, FormatIdMap(uids, "uid_mappings"));
  BERTH_ASSIGN_OR_RETURN(std::string gid_map, FormatIdMap(gids, "gid_mappings"));
  if (geteuid() != 0) BERTH_RETURN_IF_ERROR(WriteProcFile(pid, "setgroups", "deny"));
  BERTH_RETURN_IF_ERROR(Annotate(WriteProcFile(pid, "uid_map", uid_map), "uid_mappings"));
  BERTH_RETURN_IF_ERROR(Annotate(WriteProcFile(pid, "gid_map", gid_map), "gid_mappings"));
  return absl::OkStatus();
}

}  // namespace berth::shim
