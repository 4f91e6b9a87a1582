// Unpacking one OCI image layer into the directory that becomes its overlayfs
// lower dir (DESIGN.md, State: /var/lib/berth/layers/<chain-id>/).
//
// A layer blob is a tar changeset, plain or compressed with gzip or zstd; the
// compression is detected from the content (OCI image-spec layer.md, "+gzip" and
// "+zstd" media types). Each layer is unpacked alone into an empty directory, so
// removals cannot be applied to lower layers here; they are converted to the form
// overlayfs reads from a lower dir instead (Documentation/filesystems/overlayfs.rst,
// "whiteouts and opaque directories"):
//
//   <dir>/.wh.<name>      ->  <dir>/<name>, a character device 0:0 (needs CAP_MKNOD)
//   <dir>/.wh..wh..opq    ->  xattr trusted.overlay.opaque="y" on <dir> (needs CAP_SYS_ADMIN)
//
// Example: the store unpacks into a temporary directory and renames it to the
// chain ID, so a crash never leaves a half-unpacked layer under its name (a
// power cut before the write-behind flush drops the image: images.h):
//
//   BERTH_ASSIGN_OR_RETURN(UnpackStats stats, UnpackLayer(blob, tmp_dir, {.max_bytes = 8 << 30}));
//   rename(tmp_dir, layer_dir);
//
// Rules, with the spec lines they follow (layer.md unless said otherwise):
// - Paths. A leading "/" is dropped and ".." is resolved lexically; a name that
//   climbs above the layer root is rejected: `layer entry "../x": escapes the layer`.
//   Parent directories are opened with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)
//   from the layer dir, so a path through a symlink in the layer (`evil -> /`, then
//   `evil/etc/x`) resolves as it will inside the container, within the layer dir
//   (`<dir>/etc/x`); the last component is never followed. A path through a symlink
//   that dangles inside the layer is an error. Missing parents are made 0755.
// - The root entry ("./") is skipped: the layer dir's own attributes belong to the store.
// - "Changeset over existing files": an entry over an existing directory, when both
//   are directories, replaces its attributes; otherwise the old path is removed
//   (recursively) and recreated. Layers must not repeat a path; if one does, the
//   later entry wins.
// - Whiteouts "MUST only apply to resources in lower/parent layers": a whiteout never
//   removes what this layer wrote. `.wh.x` after an x of this layer leaves x (a
//   directory x is made opaque: the lower x is gone, this layer's x replaces it); an x
//   after `.wh.x`, or an entry under x, replaces the whiteout device (a directory again
//   made opaque). The opaque marker applies wherever it stands among its siblings. AUFS
//   metadata (`.wh..wh.plnk`, ...) is skipped; any other use of a `.wh.` name as a
//   directory is rejected. With `overlay_whiteouts = false` nothing is special.
// - Hardlinks are made with linkat within the layer; a target outside it (or not
//   in this layer: "may fail") is an error.
// - Attributes: uid/gid, mode including setuid/setgid/sticky, mtime and atime
//   (directories' times and modes are set at the end, after their contents), and
//   xattrs, including security.capability (set after chown, which clears it).
//   trusted.* xattrs from the archive are skipped, as containerd does: overlayfs
//   trusts trusted.overlay.* on lower dirs, and only whiteout entries may create
//   them. user.* on anything but files and directories (the kernel refuses it), any
//   xattr on a symlink, and xattrs the file system does not support (EOPNOTSUPP) are
//   skipped and counted. ACLs and file flags are not applied.
//
// Memory is bounded: data streams through in libarchive's blocks (sparse holes are
// kept), and the only state kept per entry is a small record per directory. No fsync:
// the caller flushes the whole layer once. On error `dir` holds a partial layer that
// the caller removes.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace berth::images {

struct UnpackOptions {
  // Limits against decompression bombs; 0 means no limit. Exceeding one is
  // RESOURCE_EXHAUSTED naming the entry.
  uint64_t max_bytes = 0;    // file contents, summed over the layer
  uint64_t max_entries = 0;  // tar entries
  // Convert whiteouts to overlayfs form (see above); false extracts `.wh.` entries
  // as the plain empty files they are in the tar.
  bool overlay_whiteouts = true;
};

struct UnpackStats {
  uint64_t entries = 0;         // tar entries read, the root and skipped ones included
  uint64_t bytes = 0;           // file contents written
  uint64_t whiteouts = 0;       // whiteout devices made and directories made opaque
  uint64_t skipped_xattrs = 0;  // xattrs not applied (trusted.*, unsupported)
};

// Unpacks the layer blob at `blob_path` into `dir`, an existing empty directory.
// Errors name the entry: INVALID_ARGUMENT for a malformed or unsafe entry,
// DATA_LOSS for a corrupt archive, the errno's code for a failed syscall.
absl::StatusOr<UnpackStats> UnpackLayer(const std::string& blob_path, const std::string& dir,
                                        const UnpackOptions& options = {});

}  // namespace berth::images
