// CRI requests through the validators and translators a client reaches first:
// a LinuxContainerResources (as protobuf bytes) to the shim's resources, its
// device rules to the cgroup v2 eBPF program, seccomp profiles (Localhost
// profiles are files a client names), systemd slice names and CPU lists.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/runtime/container_spec.h"
#include "agent/runtime/systemd_units.h"
#include "os/cgroup/device_filter.h"
#include "os/seccomp/seccomp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  runtime::v1::LinuxContainerResources resources;
  if (resources.ParseFromString(text)) (void)berth::lifecycle::ToShimResources(resources);
  berth::shim::v1::Resources shim;
  if (shim.ParseFromString(text)) {
    std::vector<berth::DeviceRule> rules;
    for (const berth::shim::v1::DeviceRule& d : shim.devices()) {
      rules.push_back(
          {d.allow(), d.type().empty() ? 'a' : d.type()[0], d.major(), d.minor(), d.access()});
    }
    (void)berth::DeviceFilterProgram(rules);
  }
  (void)berth::seccomp::ParseProfile(text);
  (void)berth::lifecycle::SliceCgroupPath(text);
  (void)berth::lifecycle::CpuListMask(text);
  return 0;
}
