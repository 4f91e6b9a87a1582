#include "agent/images/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/images/unpack_fs.h"
#include "agent/images/unpack_path.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::images {
namespace {

using internal::Existing;
using internal::FileTimes;
using internal::LayerDir;

// What libarchive reads from the blob at a time; decompressed blocks are its own.
constexpr size_t kReadBlockSize = 128 * 1024;

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

absl::Status ArchiveError(archive* a, absl::string_view call) {
  const char* message = archive_error_string(a);
  return absl::DataLossError(absl::StrCat(call, ": ", message ? message : "libarchive error"));
}

FileTimes TimesOf(archive_entry* e) {
  FileTimes t;
  t.times[1] = archive_entry_mtime_is_set(e)
                   ? timespec{archive_entry_mtime(e), archive_entry_mtime_nsec(e)}
                   : timespec{0, UTIME_OMIT};
  t.times[0] = archive_entry_atime_is_set(e)
                   ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)}
                   : t.times[1];
  return t;
}

// Applies one tar entry after another to a LayerDir; see unpack.h for the rules.
class Unpacker {
 public:
  Unpacker(archive* a, LayerDir layer, const UnpackOptions& options)
      : a_(a), layer_(std::move(layer)), options_(options) {}

  absl::Status Run() {
    while (true) {
      archive_entry* e = nullptr;
      int rc = archive_read_next_header(a_, &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) return ArchiveError(a_, "archive_read_next_header");
      ++stats_.entries;
      const char* name = archive_entry_pathname(e);
      if (name == nullptr) name = archive_entry_pathname_utf8(e);
      if (name == nullptr) return absl::InvalidArgumentError("layer entry without a name");
      if (options_.max_entries != 0 && stats_.entries > options_.max_entries) {
        return absl::ResourceExhaustedError(absl::StrCat("layer entry \"", name, "\": more than ",
                                                         options_.max_entries, " entries"));
      }
      BERTH_RETURN_IF_ERROR(Annotate(Apply(e, name), absl::StrCat("layer entry \"", name, "\"")));
    }
    return layer_.FinishDirs();
  }

  UnpackStats stats() const {
    UnpackStats stats = stats_;
    stats.whiteouts += layer_.opaque_count();
    return stats;
  }

 private:
  absl::Status Apply(archive_entry* e, const char* name) {
    BERTH_ASSIGN_OR_RETURN(std::string path, CleanLayerPath(name));
    if (path.empty()) return absl::OkStatus();  // the root: the store's directory
    if (options_.overlay_whiteouts) {
      BERTH_ASSIGN_OR_RETURN(Whiteout w, ClassifyWhiteout(path));
      switch (w.kind) {
        case WhiteoutKind::kNone:
          break;
        case WhiteoutKind::kWhiteout:
          return ApplyWhiteout(w.target);
        case WhiteoutKind::kOpaque:
          return ApplyOpaque(w.target);
        case WhiteoutKind::kAufsMeta:
          return absl::OkStatus();
      }
    }
    if (archive_entry_uid(e) < 0 || archive_entry_uid(e) >= std::numeric_limits<uid_t>::max() ||
        archive_entry_gid(e) < 0 || archive_entry_gid(e) >= std::numeric_limits<gid_t>::max()) {
      return absl::InvalidArgumentError("uid or gid out of range");
    }
    auto [parent_path, base] = SplitParent(path);
    BERTH_ASSIGN_OR_RETURN(UniqueFd parent, layer_.OpenParent(parent_path, /*create=*/true));
    Target t{parent.get(), path, std::string(base)};
    if (const char* link = archive_entry_hardlink(e)) return MakeHardlink(t, link);
    switch (archive_entry_filetype(e)) {
      case AE_IFREG:
        return WriteFile(e, t);
      case AE_IFDIR:
        return MakeDirectory(e, t);
      case AE_IFLNK:
        return MakeSymlink(e, t);
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
      case AE_IFSOCK:
        return MakeNode(e, t);
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unsupported entry type 0", absl::Hex(archive_entry_filetype(e))));
    }
  }

  // Where an entry goes: a name in a resolved parent directory.
  struct Target {
    int parent;
    const std::string& path;  // layer-relative, for messages
    std::string name;
  };

  // `.wh.x`: x as a whiteout device, unless this layer already wrote x (then it
  // stays; a directory is made opaque, as the lower x is gone).
  absl::Status ApplyWhiteout(const std::string& target) {
    auto [parent_path, base] = SplitParent(target);
    BERTH_ASSIGN_OR_RETURN(UniqueFd parent, layer_.OpenParent(parent_path, /*create=*/true));
    std::string name(base);
    BERTH_ASSIGN_OR_RETURN(Existing existing, layer_.Lookup(parent.get(), target, name.c_str()));
    if (existing == Existing::kAbsent) {
      if (mknodat(parent.get(), name.c_str(), S_IFCHR, makedev(0, 0)) != 0) {
        return ErrnoStatus(errno, "mknodat", target);
      }
      ++stats_.whiteouts;
    } else if (existing == Existing::kDirectory) {
      UniqueFd dir(
          openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir) return ErrnoStatus(errno, "openat", target);
      BERTH_RETURN_IF_ERROR(layer_.SetOpaque(dir.get(), target));
    }
    return absl::OkStatus();
  }

  absl::Status ApplyOpaque(const std::string& dir_path) {
    BERTH_ASSIGN_OR_RETURN(UniqueFd dir_path_fd, layer_.OpenParent(dir_path, /*create=*/true));
    UniqueFd dir(openat(dir_path_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return ErrnoStatus(errno, "openat", dir_path);
    return layer_.SetOpaque(dir.get(), dir_path);
  }

  absl::Status WriteFile(archive_entry* e, const Target& t) {
    BERTH_RETURN_IF_ERROR(layer_.Clear(t.parent, t.path, t.name.c_str()));
    UniqueFd fd(openat(t.parent, t.name.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return ErrnoStatus(errno, "openat", t.path);
    BERTH_RETURN_IF_ERROR(CopyData(e, fd.get(), t.path));
    // chown clears setuid/setgid and security.capability, so mode and xattrs follow it.
    if (fchown(fd.get(), archive_entry_uid(e), archive_entry_gid(e)) != 0) {
      return ErrnoStatus(errno, "fchown", t.path);
    }
    if (fchmod(fd.get(), archive_entry_perm(e) & 07777) != 0) {
      return ErrnoStatus(errno, "fchmod", t.path);
    }
    BERTH_RETURN_IF_ERROR(SetXattrs(e, fd.get(), t, AE_IFREG));
    FileTimes times = TimesOf(e);
    if (futimens(fd.get(), times.times) != 0) return ErrnoStatus(errno, "futimens", t.path);
    return absl::OkStatus();
  }

  // Streams the entry's data blocks to `fd` at their offsets: holes of a sparse
  // entry stay holes, and a trailing one is made by ftruncate.
  absl::Status CopyData(archive_entry* e, int fd, const std::string& path) {
    int64_t end = 0;
    while (true) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      int rc = archive_read_data_block(a_, &buf, &size, &offset);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) return ArchiveError(a_, "archive_read_data_block");
      if (options_.max_bytes != 0 && size > options_.max_bytes - stats_.bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat("layer holds more than ", options_.max_bytes, " bytes"));
      }
      const char* p = static_cast<const char*>(buf);
      for (size_t left = size; left > 0;) {
        ssize_t n = pwrite(fd, p, left, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoStatus(errno, "pwrite", path);
        p += n;
        offset += n;
        left -= static_cast<size_t>(n);
      }
      stats_.bytes += size;
      end = std::max<int64_t>(end, offset);
    }
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
        ftruncate(fd, archive_entry_size(e)) != 0) {
      return ErrnoStatus(errno, "ftruncate", path);
    }
    return absl::OkStatus();
  }

  absl::Status MakeDirectory(archive_entry* e, const Target& t) {
    BERTH_ASSIGN_OR_RETURN(UniqueFd dir, layer_.MakeDir(t.parent, t.path, t.name.c_str()));
    if (fchown(dir.get(), archive_entry_uid(e), archive_entry_gid(e)) != 0) {
      return ErrnoStatus(errno, "fchown", t.path);
    }
    BERTH_RETURN_IF_ERROR(SetXattrs(e, dir.get(), t, AE_IFDIR));
    return layer_.SetDirAttrsLater(dir.get(), t.path, archive_entry_perm(e) & 07777, TimesOf(e));
  }

  absl::Status MakeSymlink(archive_entry* e, const Target& t) {
    const char* target = archive_entry_symlink(e);
    if (target == nullptr) target = archive_entry_symlink_utf8(e);
    if (target == nullptr) return absl::InvalidArgumentError("symlink without a target");
    BERTH_RETURN_IF_ERROR(layer_.Clear(t.parent, t.path, t.name.c_str()));
    if (symlinkat(target, t.parent, t.name.c_str()) != 0) {
      return ErrnoStatus(errno, "symlinkat", t.path);
    }
    return SetAttrsAt(e, t, AE_IFLNK);
  }

  absl::Status MakeNode(archive_entry* e, const Target& t) {
    BERTH_RETURN_IF_ERROR(layer_.Clear(t.parent, t.path, t.name.c_str()));
    dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
    if (mknodat(t.parent, t.name.c_str(), archive_entry_filetype(e) | 0600, dev) != 0) {
      return ErrnoStatus(errno, "mknodat", t.path);
    }
    return SetAttrsAt(e, t, archive_entry_filetype(e));
  }

  // Owner, mode, xattrs and times of a symlink or node, by name, never following it.
  absl::Status SetAttrsAt(archive_entry* e, const Target& t, mode_t type) {
    const char* name = t.name.c_str();
    if (fchownat(t.parent, name, archive_entry_uid(e), archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) !=
        0) {
      return ErrnoStatus(errno, "fchownat", t.path);
    }
    // glibc does AT_SYMLINK_NOFOLLOW through an O_PATH descriptor (fchmodat(2)).
    if (type != AE_IFLNK &&
        fchmodat(t.parent, name, archive_entry_perm(e) & 07777, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "fchmodat", t.path);
    }
    BERTH_RETURN_IF_ERROR(SetXattrs(e, -1, t, type));
    FileTimes times = TimesOf(e);
    if (utimensat(t.parent, name, times.times, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(errno, "utimensat", t.path);
    }
    return absl::OkStatus();
  }

  // linkat(2) without AT_SYMLINK_FOLLOW: a symlink target is linked, not followed.
  absl::Status MakeHardlink(const Target& t, const char* link) {
    absl::StatusOr<std::string> target = CleanLayerPath(link);
    if (target.ok() && target->empty()) target = absl::InvalidArgumentError("is the layer root");
    if (target.ok() && *target == t.path)
      target = absl::InvalidArgumentError("is the entry itself");
    BERTH_RETURN_IF_ERROR(
        Annotate(target.status(), absl::StrCat("hardlink target \"", link, "\"")));
    auto [target_parent_path, target_base] = SplitParent(*target);
    BERTH_ASSIGN_OR_RETURN(UniqueFd target_parent,
                           layer_.OpenParent(target_parent_path, /*create=*/false));
    std::string target_name(target_base);
    BERTH_RETURN_IF_ERROR(layer_.Clear(t.parent, t.path, t.name.c_str()));
    if (linkat(target_parent.get(), target_name.c_str(), t.parent, t.name.c_str(), 0) != 0) {
      return ErrnoStatus(errno, "linkat", *target);
    }
    return absl::OkStatus();
  }

  // Sets the entry's xattrs on `fd` or, with fd -1, on the name (not followed).
  absl::Status SetXattrs(archive_entry* e, int fd, const Target& t, mode_t type) {
    if (archive_entry_xattr_reset(e) == 0) return absl::OkStatus();
    std::string by_name = absl::StrCat("/proc/self/fd/", t.parent, "/", t.name);
    const char* key;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
      // user.* is refused on other types (xattr(7)); trusted.*: see unpack.h.
      bool user_ok = type == AE_IFREG || type == AE_IFDIR || !absl::StartsWith(key, "user.");
      if (absl::StartsWith(key, "trusted.") || type == AE_IFLNK || !user_ok) {
        ++stats_.skipped_xattrs;
        continue;
      }
      int rc = fd >= 0 ? fsetxattr(fd, key, value, size, 0)
                       : lsetxattr(by_name.c_str(), key, value, size, 0);
      if (rc != 0 && errno == EOPNOTSUPP) {
        ++stats_.skipped_xattrs;
      } else if (rc != 0) {
        return ErrnoStatus(errno, absl::StrCat("setxattr ", key), t.path);
      }
    }
    return absl::OkStatus();
  }

  archive* a_;
  LayerDir layer_;
  const UnpackOptions& options_;
  UnpackStats stats_;
};

}  // namespace

absl::StatusOr<UnpackStats> UnpackLayer(const std::string& blob_path, const std::string& dir,
                                        const UnpackOptions& options) {
  const std::string context = absl::StrCat("unpack layer `", blob_path, "`");
  absl::StatusOr<UniqueFd> blob = OpenFile(blob_path, O_RDONLY);
  BERTH_RETURN_IF_ERROR(Annotate(blob.status(), context));
  absl::StatusOr<LayerDir> layer = LayerDir::Open(dir, options.overlay_whiteouts);
  BERTH_RETURN_IF_ERROR(Annotate(layer.status(), context));

  // Declared after `blob`, so freed before the descriptor it reads closes.
  std::unique_ptr<archive, ArchiveFree> a(archive_read_new());
  if (!a) return absl::ResourceExhaustedError(absl::StrCat(context, ": archive_read_new"));
  // ARCHIVE_WARN here would mean an external gzip/zstd program: we want the libraries.
  if (archive_read_support_filter_gzip(a.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(a.get()) != ARCHIVE_OK ||
      archive_read_support_format_tar(a.get()) != ARCHIVE_OK) {
    return absl::UnimplementedError(absl::StrCat(
        context, ": libarchive lacks gzip, zstd or tar: ", archive_error_string(a.get())));
  }
  if (archive_read_open_fd(a.get(), blob->get(), kReadBlockSize) != ARCHIVE_OK) {
    return Annotate(ArchiveError(a.get(), "archive_read_open_fd"), context);
  }
  Unpacker unpacker(a.get(), *std::move(layer), options);
  BERTH_RETURN_IF_ERROR(Annotate(unpacker.Run(), context));
  return unpacker.stats();
}

}  // namespace berth::images
