// A CRI log line: what the container wrote, framed by the shim, read back by
// berthd's log reader (and kubelet's).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "shim/cri_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)berth::ParseCriLogLine(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
