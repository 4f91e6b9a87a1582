#include "agent/images/unpack_path.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace berth::images {

absl::StatusOr<std::string> CleanLayerPath(absl::string_view name) {
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return absl::InvalidArgumentError("escapes the layer");
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return absl::StrJoin(parts, "/");
}

absl::StatusOr<Whiteout> ClassifyWhiteout(absl::string_view path) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::string_view part = parts[i];
    if (!absl::StartsWith(part, kWhiteoutPrefix)) continue;
    const bool last = i + 1 == parts.size();
    if (last && part == kOpaqueWhiteout) {
      return Whiteout{WhiteoutKind::kOpaque, std::string(SplitParent(path).first)};
    }
    if (absl::StartsWith(part, kWhiteoutMetaPrefix)) return Whiteout{WhiteoutKind::kAufsMeta, ""};
    if (!last) return absl::InvalidArgumentError("whiteout name used as a directory");
    absl::string_view target = part.substr(kWhiteoutPrefix.size());
    // CleanLayerPath already removed "." and ".." components, but ".wh.." names ".".
    if (target.empty() || target == "." || target == "..") {
      return absl::InvalidArgumentError("whiteout without a name");
    }
    absl::string_view parent = SplitParent(path).first;
    return Whiteout{WhiteoutKind::kWhiteout,
                    parent.empty() ? std::string(target) : absl::StrCat(parent, "/", target)};
  }
  return Whiteout{};
}

std::pair<absl::string_view, absl::string_view> SplitParent(absl::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return {absl::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace berth::images
