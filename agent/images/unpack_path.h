// Tar entry names of a layer, checked and classified before anything touches the
// disk: pure string work, so every rule is unit-tested without a file system.
//
//   BERTH_ASSIGN_OR_RETURN(std::string path, CleanLayerPath("./usr/../etc/.wh.motd"));
//   // path == "etc/.wh.motd"
//   BERTH_ASSIGN_OR_RETURN(Whiteout w, ClassifyWhiteout(path));
//   // w.kind == WhiteoutKind::kWhiteout, w.target == "etc/motd"
#pragma once

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::images {

// The OCI whiteout names (image-spec layer.md, "Whiteouts").
inline constexpr absl::string_view kWhiteoutPrefix = ".wh.";
inline constexpr absl::string_view kWhiteoutMetaPrefix = ".wh..wh.";
inline constexpr absl::string_view kOpaqueWhiteout = ".wh..wh..opq";

// Cleans a tar entry name into a path relative to the layer root, like Go's
// path.Clean on "/" + name: leading "/" and "./" go, "." and empty components
// drop, "a/../b" becomes "b". The root itself is "". A ".." that would climb
// above the root is INVALID_ARGUMENT "escapes the layer" (callers name the entry).
absl::StatusOr<std::string> CleanLayerPath(absl::string_view name);

enum class WhiteoutKind {
  kNone,      // an ordinary entry
  kWhiteout,  // `.wh.<name>`: <name> is removed from lower layers
  kOpaque,    // `.wh..wh..opq`: its directory hides all of the lower layers' children
  kAufsMeta,  // other `.wh..wh.*` names: AUFS bookkeeping, skipped like containerd does
};

struct Whiteout {
  WhiteoutKind kind = WhiteoutKind::kNone;
  std::string target;  // kWhiteout: the path removed; kOpaque: the directory
};

// Classifies a cleaned path by its components. A `.wh.` name used as a directory
// (other than AUFS metadata) and `.wh.` alone are INVALID_ARGUMENT: the spec makes
// such names impossible in a file system.
absl::StatusOr<Whiteout> ClassifyWhiteout(absl::string_view path);

// "a/b/c" -> {"a/b", "c"}; "c" -> {"", "c"}.
std::pair<absl::string_view, absl::string_view> SplitParent(absl::string_view path);

}  // namespace berth::images
