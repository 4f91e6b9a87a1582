// The content store: image blobs (manifests, configs, compressed layers) by
// digest under one root directory, laid out like an OCI image layout
// (image-spec image-layout.md):
//
//   <root>/blobs/sha256/<hex>   committed blobs, read-only (0444), never rewritten
//   <root>/ingest/ingest-XXXXXX blobs being written, one temp file per writer
//
// A blob enters only through an Ingest, which hashes while it writes and, on
// Commit, checks the size and digest it was promised, fsyncs, and renames the
// temp file into place: the rename is atomic, so a reader or a crash sees the
// whole verified blob or none. A mismatch is DATA_LOSS naming expected and
// actual, and leaves nothing behind.
//
//   BERTH_ASSIGN_OR_RETURN(ContentStore store, ContentStore::Open("/var/lib/berth/content"));
//   BERTH_ASSIGN_OR_RETURN(Ingest ingest, store.BeginIngest());
//   BERTH_RETURN_IF_ERROR(client.FetchBlob(repo, layer.digest, [&](absl::string_view chunk) {
//     return ingest.Write(chunk).ok();
//   }));
//   BERTH_RETURN_IF_ERROR(ingest.Commit(layer.digest, layer.size).status());
//   std::string path = store.Path(layer.digest);  // for the unpacker
//
// Concurrency: the store holds no state but its root, so any number of threads
// and processes may use it. Two ingests of the same digest write separate temp
// files; whichever commits second finds the blob present and drops its copy.
// GarbageCollect removes what it is not told to keep, so the caller must keep
// blobs being pulled (or hold its own lock) while it runs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/images/digest.h"
#include "os/unique_fd.h"

namespace berth::images {

struct BlobInfo {
  Digest digest;
  int64_t size = 0;
  absl::Time modified;
};

// For CRI ImageFsInfo: what the store occupies on its file system.
struct StoreUsage {
  int64_t used_bytes = 0;   // allocated blocks (st_blocks * 512), as du counts
  int64_t inodes_used = 0;  // files and directories, the root included
};

struct GcResult {
  int blobs_removed = 0;
  int64_t bytes_removed = 0;  // blob sizes
  int ingests_removed = 0;
};

// A blob being written. Move-only; destroying one that was not committed aborts it.
class Ingest {
 public:
  Ingest(Ingest&&) = default;
  Ingest& operator=(Ingest&& other) noexcept;
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;
  ~Ingest() { Abort(); }

  // Appends `chunk` and hashes it.
  absl::Status Write(absl::string_view chunk);
  int64_t written() const { return written_; }
  // Without durability Commit skips its fsyncs: for a caller that flushes the
  // file system (syncfs) later and marks what refers to the blob unflushed
  // until then, as a pull does (images.h, write-behind). A blob committed so
  // may be torn by a power cut; the image naming it is then dropped at open
  // and the garbage collection removes the blob.
  void set_durable(bool durable) { durable_ = durable; }
  const std::string& temp_path() const { return temp_path_; }

  // Verifies what was written against `expected_digest` and, unless it is
  // negative, `expected_size`, then stores it. An empty `expected_digest`
  // stores the blob under its computed digest (for content Berth made itself).
  // Returns the digest stored under. A mismatch is DATA_LOSS; on any error the
  // temp file is gone and nothing is stored. One Commit or Abort per Ingest.
  absl::StatusOr<Digest> Commit(const Digest& expected_digest, int64_t expected_size = -1);
  // Drops the temp file. Safe to call more than once.
  void Abort();

 private:
  friend class ContentStore;
  Ingest(std::string root, std::string temp_path, UniqueFd fd, DigestAlgorithm algorithm)
      : root_(std::move(root)),
        temp_path_(std::move(temp_path)),
        fd_(std::move(fd)),
        hasher_(algorithm) {}
  absl::StatusOr<Digest> Verify(const Digest& expected_digest, int64_t expected_size);
  absl::Status Install(const Digest& digest);

  std::string root_;
  std::string temp_path_;
  UniqueFd fd_;  // invalid once committed or aborted
  bool durable_ = true;
  Hasher hasher_;
  int64_t written_ = 0;
};

class ContentStore {
 public:
  // ReadBlob's default limit: manifests and configs, not layers (the
  // distribution spec lets registries refuse manifests over 4 MiB).
  static constexpr int64_t kMaxReadBlobSize = 4 << 20;

  // Creates <root>/blobs/sha256 and <root>/ingest if missing.
  static absl::StatusOr<ContentStore> Open(std::string root);

  const std::string& root() const { return root_; }
  // <root>/blobs/<algorithm>/<hex>, whether or not it exists.
  std::string Path(const Digest& digest) const;
  bool Has(const Digest& digest) const { return Size(digest).ok(); }
  // NOT_FOUND when absent.
  absl::StatusOr<int64_t> Size(const Digest& digest) const;
  // The whole blob, checked against its digest (DATA_LOSS if it no longer
  // matches). FAILED_PRECONDITION when larger than `max_size`.
  absl::StatusOr<std::string> ReadBlob(const Digest& digest,
                                       int64_t max_size = kMaxReadBlobSize) const;

  // Hashes with `algorithm`; a Commit expecting another algorithm rereads the file.
  absl::StatusOr<Ingest> BeginIngest(DigestAlgorithm algorithm = DigestAlgorithm::kSha256) const;
  // BeginIngest + Write + Commit for a blob in memory.
  absl::StatusOr<Digest> WriteBlob(absl::string_view bytes,
                                   const Digest& expected_digest = Digest()) const;

  // NOT_FOUND when absent.
  absl::Status Delete(const Digest& digest) const;

  // Calls `fn` for every committed blob (files under blobs/ whose names are not
  // digests are skipped), stopping at the first error it returns.
  absl::Status Walk(const std::function<absl::Status(const BlobInfo&)>& fn) const;
  absl::StatusOr<std::vector<BlobInfo>> List() const;

  // Deletes every blob not in `keep`, and ingest temp files last modified
  // before `now - ingest_max_age` (left by a crash or an abandoned pull; make
  // the age longer than any pull stays silent).
  absl::StatusOr<GcResult> GarbageCollect(const absl::flat_hash_set<Digest>& keep,
                                          absl::Duration ingest_max_age,
                                          absl::Time now = absl::Now()) const;

  absl::StatusOr<StoreUsage> Usage() const;

 private:
  explicit ContentStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace berth::images
