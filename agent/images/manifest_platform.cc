#include "agent/images/manifest_platform.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace berth::images {
namespace {

// strconv.Atoi(strings.TrimPrefix(variant, "v")).
std::optional<int> VariantNumber(absl::string_view variant) {
  absl::ConsumePrefix(&variant, "v");
  int n = 0;
  if (variant.empty() || !absl::SimpleAtoi(variant, &n)) return std::nullopt;
  return n;
}

Platform WithVariant(const Platform& base, std::string architecture, std::string variant) {
  Platform p = base;
  p.architecture = std::move(architecture);
  p.variant = std::move(variant);
  return p;
}

// compare.go, platformVector: `p` (normalised) and what it can also run, best first.
std::vector<Platform> PlatformVector(const Platform& p) {
  std::vector<Platform> out = {p};
  if (p.architecture == "amd64") {
    if (std::optional<int> v = VariantNumber(p.variant); v && *v > 1) {
      for (int k = *v - 1; k >= 1; --k)
        out.push_back(WithVariant(p, "amd64", absl::StrCat("v", k)));
    }
    out.push_back(WithVariant(p, "386", ""));
  } else if (p.architecture == "arm") {
    if (std::optional<int> v = VariantNumber(p.variant); v && *v > 5) {
      for (int k = *v - 1; k >= 5; --k) out.push_back(WithVariant(p, "arm", absl::StrCat("v", k)));
    }
  } else if (p.architecture == "arm64") {
    std::string variant = p.variant.empty() ? "v8" : p.variant;
    absl::string_view major_part = variant, minor_part;
    bool has_minor = false;
    if (size_t dot = variant.find('.'); dot != std::string::npos) {
      major_part = absl::string_view(variant).substr(0, dot);
      minor_part = absl::string_view(variant).substr(dot + 1);
      has_minor = true;
    }
    std::optional<int> major = VariantNumber(major_part);
    if (major && *major >= 8) {
      int arm_major = *major;
      int arm_minor = 0;
      int parsed = 0;
      if (variant.size() == 4 && has_minor && absl::SimpleAtoi(minor_part, &parsed)) {
        arm_minor = parsed;
      }
      auto add = [&](int maj, int min) {
        out.push_back(WithVariant(
            p, "arm64", min == 0 ? absl::StrCat("v", maj) : absl::StrCat("v", maj, ".", min)));
      };
      if (arm_major == 9) {
        for (int m = arm_minor - 1; m >= 0; --m) add(9, m);
        // v9.0 diverged from v8.5: v9.x runs v8.{x+5} and below, up to v8.9.
        arm_minor = std::min(arm_minor + 5, 9);
        arm_major = 8;
        out.push_back(WithVariant(p, "arm64", absl::StrCat("v8.", arm_minor)));
      }
      for (int m = arm_minor - 1; m >= 0; --m) add(arm_major, m);
    }
    // Every arm64 runs 32-bit arm/v8 and below.
    if (absl::StartsWith(variant, "v8.") || absl::StartsWith(variant, "v9.")) variant = "v8";
    std::vector<Platform> arm = PlatformVector(WithVariant(p, "arm", variant));
    out.insert(out.end(), arm.begin(), arm.end());
  }
  return out;
}

bool SamePlatform(const Platform& a, const Platform& b) {
  return a.os == b.os && a.architecture == b.architecture && a.variant == b.variant;
}

}  // namespace

Platform NormalizePlatform(Platform p) {
  // database.go, normalizeOS and normalizeArch. An empty OS means this host's.
  p.os = p.os.empty() ? "linux" : absl::AsciiStrToLower(p.os);
  if (p.os == "macos") p.os = "darwin";
  std::string arch = absl::AsciiStrToLower(p.architecture);
  std::string variant = absl::AsciiStrToLower(p.variant);
  if (arch == "i386") {
    arch = "386";
    variant = "";
  } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    arch = "amd64";
    if (variant == "v1") variant = "";
  } else if (arch == "aarch64" || arch == "arm64") {
    arch = "arm64";
    if (variant == "8" || variant == "v8" || variant == "v8.0") {
      variant = "";
    } else if (variant == "9" || variant == "9.0" || variant == "v9.0") {
      variant = "v9";
    }
  } else if (arch == "armhf") {
    arch = "arm";
    variant = "v7";
  } else if (arch == "armel") {
    arch = "arm";
    variant = "v6";
  } else if (arch == "arm") {
    if (variant.empty() || variant == "7") {
      variant = "v7";
    } else if (variant == "5" || variant == "6" || variant == "8") {
      variant = absl::StrCat("v", variant);
    }
  }
  p.architecture = std::move(arch);
  p.variant = std::move(variant);
  return p;
}

std::string FormatPlatform(const Platform& p) {
  if (p.os.empty()) return "unknown";
  std::vector<absl::string_view> parts = {p.os};
  if (!p.architecture.empty()) parts.push_back(p.architecture);
  if (!p.variant.empty()) parts.push_back(p.variant);
  return absl::StrJoin(parts, "/");
}

PlatformMatcher::PlatformMatcher(const Platform& want) {
  // Each entry is normalised again, as platforms.NewMatcher does: arm64/v8 and
  // amd64/v1 become the plain forms that normalised candidates carry.
  for (Platform& p : PlatformVector(NormalizePlatform(want))) {
    accepted_.push_back(NormalizePlatform(std::move(p)));
  }
}

std::optional<int> PlatformMatcher::Rank(const Platform& candidate) const {
  Platform c = NormalizePlatform(candidate);
  for (size_t i = 0; i < accepted_.size(); ++i) {
    if (SamePlatform(accepted_[i], c)) return static_cast<int>(i);
  }
  return std::nullopt;
}

absl::StatusOr<Descriptor> SelectPlatform(const Index& index, absl::string_view os,
                                          absl::string_view architecture,
                                          absl::string_view variant) {
  Platform want{std::string(os), std::string(architecture), std::string(variant), "", {}};
  PlatformMatcher matcher(want);
  // Entries without a platform rank after every real match (images.Manifest sorts them last).
  const int no_platform_rank = static_cast<int>(matcher.accepted().size());
  const Descriptor* best = nullptr;
  int best_rank = 0;
  std::vector<std::string> seen;
  for (const Descriptor& d : index.manifests) {
    if (!IsManifestMediaType(d.media_type) && !IsIndexMediaType(d.media_type)) continue;
    std::optional<int> rank = no_platform_rank;
    if (d.platform.has_value()) {
      seen.push_back(FormatPlatform(*d.platform));
      rank = matcher.Rank(*d.platform);
    }
    if (rank && (best == nullptr || *rank < best_rank)) {
      best = &d;
      best_rank = *rank;
    }
  }
  if (best == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "no manifest for ", FormatPlatform(NormalizePlatform(want)),
        " in the image index (it has: ", seen.empty() ? "nothing" : absl::StrJoin(seen, ", "),
        ")"));
  }
  return *best;
}

}  // namespace berth::images
