// The layer directory as a tree written only with *at calls relative to one
// O_PATH descriptor of it, so nothing in a layer can send a write outside it:
// parents resolve with openat2(2) RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS (a symlink
// or ".." stops at the layer dir, as at "/" in a chroot), and the last component
// is never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, O_EXCL, mknodat, symlinkat).
//
// Directories are created 0700 and owned by us until the end, so an unprivileged
// unpack can still write into a directory whose final mode forbids it; their
// modes and times are recorded and applied by FinishDirs(), children first.
//
//   BERTH_ASSIGN_OR_RETURN(LayerDir layer, LayerDir::Open("/var/lib/berth/layers/tmp-1"));
//   BERTH_ASSIGN_OR_RETURN(UniqueFd parent, layer.OpenParent("usr/bin", /*create=*/true));
//   BERTH_RETURN_IF_ERROR(layer.Clear(parent.get(), "usr/bin", "ls"));
//   ... openat(parent.get(), "ls", O_CREAT | O_EXCL | O_NOFOLLOW ...) ...
//   BERTH_RETURN_IF_ERROR(layer.FinishDirs());
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "os/unique_fd.h"

namespace berth::images::internal {

// atime, mtime, as utimensat(2) takes them.
struct FileTimes {
  timespec times[2];
};

// What a path of the layer holds now.
enum class Existing { kAbsent, kDirectory, kWhiteout, kOther };

class LayerDir {
 public:
  // `overlay_whiteouts`: a whiteout device replaced by a directory makes that
  // directory opaque (see unpack.h).
  static absl::StatusOr<LayerDir> Open(const std::string& dir, bool overlay_whiteouts);

  int root() const { return root_.get(); }

  // An O_PATH descriptor of the directory `path` (layer-relative, cleaned; "" is
  // the root), resolved inside the layer. With `create`, missing directories are
  // made (0755 at the end), a whiteout device in the way included; a component
  // that is something else (or a symlink dangling inside the layer) is
  // FAILED_PRECONDITION.
  absl::StatusOr<UniqueFd> OpenParent(absl::string_view path, bool create);

  // What `name` in `parent` is, not following a symlink. `path` is for messages.
  absl::StatusOr<Existing> Lookup(int parent, absl::string_view path, const char* name);

  // Makes room for a new entry: removes whatever is at `name` (a directory with
  // all its contents). Absent is fine.
  absl::Status Clear(int parent, absl::string_view path, const char* name);

  // Makes directory `name` in `parent` unless one is there and returns it opened
  // O_RDONLY, for fchown/fsetxattr. A non-directory there is replaced.
  absl::StatusOr<UniqueFd> MakeDir(int parent, absl::string_view path, const char* name);

  // Sets trusted.overlay.opaque="y" on the directory `dir_fd` (at `path`).
  absl::Status SetOpaque(int dir_fd, absl::string_view path);
  // How many directories SetOpaque marked.
  uint64_t opaque_count() const { return opaque_count_; }

  // Records the final mode and times of directory `dir_fd` (at `path`); a later
  // record for the same directory replaces it. No times: left as they are.
  absl::Status SetDirAttrsLater(int dir_fd, absl::string_view path, mode_t mode,
                                std::optional<FileTimes> times);

  // Applies the recorded directory modes and times, children before parents. A
  // directory removed or replaced since is skipped.
  absl::Status FinishDirs();

 private:
  struct DirAttrs {
    std::string path;
    ino_t ino;
    mode_t mode;
    std::optional<FileTimes> times;
  };

  LayerDir(UniqueFd root, bool overlay_whiteouts)
      : root_(std::move(root)), overlay_whiteouts_(overlay_whiteouts) {}
  absl::StatusOr<UniqueFd> MakeParents(absl::string_view path);
  // `existing` is not a directory.
  absl::StatusOr<UniqueFd> ReplaceWithDir(int parent, absl::string_view path, const char* name,
                                          Existing existing);

  UniqueFd root_;
  bool overlay_whiteouts_;
  uint64_t opaque_count_ = 0;
  std::vector<DirAttrs> dirs_;                   // in creation order
  std::unordered_map<ino_t, size_t> dir_index_;  // inode -> dirs_ index
};

// openat2(2) with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS and O_CLOEXEC, retrying
// EAGAIN. Returns the fd or -1 with errno set.
int OpenInLayer(int root, const char* path, int flags);

// Removes `name` in `parent`: unlink, or for a directory its contents first
// (bounded depth; never follows symlinks).
absl::Status RemoveAllAt(int parent, absl::string_view path, const char* name);

}  // namespace berth::images::internal
