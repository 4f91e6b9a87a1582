// cgroup and /proc files as the kernel (or a fake cgroupfs a container can
// write into, when it owns its cgroup) presents them to the metrics readers,
// and the shim's exit file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "metrics/cgroup_parse.h"
#include "shim/exit_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  using namespace berth::metrics;
  (void)ParseUint(text);
  (void)ParseLimit(text);
  (void)ParseFlatKeyed(text);
  (void)ParseCpuMax(text);
  (void)ParseIoStat(text);
  (void)ParsePressure(text);
  (void)ParsePidList(text);
  (void)ParseStatusThreads(text);
  (void)ParseNetDev(text);
  (void)berth::shim::ParseExitFile(text);
  return 0;
}
