// Architecture names in seccomp profiles, and which of them a kernel of the
// native arch can run (its compat modes). Internal to the seccomp library.
//
// Profiles name arches two ways: libseccomp's "SCMP_ARCH_X86_64" in
// `architectures` and `archMap`, and Go's "amd64" in Docker's includes/excludes.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace berth::seccomp::internal {

// libseccomp's token for "SCMP_ARCH_X86_64" and friends; 0 when unknown.
uint32_t ArchToken(absl::string_view scmp_name);

// Whether a process on this machine can make syscalls as `token`: the native
// arch and its compat modes (x86 and x32 on x86_64, arm on aarch64, ...). An
// arch outside this set can never reach the filter, so the filter leaves it out.
bool RunsOnNative(uint32_t token);

}  // namespace berth::seccomp::internal
