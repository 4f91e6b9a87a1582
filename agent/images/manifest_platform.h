// Choosing the manifest for this node from an image index, as containerd
// does (github.com/containerd/platforms: Normalize, Only; images.Manifest).
//
//   BERTH_ASSIGN_OR_RETURN(Descriptor m, SelectPlatform(index));  // linux/amd64
//   BERTH_ASSIGN_OR_RETURN(Descriptor m, SelectPlatform(index, "linux", "arm", "v7"));
//
// Platforms are compared after normalisation (database.go, normalizeArch):
//
//   x86_64, x86-64 -> amd64        amd64/v1 -> amd64 (v1 is the baseline)
//   aarch64 -> arm64               arm64/v8, arm64/8, arm64/v8.0 -> arm64 (v8 is the default)
//   armhf -> arm/v7, armel -> arm/v6, arm -> arm/v7, arm/7 -> arm/v7
//   i386 -> 386                    os lowercased, macos -> darwin
//
// A node also runs what older platforms built (compare.go, platformVector), in
// this order of preference:
//
//   amd64/vN  -> amd64/vN, vN-1, ..., amd64, then 386
//   arm64     -> arm64, then arm/v8, arm/v7, arm/v6, arm/v5
//   arm64/v8.N -> arm64/v8.N, ..., v8.1, arm64, then arm/v8 ... arm/v5
//   arm/vN    -> arm/vN, vN-1, ..., arm/v5
//
// Among index entries, the best match wins; ties go to the earlier entry. An
// entry without a platform matches last (containerd then checks the config's
// platform; callers here should too, with PlatformMatcher::Match). Entries that
// are neither manifests nor indexes (and buildx's "unknown/unknown" attestation
// manifests, which no matcher accepts) are never chosen.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/images/manifest.h"

namespace berth::images {

// The canonical form (platforms.Normalize); os_version and os_features are kept.
Platform NormalizePlatform(Platform platform);

// "linux/arm/v7", "linux/amd64".
std::string FormatPlatform(const Platform& platform);

// platforms.Only(want): matches `want` and the platforms it can run, ranked.
class PlatformMatcher {
 public:
  explicit PlatformMatcher(const Platform& want);

  bool Match(const Platform& candidate) const { return Rank(candidate).has_value(); }
  // 0 for the wanted platform itself, higher for older compatible ones;
  // nullopt when `candidate` does not run here.
  std::optional<int> Rank(const Platform& candidate) const;

  // The normalised platforms accepted, best first.
  const std::vector<Platform>& accepted() const { return accepted_; }

 private:
  std::vector<Platform> accepted_;
};

// The best manifest in `index` for os/architecture/variant. NOT_FOUND, listing
// the platforms the index has, when none fits.
absl::StatusOr<Descriptor> SelectPlatform(const Index& index, absl::string_view os = "linux",
                                          absl::string_view architecture = "amd64",
                                          absl::string_view variant = "");

}  // namespace berth::images
