#include "agent/images/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "os/files.h"
#include "os/status.h"

namespace berth::images {
namespace {

constexpr DigestAlgorithm kAlgorithms[] = {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384,
                                           DigestAlgorithm::kSha512};

std::string BlobDir(const std::string& root, DigestAlgorithm algorithm) {
  return absl::StrCat(root, "/blobs/", DigestAlgorithmName(algorithm));
}
std::string IngestDir(const std::string& root) { return absl::StrCat(root, "/ingest"); }

absl::Status CheckNotEmpty(const Digest& digest, absl::string_view call) {
  if (!digest.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(call, ": empty digest"));
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// Calls `fn(name, stat)` for each entry of `dir` but "." and "..", with lstat
// semantics. A missing `dir`, and entries that vanish while we look, are skipped.
absl::Status ForEachEntry(
    const std::string& dir,
    const std::function<absl::Status(const std::string& name, const struct stat& st)>& fn) {
  absl::StatusOr<UniqueFd> fd = OpenFile(dir, O_RDONLY | O_DIRECTORY);
  if (absl::IsNotFound(fd.status())) return absl::OkStatus();
  if (!fd.ok()) return fd.status();
  int raw = fd->release();
  std::unique_ptr<DIR, DirCloser> d(fdopendir(raw));
  if (d == nullptr) {
    int err = errno;
    close(raw);
    return ErrnoStatus(err, "fdopendir", dir);
  }
  for (;;) {
    errno = 0;
    struct dirent* e = readdir(d.get());
    if (e == nullptr) {
      if (errno != 0) return ErrnoStatus(errno, "readdir", dir);
      return absl::OkStatus();
    }
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (fstatat(dirfd(d.get()), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus(errno, "fstatat", absl::StrCat(dir, "/", name));
    }
    BERTH_RETURN_IF_ERROR(fn(name, st));
  }
}

absl::Status AddUsage(const std::string& path, const struct stat& st, StoreUsage* usage) {
  usage->inodes_used += 1;
  usage->used_bytes += static_cast<int64_t>(st.st_blocks) * 512;
  if (!S_ISDIR(st.st_mode)) return absl::OkStatus();
  return ForEachEntry(path, [&](const std::string& name, const struct stat& child) {
    return AddUsage(absl::StrCat(path, "/", name), child, usage);
  });
}

absl::Status FsyncDir(const std::string& dir) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
  if (fsync(fd.get()) != 0) return ErrnoStatus(errno, "fsync", dir);
  return absl::OkStatus();
}

}  // namespace

// ---- Ingest ----

Ingest& Ingest::operator=(Ingest&& other) noexcept {
  if (this != &other) {
    Abort();
    root_ = std::move(other.root_);
    temp_path_ = std::move(other.temp_path_);
    fd_ = std::move(other.fd_);
    hasher_ = std::move(other.hasher_);
    written_ = other.written_;
  }
  return *this;
}

absl::Status Ingest::Write(absl::string_view chunk) {
  if (!fd_.valid()) return absl::FailedPreconditionError("write: ingest is closed");
  const char* p = chunk.data();
  size_t left = chunk.size();
  while (left > 0) {
    ssize_t n = write(fd_.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status error = ErrnoStatus(errno, "write", temp_path_);
      // The file now holds part of a chunk the hash has not seen: never commit it.
      Abort();
      return error;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  hasher_.Update(chunk);
  written_ += static_cast<int64_t>(chunk.size());
  return absl::OkStatus();
}

void Ingest::Abort() {
  if (!fd_.valid()) return;
  fd_.reset();
  unlink(temp_path_.c_str());  // best effort: GarbageCollect sweeps leftovers
}

absl::StatusOr<Digest> Ingest::Verify(const Digest& expected_digest, int64_t expected_size) {
  std::string what = expected_digest.empty() ? "blob" : expected_digest.string();
  if (expected_size >= 0 && written_ != expected_size) {
    return absl::DataLossError(absl::StrCat("commit ", what, ": size mismatch: expected ",
                                            expected_size, " bytes, got ", written_));
  }
  Digest actual = hasher_.Finish();
  if (!expected_digest.empty() && expected_digest.algorithm() != hasher_.algorithm()) {
    BERTH_ASSIGN_OR_RETURN(actual, DigestOfFile(temp_path_, expected_digest.algorithm()));
  }
  if (!expected_digest.empty() && actual != expected_digest) {
    return absl::DataLossError(absl::StrCat("commit ", what, ": digest mismatch: expected ",
                                            expected_digest.string(), ", got ", actual.string()));
  }
  return actual;
}

absl::Status Ingest::Install(const Digest& digest) {
  std::string dir = BlobDir(root_, digest.algorithm());
  std::string target = absl::StrCat(dir, "/", digest.hex());
  struct stat st;
  if (stat(target.c_str(), &st) == 0) {
    // Committed already (by a concurrent ingest or an earlier pull): the same
    // bytes by construction, so keep that one.
    Abort();
    return absl::OkStatus();
  }
  if (durable_ && fsync(fd_.get()) != 0) return ErrnoStatus(errno, "fsync", temp_path_);
  if (fchmod(fd_.get(), 0444) != 0) return ErrnoStatus(errno, "fchmod", temp_path_);
  BERTH_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  if (rename(temp_path_.c_str(), target.c_str()) != 0) {
    return ErrnoStatus(errno, "rename", absl::StrCat(temp_path_, "` to `", target));
  }
  fd_.reset();  // committed: nothing left for Abort to remove
  // The rename itself must survive a power loss too (rename(2), fsync(2) NOTES).
  return durable_ ? FsyncDir(dir) : absl::OkStatus();
}

absl::StatusOr<Digest> Ingest::Commit(const Digest& expected_digest, int64_t expected_size) {
  if (!fd_.valid()) return absl::FailedPreconditionError("commit: ingest is closed");
  absl::StatusOr<Digest> digest = Verify(expected_digest, expected_size);
  if (!digest.ok()) {
    Abort();
    return digest.status();
  }
  if (absl::Status s = Install(*digest); !s.ok()) {
    Abort();
    return Annotate(s, absl::StrCat("commit ", digest->string()));
  }
  return digest;
}

// ---- ContentStore ----

absl::StatusOr<ContentStore> ContentStore::Open(std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  BERTH_RETURN_IF_ERROR(MakeDirs(BlobDir(root, DigestAlgorithm::kSha256), 0700));
  BERTH_RETURN_IF_ERROR(MakeDirs(IngestDir(root), 0700));
  return ContentStore(std::move(root));
}

std::string ContentStore::Path(const Digest& digest) const {
  return absl::StrCat(BlobDir(root_, digest.algorithm()), "/", digest.hex());
}

absl::StatusOr<int64_t> ContentStore::Size(const Digest& digest) const {
  BERTH_RETURN_IF_ERROR(CheckNotEmpty(digest, "size"));
  std::string path = Path(digest);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
  return static_cast<int64_t>(st.st_size);
}

absl::StatusOr<std::string> ContentStore::ReadBlob(const Digest& digest, int64_t max_size) const {
  BERTH_RETURN_IF_ERROR(CheckNotEmpty(digest, "read blob"));
  std::string path = Path(digest);
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat", path);
  if (st.st_size > max_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "read blob `", path, "`: ", st.st_size, " bytes is more than the limit of ", max_size));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read", path);
    if (n == 0) break;  // shorter than fstat said: caught by the digest check
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  if (Digest actual = DigestOfBytes(data, digest.algorithm()); actual != digest) {
    return absl::DataLossError(
        absl::StrCat("read blob `", path, "`: content hashes to ", actual.string()));
  }
  return data;
}

absl::StatusOr<Ingest> ContentStore::BeginIngest(DigestAlgorithm algorithm) const {
  std::string path = absl::StrCat(IngestDir(root_), "/ingest-XXXXXX");
  int fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "mkostemp", path);
  return Ingest(root_, std::move(path), UniqueFd(fd), algorithm);
}

absl::StatusOr<Digest> ContentStore::WriteBlob(absl::string_view bytes,
                                               const Digest& expected_digest) const {
  BERTH_ASSIGN_OR_RETURN(Ingest ingest,
                         BeginIngest(expected_digest.empty() ? DigestAlgorithm::kSha256
                                                             : expected_digest.algorithm()));
  BERTH_RETURN_IF_ERROR(ingest.Write(bytes));
  return ingest.Commit(expected_digest, static_cast<int64_t>(bytes.size()));
}

absl::Status ContentStore::Delete(const Digest& digest) const {
  BERTH_RETURN_IF_ERROR(CheckNotEmpty(digest, "delete"));
  std::string path = Path(digest);
  if (unlink(path.c_str()) != 0) return ErrnoStatus(errno, "unlink", path);
  return absl::OkStatus();
}

absl::Status ContentStore::Walk(const std::function<absl::Status(const BlobInfo&)>& fn) const {
  for (DigestAlgorithm algorithm : kAlgorithms) {
    BERTH_RETURN_IF_ERROR(ForEachEntry(
        BlobDir(root_, algorithm), [&](const std::string& name, const struct stat& st) {
          absl::StatusOr<Digest> digest = Digest::FromHex(algorithm, name);
          if (!digest.ok() || !S_ISREG(st.st_mode)) return absl::OkStatus();  // not ours
          return fn(BlobInfo{*std::move(digest), static_cast<int64_t>(st.st_size),
                             absl::TimeFromTimespec(st.st_mtim)});
        }));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BlobInfo>> ContentStore::List() const {
  std::vector<BlobInfo> blobs;
  BERTH_RETURN_IF_ERROR(Walk([&blobs](const BlobInfo& blob) {
    blobs.push_back(blob);
    return absl::OkStatus();
  }));
  return blobs;
}

absl::StatusOr<GcResult> ContentStore::GarbageCollect(const absl::flat_hash_set<Digest>& keep,
                                                      absl::Duration ingest_max_age,
                                                      absl::Time now) const {
  // Collect first, then delete: readdir(3) leaves unspecified what a directory
  // changed under it returns.
  std::vector<BlobInfo> unreferenced;
  BERTH_RETURN_IF_ERROR(Walk([&](const BlobInfo& blob) {
    if (!keep.contains(blob.digest)) unreferenced.push_back(blob);
    return absl::OkStatus();
  }));
  GcResult result;
  for (const BlobInfo& blob : unreferenced) {
    absl::Status s = Delete(blob.digest);
    if (absl::IsNotFound(s)) continue;  // someone else removed it
    BERTH_RETURN_IF_ERROR(Annotate(s, "garbage collect"));
    result.blobs_removed += 1;
    result.bytes_removed += blob.size;
  }
  std::vector<std::string> stale;
  std::string ingest_dir = IngestDir(root_);
  BERTH_RETURN_IF_ERROR(
      ForEachEntry(ingest_dir, [&](const std::string& name, const struct stat& st) {
        if (S_ISREG(st.st_mode) && absl::TimeFromTimespec(st.st_mtim) < now - ingest_max_age) {
          stale.push_back(absl::StrCat(ingest_dir, "/", name));
        }
        return absl::OkStatus();
      }));
  for (const std::string& path : stale) {
    if (unlink(path.c_str()) != 0) {
      if (errno == ENOENT) continue;
      return Annotate(ErrnoStatus(errno, "unlink", path), "garbage collect");
    }
    result.ingests_removed += 1;
  }
  return result;
}

absl::StatusOr<StoreUsage> ContentStore::Usage() const {
  struct stat st;
  if (lstat(root_.c_str(), &st) != 0) return ErrnoStatus(errno, "lstat", root_);
  StoreUsage usage;
  BERTH_RETURN_IF_ERROR(AddUsage(root_, st, &usage));
  return usage;
}

}  // namespace berth::images
