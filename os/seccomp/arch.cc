#include "os/seccomp/arch.h"

#include <seccomp.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "os/seccomp/seccomp.h"

namespace berth::seccomp {
namespace internal {
namespace {

struct Family {
  uint32_t native;
  uint32_t compat[2];  // 0: none
};

// Compat modes per native arch, as Docker's archMap has them.
constexpr Family kFamilies[] = {
    {SCMP_ARCH_X86_64, {SCMP_ARCH_X86, SCMP_ARCH_X32}},
    {SCMP_ARCH_AARCH64, {SCMP_ARCH_ARM, 0}},
    {SCMP_ARCH_MIPS64, {SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64N32}},
    {SCMP_ARCH_MIPS64N32, {SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64}},
    {SCMP_ARCH_MIPSEL64, {SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64N32}},
    {SCMP_ARCH_MIPSEL64N32, {SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64}},
    {SCMP_ARCH_PPC64, {SCMP_ARCH_PPC, 0}},
    {SCMP_ARCH_S390X, {SCMP_ARCH_S390, 0}},
};

}  // namespace

uint32_t ArchToken(absl::string_view scmp_name) {
  constexpr absl::string_view kPrefix = "SCMP_ARCH_";
  if (!absl::StartsWith(scmp_name, kPrefix) || scmp_name.size() == kPrefix.size()) return 0;
  // libseccomp's own names are the lowercase suffix: "x86_64", "aarch64", "mipsel64n32".
  std::string name = absl::AsciiStrToLower(scmp_name.substr(kPrefix.size()));
  return seccomp_arch_resolve_name(name.c_str());
}

bool RunsOnNative(uint32_t token) {
  const uint32_t native = seccomp_arch_native();
  if (token == native) return true;
  for (const Family& f : kFamilies) {
    if (f.native != native) continue;
    for (uint32_t c : f.compat) {
      if (c != 0 && c == token) return true;
    }
  }
  return false;
}

}  // namespace internal

absl::string_view NativeArch() {
  // Go's GOARCH names, which Docker's includes/excludes.arches compare with.
#if defined(__x86_64__) && defined(__ILP32__)
  return "x32";
#elif defined(__x86_64__)
  return "amd64";
#elif defined(__i386__)
  return "386";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__powerpc64__)
  return "ppc64";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__mips64) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "mips64le";
#elif defined(__mips64)
  return "mips64";
#else
  return "unknown";
#endif
}

}  // namespace berth::seccomp
