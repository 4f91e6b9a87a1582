#include "os/status.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace berth {

absl::Status ErrnoStatus(int err, absl::string_view call, absl::string_view path) {
  // strerror_r's GNU form returns a pointer that may or may not be `buf`.
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof(buf));
  std::string message =
      path.empty() ? absl::StrCat(call, ": ", text) : absl::StrCat(call, " `", path, "`: ", text);
  return absl::Status(absl::ErrnoToStatusCode(err), message);
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace berth
