#include "agent/images/unpack_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "agent/images/unpack_path.h"
#include "os/status.h"

namespace berth::images::internal {
namespace {

// Deeper trees than this are not removed (each level holds a descriptor).
constexpr int kMaxRemoveDepth = 256;
constexpr int kOpenAt2Retries = 64;

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

absl::StatusOr<UniqueFd> OpenDirNoFollow(int parent, absl::string_view path, const char* name) {
  UniqueFd fd(openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "openat", path);
  return fd;
}

absl::Status RemoveAllAtDepth(int parent, absl::string_view path, const char* name, int depth) {
  if (unlinkat(parent, name, 0) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR) return ErrnoStatus(errno, "unlinkat", path);
  if (depth >= kMaxRemoveDepth) {
    return absl::ResourceExhaustedError(absl::StrCat("remove `", path, "`: tree too deep"));
  }
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenDirNoFollow(parent, path, name));
  std::unique_ptr<DIR, DirCloser> dir(fdopendir(fd.get()));
  if (!dir) return ErrnoStatus(errno, "fdopendir", path);
  (void)fd.release();  // the DIR owns it now
  // Names first, removals after: readdir(3) is unspecified while entries go.
  std::vector<std::string> names;
  errno = 0;
  while (dirent* d = readdir(dir.get())) {
    if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0) names.push_back(d->d_name);
  }
  if (errno != 0) return ErrnoStatus(errno, "readdir", path);
  for (const std::string& child : names) {
    BERTH_RETURN_IF_ERROR(RemoveAllAtDepth(dirfd(dir.get()), absl::StrCat(path, "/", child),
                                           child.c_str(), depth + 1));
  }
  if (unlinkat(parent, name, AT_REMOVEDIR) != 0) return ErrnoStatus(errno, "unlinkat", path);
  return absl::OkStatus();
}

}  // namespace

int OpenInLayer(int root, const char* path, int flags) {
  open_how how;
  memset(&how, 0, sizeof(how));
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  // EAGAIN: a rename elsewhere raced with the lookup (openat2(2)); nothing else
  // renames in a layer being unpacked, so a few retries suffice.
  for (int i = 0;; ++i) {
    long fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
    if (fd >= 0 || errno != EAGAIN || i == kOpenAt2Retries) return static_cast<int>(fd);
  }
}

absl::Status RemoveAllAt(int parent, absl::string_view path, const char* name) {
  return RemoveAllAtDepth(parent, path, name, 0);
}

absl::StatusOr<LayerDir> LayerDir::Open(const std::string& dir, bool overlay_whiteouts) {
  UniqueFd root(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoStatus(errno, "open", dir);
  UniqueFd probe(OpenInLayer(root.get(), ".", O_PATH | O_DIRECTORY));
  if (!probe) return ErrnoStatus(errno, "openat2 (Linux 5.6 or later)", dir);
  return LayerDir(std::move(root), overlay_whiteouts);
}

absl::StatusOr<UniqueFd> LayerDir::OpenParent(absl::string_view path, bool create) {
  std::string p = path.empty() ? "." : std::string(path);
  UniqueFd fd(OpenInLayer(root(), p.c_str(), O_PATH | O_DIRECTORY));
  if (fd) return fd;
  if ((errno != ENOENT && errno != ENOTDIR) || !create) return ErrnoStatus(errno, "openat2", p);
  return MakeParents(path);
}

// Walks `path` from the root, making what is missing. Each prefix resolves
// inside the layer; mkdirat then adds one plain name to a resolved directory.
absl::StatusOr<UniqueFd> LayerDir::MakeParents(absl::string_view path) {
  UniqueFd dir(OpenInLayer(root(), ".", O_PATH | O_DIRECTORY));
  if (!dir) return ErrnoStatus(errno, "openat2", ".");
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == absl::string_view::npos) end = path.size();
    std::string prefix(path.substr(0, end));
    std::string name(path.substr(start, end - start));
    UniqueFd next(OpenInLayer(root(), prefix.c_str(), O_PATH | O_DIRECTORY));
    if (!next && (errno == ENOENT || errno == ENOTDIR)) {
      // Earlier prefixes resolved to directories, so the trouble is this name.
      BERTH_ASSIGN_OR_RETURN(Existing existing, Lookup(dir.get(), prefix, name.c_str()));
      if (existing != Existing::kAbsent && existing != Existing::kWhiteout) {
        return absl::FailedPreconditionError(absl::StrCat(
            "parent `", prefix, "` is not a directory or a symlink dangling inside the layer"));
      }
      BERTH_ASSIGN_OR_RETURN(next, ReplaceWithDir(dir.get(), prefix, name.c_str(), existing));
      BERTH_RETURN_IF_ERROR(SetDirAttrsLater(next.get(), prefix, 0755, std::nullopt));
    } else if (!next) {
      return ErrnoStatus(errno, "openat2", prefix);
    }
    dir = std::move(next);
    start = end + 1;
  }
  return dir;
}

absl::StatusOr<Existing> LayerDir::Lookup(int parent, absl::string_view path, const char* name) {
  struct stat st;
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Existing::kAbsent;
    return ErrnoStatus(errno, "fstatat", path);
  }
  if (S_ISDIR(st.st_mode)) return Existing::kDirectory;
  if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return Existing::kWhiteout;
  return Existing::kOther;
}

absl::Status LayerDir::Clear(int parent, absl::string_view path, const char* name) {
  BERTH_ASSIGN_OR_RETURN(Existing existing, Lookup(parent, path, name));
  if (existing == Existing::kAbsent) return absl::OkStatus();
  if (existing == Existing::kDirectory) return RemoveAllAt(parent, path, name);
  if (unlinkat(parent, name, 0) != 0) return ErrnoStatus(errno, "unlinkat", path);
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> LayerDir::MakeDir(int parent, absl::string_view path, const char* name) {
  BERTH_ASSIGN_OR_RETURN(Existing existing, Lookup(parent, path, name));
  if (existing == Existing::kDirectory) return OpenDirNoFollow(parent, path, name);
  return ReplaceWithDir(parent, path, name, existing);
}

// A directory in place of a whiteout device means this layer removed the lower
// directory and made a new one: opaque, so nothing of the lower one shows.
absl::StatusOr<UniqueFd> LayerDir::ReplaceWithDir(int parent, absl::string_view path,
                                                  const char* name, Existing existing) {
  if (existing != Existing::kAbsent && unlinkat(parent, name, 0) != 0) {
    return ErrnoStatus(errno, "unlinkat", path);
  }
  if (mkdirat(parent, name, 0700) != 0) return ErrnoStatus(errno, "mkdirat", path);
  BERTH_ASSIGN_OR_RETURN(UniqueFd dir, OpenDirNoFollow(parent, path, name));
  if (existing == Existing::kWhiteout && overlay_whiteouts_) {
    BERTH_RETURN_IF_ERROR(SetOpaque(dir.get(), path));
  }
  return dir;
}

absl::Status LayerDir::SetOpaque(int dir_fd, absl::string_view path) {
  if (fsetxattr(dir_fd, "trusted.overlay.opaque", "y", 1, 0) != 0) {
    return ErrnoStatus(errno, "fsetxattr trusted.overlay.opaque", path);
  }
  ++opaque_count_;
  return absl::OkStatus();
}

absl::Status LayerDir::SetDirAttrsLater(int dir_fd, absl::string_view path, mode_t mode,
                                        std::optional<FileTimes> times) {
  struct stat st;
  if (fstat(dir_fd, &st) != 0) return ErrnoStatus(errno, "fstat", path);
  auto [it, inserted] = dir_index_.try_emplace(st.st_ino, dirs_.size());
  if (inserted) {
    dirs_.push_back(DirAttrs{std::string(path), st.st_ino, mode, times});
  } else {
    DirAttrs& attrs = dirs_[it->second];
    attrs.path = std::string(path);
    attrs.mode = mode;
    attrs.times = times;
  }
  return absl::OkStatus();
}

absl::Status LayerDir::FinishDirs() {
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    auto [parent_path, name] = SplitParent(it->path);
    std::string parent_str = parent_path.empty() ? "." : std::string(parent_path);
    UniqueFd parent(OpenInLayer(root(), parent_str.c_str(), O_PATH | O_DIRECTORY));
    if (!parent) {
      if (errno == ENOENT || errno == ENOTDIR) continue;  // removed by a later entry
      return ErrnoStatus(errno, "openat2", parent_str);
    }
    UniqueFd dir(openat(parent.get(), std::string(name).c_str(),
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;  // replaced
      return ErrnoStatus(errno, "openat", it->path);
    }
    struct stat st;
    if (fstat(dir.get(), &st) != 0) return ErrnoStatus(errno, "fstat", it->path);
    if (st.st_ino != it->ino) continue;  // replaced by another directory
    if (fchmod(dir.get(), it->mode) != 0) return ErrnoStatus(errno, "fchmod", it->path);
    if (it->times && futimens(dir.get(), it->times->times) != 0) {
      return ErrnoStatus(errno, "futimens", it->path);
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::images::internal
