// berthd's images: pull from registries (and mirrors), import an OCI layout,
// resolve by tag / digest / id, list, remove with garbage collection, and the
// layer directories a container's overlay is made of.
//
//   BERTH_ASSIGN_OR_RETURN(auto images, ImageManager::Open(options, &db));
//   BERTH_ASSIGN_OR_RETURN(ImageRecord img, images->Pull("busybox", Credentials{}));
//   std::vector<std::string> lowers = images->LayerDirs(img);  // top first, for overlayfs
//
// On disk: <root>/content (blobs by digest, content_store.h), <root>/layers/<chain
// id hex> (each layer unpacked alone, an overlayfs lower dir). In SQLite: images
// and the references naming them, written in one transaction once every blob
// and layer is in place, so a crash mid-pull leaves no half image visible; what
// it leaves (partial downloads, layer temp dirs, unreferenced blobs) goes at
// the next Open. Queries answer from memory.
//
// Durability is written behind: a pull answers once its files are in the page
// cache (a kill -9 of berthd loses nothing) and a background thread then
// flushes the file system (syncfs). Until that flush the image carries a row
// in `image_unsynced` with the boot it was written in; an Open in a later boot
// (the machine went down before the flush) drops such an image, whose files may
// be torn, and it is pulled again. No image shown is ever torn; one pulled
// within a flush of a power cut must be pulled again.
//
// Concurrent pulls share work: one download per blob digest and one unpack per
// chain id at a time; the others wait for it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/images/content_store.h"
#include "agent/images/manifest.h"
#include "agent/images/manifest_config.h"
#include "agent/images/reference.h"
#include "agent/images/registry.h"
#include "agent/images/unpack.h"
#include "agent/store/db.h"
#include "os/unique_fd.h"

namespace berth::images {

struct ImageRecord {
  std::string id;  // the config digest, as containerd and CRI name images
  std::string manifest_digest;
  std::vector<std::string> repo_tags;     // "docker.io/library/busybox:latest"
  std::vector<std::string> repo_digests;  // "docker.io/library/busybox@sha256:..."
  int64_t size = 0;                       // config + compressed layers
  std::vector<std::string> layers;        // blob digests, base first
  std::vector<std::string> chain_ids;     // base first
  std::string config_json;
  ImageConfig config;
};

struct ImageManagerOptions {
  std::string root;       // <--root>/images
  std::string hosts_dir;  // registries.d (hosts.h)
  std::string platform_os = "linux";
  std::string platform_arch;  // "" = this machine's
  // This boot's id ("" = /proc/sys/kernel/random/boot_id). Tests set one to
  // simulate a reboot.
  std::string boot_id;
  // false: no syncer thread and no flush on destruction, so what is pulled
  // stays unflushed, as a power cut before the flush would leave it (tests).
  bool flush_behind = true;
  // Limits on one layer's unpacked contents against decompression bombs
  // (RESOURCE_EXHAUSTED, the pull fails and leaves nothing); 0: none.
  uint64_t max_layer_bytes = uint64_t{64} << 30;
  uint64_t max_layer_entries = 2000000;
};

// The SQL for the images tables, for the agent's schema list (agent/store).
extern const char kImagesSchemaV1[];
extern const char kImagesSchemaV2[];  // image_unsynced

class ImageManager {
 public:
  static absl::StatusOr<std::unique_ptr<ImageManager>> Open(ImageManagerOptions options,
                                                            store::Database* db);
  // Flushes what is still unsynced (Flush) and stops the syncer.
  ~ImageManager();

  // `cancelled`, polled while it waits (at least every 100 ms and on every
  // chunk), ends the pull with CANCELLED: the client went or its deadline
  // passed. Whatever the pull claimed is released and its temp dirs removed.
  absl::StatusOr<ImageRecord> Pull(const std::string& image, const Credentials& credentials,
                                   const Cancelled& cancelled = nullptr);
  // Imports every image of an OCI image layout directory (index.json, blobs/);
  // each manifest's org.opencontainers.image.ref.name names it: a full reference,
  // or a tag put after `name` ("docker.io/berth/demo" + "latest").
  absl::StatusOr<std::vector<ImageRecord>> ImportOciLayout(const std::string& dir,
                                                           const std::string& name = "");

  // By reference ("busybox", "x:5000/a:tag", "name@sha256:..."), by id, or by
  // a unique id prefix of at least 3 hex digits. NOT_FOUND otherwise.
  absl::StatusOr<ImageRecord> Resolve(const std::string& image) const;
  std::vector<ImageRecord> List() const;
  // Removes the image `image` names, with all its references, then the blobs
  // and layers no other image uses. Not found is OK (CRI: idempotent);
  // FAILED_PRECONDITION when `in_use` says a container uses it.
  absl::Status Remove(const std::string& image);
  void SetInUse(std::function<bool(const std::string& image_id)> in_use);

  // Makes every image saved so far durable: one syncfs of the images' file
  // system, then their `image_unsynced` rows go. The syncer thread calls it
  // after each pull; tests and benches call it to wait for durability.
  absl::Status Flush();
  // Images saved and not yet flushed.
  size_t UnsyncedCount() const;

  std::vector<std::string> LayerDirs(const ImageRecord& image) const;
  // Images dropped at start-up because their config no longer parses, each
  // "image <id>: <why>" (they are pulled again when wanted).
  std::vector<std::string> Unreadable() const {
    absl::MutexLock lock(&mu_);
    return unreadable_;
  }
  absl::StatusOr<StoreUsage> Usage() const;
  const std::string& root() const { return options_.root; }

 private:
  ImageManager(ImageManagerOptions options, ContentStore store, store::Database* db);
  absl::Status Load();
  // Rows of `image_unsynced`: from another boot, the image is dropped (its
  // files may be torn); from this one (berthd crashed, the page cache holds
  // them), one Flush now.
  absl::Status RecoverUnsynced();
  void SyncLoop();
  // Blobs and layer dirs no image names; ingests older than `ingest_age`.
  absl::Status CollectGarbage(absl::Duration ingest_age);
  absl::StatusOr<ImageRecord> PullFrom(RegistryClient& client, const Reference& ref,
                                       const Cancelled& cancelled);
  // Downloads `blob` into the store unless it is there; every chunk also goes
  // to `tee` when given (the streaming unpacker). *streamed says whether it did.
  // A layer blob is not fsynced (write-behind: Finish marks the image
  // unsynced); any other blob (the config) is, since no row covers it.
  absl::Status FetchBlob(RegistryClient& client, const std::string& repo, const Descriptor& blob,
                         const std::function<bool(absl::string_view)>* tee = nullptr,
                         bool* streamed = nullptr, bool layer = false);
  // Brings layer blob i into the store; chunks also go to `tee` if it is not
  // null (and *streamed says whether they did).
  using FetchLayer = std::function<absl::Status(
      size_t i, const std::function<bool(absl::string_view)>* tee, bool* streamed)>;
  // With the manifest and config in the store: brings the layer blobs in with
  // `fetch`, a few in parallel, each unpacked as it arrives (a pipe into the
  // unpacker's thread) or from the store when it was already there; then the
  // layer dirs renamed into place and the record saved, unsynced (Flush).
  absl::StatusOr<ImageRecord> Finish(const Digest& manifest_digest, const Manifest& manifest,
                                     const std::vector<std::string>& names, const FetchLayer& fetch,
                                     const Cancelled& cancelled = nullptr);
  // One layer: fetched (and, with `tmp`, unpacked into it, streaming).
  absl::Status FetchAndUnpack(
      const Descriptor& blob, const std::string& tmp,
      const std::function<absl::Status(const std::function<bool(absl::string_view)>*, bool*)>&
          fetch);
  // Saves the record; with `unsynced_seq` > 0 also its `image_unsynced` row.
  absl::Status Save(const ImageRecord& image, int64_t unsynced_seq);
  // Write-behind bookkeeping of one Finish: registered before it writes
  // anything, with every chain id and layer digest it names, so a concurrent
  // pull that finds those already on disk knows they are not durable yet.
  int64_t BeginWrite(const ImageRecord& image);
  // After Save: the token waits for the next Flush (`committed`), or, when the
  // pull wrote nothing and shares nothing unsynced, is simply dropped.
  void EndWrite(int64_t seq, bool committed);
  // Whether another token names any of the keys token `seq` names.
  bool SharesUnsynced(int64_t seq) const;
  std::string LayerDir(const std::string& chain_id) const;
  UnpackOptions Limits() const {
    return UnpackOptions{.max_bytes = options_.max_layer_bytes,
                         .max_entries = options_.max_layer_entries};
  }
  // Waits while another thread works on `key`, then marks it ours; Done releases.
  // CANCELLED, claiming nothing, once `cancelled` says so. Keys are
  // "blob <digest>" or "layer <chain id>": an uncompressed base layer's blob
  // digest *is* its chain id, and one pull claims both.
  absl::Status Claim(const std::string& key, const Cancelled& cancelled);
  void Done(const std::string& key);

  ImageManagerOptions options_;
  ContentStore store_;
  store::Database* db_;
  mutable absl::Mutex mu_;
  std::map<std::string, ImageRecord> images_ ABSL_GUARDED_BY(mu_);  // by id
  std::map<std::string, std::string> refs_ ABSL_GUARDED_BY(mu_);    // name -> id
  std::set<std::string> busy_ ABSL_GUARDED_BY(mu_);                 // digests, chain ids
  std::vector<std::string> unreadable_ ABSL_GUARDED_BY(mu_);
  std::function<bool(const std::string&)> in_use_ ABSL_GUARDED_BY(mu_);
  absl::Mutex db_mu_;  // one writer on the database at a time

  // Write-behind (Flush, SyncLoop).
  struct PendingWrite {
    std::vector<std::string> keys;  // chain ids and layer digests
    bool committed = false;         // its row is saved: the next Flush covers it
  };
  mutable absl::Mutex sync_mu_;
  std::map<int64_t, PendingWrite> pending_ ABSL_GUARDED_BY(sync_mu_);  // by seq
  int64_t next_seq_ ABSL_GUARDED_BY(sync_mu_) = 1;
  bool stop_ ABSL_GUARDED_BY(sync_mu_) = false;
  absl::Mutex flush_mu_;  // one Flush at a time
  // Open from Open on: syncfs(2) reports a writeback error once per open file
  // that saw it happen (errseq), so a fd opened at each Flush could miss one.
  UniqueFd root_fd_;
  std::thread syncer_;
};

}  // namespace berth::images
