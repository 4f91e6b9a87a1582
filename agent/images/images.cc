#include "agent/images/images.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <random>
#include <system_error>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/images/hosts.h"
#include "agent/images/manifest_platform.h"
#include "agent/images/unpack.h"
#include "os/files.h"
#include "os/log.h"
#include "os/status.h"
#include "os/unique_fd.h"

namespace berth::images {

const char kImagesSchemaV1[] = R"sql(
CREATE TABLE images(
  id TEXT PRIMARY KEY,
  manifest_digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  layers TEXT NOT NULL,      -- blob digests, base first, space separated
  chain_ids TEXT NOT NULL,   -- the same order
  config TEXT NOT NULL,      -- the image config JSON
  created_at INTEGER NOT NULL);
CREATE TABLE image_refs(
  name TEXT PRIMARY KEY,     -- "docker.io/library/busybox:latest" or "...@sha256:..."
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE);
)sql";

// A row per Finish whose files may still be only in the page cache (images.h).
const char kImagesSchemaV2[] = R"sql(
CREATE TABLE image_unsynced(
  seq INTEGER PRIMARY KEY,
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  boot_id TEXT NOT NULL);
)sql";

namespace {

std::string NativeArch() {
  struct utsname u;
  uname(&u);
  absl::string_view m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (absl::StartsWith(m, "arm")) return "arm";
  return std::string(m);
}

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

absl::Status RemoveTree(const std::string& path) {
  if (nftw(path.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "remove", path);
  }
  return absl::OkStatus();
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(rng() % 1000000000);
}

}  // namespace

ImageManager::ImageManager(ImageManagerOptions options, ContentStore store, store::Database* db)
    : options_(std::move(options)), store_(std::move(store)), db_(db) {}

ImageManager::~ImageManager() {
  {
    absl::MutexLock lock(&sync_mu_);
    stop_ = true;
  }
  if (syncer_.joinable()) syncer_.join();
  if (!options_.flush_behind) return;
  if (absl::Status s = Flush(); !s.ok()) BERTH_LOG(WARNING) << "images: last flush: " << s;
}

absl::StatusOr<std::unique_ptr<ImageManager>> ImageManager::Open(ImageManagerOptions options,
                                                                 store::Database* db) {
  if (options.platform_arch.empty()) options.platform_arch = NativeArch();
  BERTH_RETURN_IF_ERROR(MakeDirs(options.root + "/layers", 0700));
  BERTH_ASSIGN_OR_RETURN(ContentStore store, ContentStore::Open(options.root + "/content"));
  if (options.boot_id.empty()) {
    BERTH_ASSIGN_OR_RETURN(options.boot_id, ReadFile("/proc/sys/kernel/random/boot_id"));
    options.boot_id = std::string(absl::StripAsciiWhitespace(options.boot_id));
  }
  std::unique_ptr<ImageManager> m(new ImageManager(std::move(options), std::move(store), db));
  m->root_fd_ = UniqueFd(open(m->options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!m->root_fd_.valid()) return ErrnoStatus(errno, "open", m->options_.root);
  BERTH_RETURN_IF_ERROR(m->RecoverUnsynced());
  BERTH_RETURN_IF_ERROR(m->Load());
  // Nothing is pulling yet: every ingest file is a crash's leftover, and so is
  // everything of an image RecoverUnsynced dropped.
  BERTH_RETURN_IF_ERROR(m->CollectGarbage(absl::ZeroDuration()));
  if (m->options_.flush_behind) m->syncer_ = std::thread([p = m.get()] { p->SyncLoop(); });
  return m;
}

absl::Status ImageManager::RecoverUnsynced() {
  BERTH_ASSIGN_OR_RETURN(
      store::Statement s,
      db_->Prepare(
          "SELECT u.seq, u.image_id, u.boot_id, "
          "(SELECT group_concat(name, ' ') FROM image_refs r WHERE r.image_id = u.image_id) "
          "FROM image_unsynced u ORDER BY u.seq"));
  std::vector<std::string> lost;
  bool flush = false;
  int64_t last_seq = 0;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    last_seq = std::max(last_seq, s.Int(0));
    if (s.Text(2) == options_.boot_id) {
      flush = true;
      absl::MutexLock lock(&sync_mu_);
      pending_[s.Int(0)].committed = true;
    } else {
      BERTH_LOG(WARNING) << "image " << s.Text(1) << " (" << s.Text(3)
                         << ") was not yet flushed to disk when the machine went down; its "
                            "files may be torn, so it is dropped: pull it again";
      lost.push_back(s.Text(1));
    }
  }
  {
    absl::MutexLock lock(&sync_mu_);
    next_seq_ = last_seq + 1;
  }
  if (!lost.empty()) {
    absl::MutexLock db_lock(&db_mu_);
    BERTH_ASSIGN_OR_RETURN(store::Transaction tx, db_->Begin());
    for (const std::string& id : lost) {
      BERTH_ASSIGN_OR_RETURN(store::Statement del, db_->Prepare("DELETE FROM images WHERE id = ?"));
      del.Bind(1, id);
      BERTH_RETURN_IF_ERROR(del.Run());  // refs and unsynced rows cascade
    }
    BERTH_RETURN_IF_ERROR(tx.Commit());
  }
  if (flush) {
    // A failure is logged and marked (Flush); the images serve until then.
    if (absl::Status s = Flush(); !s.ok()) BERTH_LOG(ERROR) << "images: flush at start: " << s;
  }
  return absl::OkStatus();
}

int64_t ImageManager::BeginWrite(const ImageRecord& image) {
  PendingWrite w;
  w.keys = image.chain_ids;
  w.keys.insert(w.keys.end(), image.layers.begin(), image.layers.end());
  absl::MutexLock lock(&sync_mu_);
  const int64_t seq = next_seq_++;
  pending_[seq] = std::move(w);
  return seq;
}

bool ImageManager::SharesUnsynced(int64_t seq) const {
  absl::MutexLock lock(&sync_mu_);
  auto mine = pending_.find(seq);
  if (mine == pending_.end()) return false;
  const std::vector<std::string>& keys = mine->second.keys;
  for (const auto& [other, w] : pending_) {
    if (other == seq) continue;
    for (const std::string& k : keys) {
      if (std::find(w.keys.begin(), w.keys.end(), k) != w.keys.end()) return true;
    }
  }
  return false;
}

void ImageManager::EndWrite(int64_t seq, bool committed) {
  absl::MutexLock lock(&sync_mu_);
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  if (committed) {
    it->second.committed = true;
  } else {
    pending_.erase(it);
  }
}

size_t ImageManager::UnsyncedCount() const {
  absl::MutexLock lock(&sync_mu_);
  size_t n = 0;
  for (const auto& [seq, w] : pending_) n += w.committed ? 1 : 0;
  return n;
}

absl::Status ImageManager::Flush() {
  absl::MutexLock round(&flush_mu_);
  std::vector<int64_t> batch;
  {
    absl::MutexLock lock(&sync_mu_);
    for (const auto& [seq, w] : pending_) {
      if (w.committed) batch.push_back(seq);
    }
  }
  if (batch.empty()) return absl::OkStatus();
  // Everything the batch wrote is in the page cache before its row was saved:
  // one flush of the file system covers it.
  absl::Status synced;
  if (syncfs(root_fd_.get()) != 0) synced = ErrnoStatus(errno, "syncfs", options_.root);
  {
    // Flushed: the rows go. Not flushed: a retry could not tell (a writeback
    // error is reported once and its pages are clean after it), so the rows
    // are marked failed instead, and the next Open drops those images as after
    // a power cut; until then they serve from the page cache.
    absl::MutexLock db_lock(&db_mu_);
    BERTH_ASSIGN_OR_RETURN(store::Transaction tx, db_->Begin());
    for (int64_t seq : batch) {
      BERTH_ASSIGN_OR_RETURN(
          store::Statement row,
          db_->Prepare(synced.ok() ? "DELETE FROM image_unsynced WHERE seq = ?"
                                   : "UPDATE image_unsynced SET boot_id = 'flush-failed' "
                                     "WHERE seq = ?"));
      row.Bind(1, seq);
      BERTH_RETURN_IF_ERROR(row.Run());
    }
    BERTH_RETURN_IF_ERROR(tx.Commit());
  }
  absl::MutexLock lock(&sync_mu_);
  for (int64_t seq : batch) pending_.erase(seq);
  return synced;
}

void ImageManager::SyncLoop() {
  while (true) {
    {
      absl::MutexLock lock(&sync_mu_);
      auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Await holds sync_mu_
        if (stop_) return true;
        for (const auto& [seq, w] : pending_) {
          if (w.committed) return true;
        }
        return false;
      };
      sync_mu_.Await(absl::Condition(&ready));
      if (stop_) return;  // the destructor flushes what is left
    }
    if (absl::Status s = Flush(); !s.ok()) {
      BERTH_LOG(WARNING) << "images: flush to disk: " << s << "; retrying what is left in 1 s";
      absl::MutexLock lock(&sync_mu_);
      auto stopping = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_; };
      sync_mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Seconds(1));
    }
  }
}

absl::Status ImageManager::Load() {
  BERTH_ASSIGN_OR_RETURN(
      store::Statement s,
      db_->Prepare("SELECT id, manifest_digest, size, layers, chain_ids, config FROM images"));
  absl::MutexLock lock(&mu_);
  std::vector<std::string> dropped;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ImageRecord r;
    r.id = s.Text(0);
    r.manifest_digest = s.Text(1);
    r.size = s.Int(2);
    r.layers = absl::StrSplit(s.Text(3), ' ', absl::SkipEmpty());
    r.chain_ids = absl::StrSplit(s.Text(4), ' ', absl::SkipEmpty());
    r.config_json = s.Text(5);
    absl::StatusOr<ImageConfig> config = ParseImageConfig(r.config_json);
    if (!config.ok()) {
      // Dropped with a warning, as an image a power cut tore: pulled again
      // when wanted; its layers go to garbage collection unless others use them.
      unreadable_.push_back(absl::StrCat("image ", r.id, ": ", config.status().message()));
      BERTH_LOG(WARNING) << "dropping image " << r.id
                         << ": its config no longer parses: " << config.status();
      dropped.push_back(r.id);
      continue;
    }
    r.config = *std::move(config);
    images_[r.id] = std::move(r);
  }
  BERTH_ASSIGN_OR_RETURN(store::Statement refs,
                         db_->Prepare("SELECT name, image_id FROM image_refs ORDER BY name"));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, refs.Step());
    if (!row) break;
    const std::string name = refs.Text(0), id = refs.Text(1);
    if (std::find(dropped.begin(), dropped.end(), id) != dropped.end()) continue;
    refs_[name] = id;
    auto it = images_.find(id);
    if (it == images_.end()) continue;
    (absl::StrContains(name, '@') ? it->second.repo_digests : it->second.repo_tags).push_back(name);
  }
  for (const std::string& id : dropped) {
    for (const char* sql :
         {"DELETE FROM image_refs WHERE image_id = ?", "DELETE FROM images WHERE id = ?"}) {
      BERTH_ASSIGN_OR_RETURN(store::Statement d, db_->Prepare(sql));
      d.Bind(1, id);
      BERTH_RETURN_IF_ERROR(d.Run());
    }
  }
  return absl::OkStatus();
}

std::string ImageManager::LayerDir(const std::string& chain_id) const {
  absl::string_view hex = chain_id;
  absl::ConsumePrefix(&hex, "sha256:");
  return absl::StrCat(options_.root, "/layers/", hex);
}

namespace {
using BusyKey = std::pair<const std::set<std::string>*, const std::string*>;
bool IsFree(BusyKey* k) { return k->first->count(*k->second) == 0; }
}  // namespace

absl::Status ImageManager::Claim(const std::string& key, const Cancelled& cancelled) {
  absl::MutexLock lock(&mu_);
  BusyKey arg(&busy_, &key);
  // Another pull of the same content runs; it ends by its own client's
  // deadline, while this one looks at its own every 100 ms.
  while (!mu_.AwaitWithTimeout(absl::Condition(&IsFree, &arg), absl::Milliseconds(100))) {
    if (cancelled && cancelled()) {
      return absl::CancelledError(absl::StrCat("cancelled waiting for another pull of ", key));
    }
  }
  busy_.insert(key);
  return absl::OkStatus();
}

void ImageManager::Done(const std::string& key) {
  absl::MutexLock lock(&mu_);
  busy_.erase(key);
}

absl::StatusOr<ImageRecord> ImageManager::Pull(const std::string& image,
                                               const Credentials& credentials,
                                               const Cancelled& cancelled) {
  BERTH_ASSIGN_OR_RETURN(Reference ref, Reference::Parse(image));
  BERTH_ASSIGN_OR_RETURN(std::vector<RegistryEndpoint> endpoints,
                         ResolveEndpoints(options_.hosts_dir, ref.domain()));
  // Each endpoint in turn (mirrors first); the last error is the one returned,
  // with what the others said.
  std::vector<std::string> failures;
  for (const RegistryEndpoint& ep : endpoints) {
    RegistryClient client(ep, credentials);
    client.set_cancelled(cancelled);
    absl::StatusOr<ImageRecord> r = PullFrom(client, ref, cancelled);
    if (r.ok()) return r;
    if (cancelled && cancelled()) {
      return absl::CancelledError(absl::StrCat("pull ", ref.String(), ": ", r.status().message()));
    }
    BERTH_LOG(WARNING) << "pull " << ref.String() << " from " << ep.host << ": " << r.status();
    failures.push_back(absl::StrCat(ep.host, ": ", r.status().message()));
    // A verified digest mismatch is not the endpoint's fault alone: stop? No:
    // a mirror may serve bad content the upstream serves right.
    if (&ep == &endpoints.back()) {
      return absl::Status(r.status().code(),
                          absl::StrCat("pull ", ref.String(), ": ", absl::StrJoin(failures, "; ")));
    }
  }
  return absl::InternalError("no endpoint");  // not reached: endpoints is never empty
}

absl::StatusOr<ImageRecord> ImageManager::PullFrom(RegistryClient& client, const Reference& ref,
                                                   const Cancelled& cancelled) {
  const std::string repo = ref.path();
  const std::string wanted = ref.has_digest() ? ref.digest().string() : ref.tag();
  BERTH_ASSIGN_OR_RETURN(FetchedManifest fetched, client.GetManifest(repo, wanted));
  Digest digest = DigestOfBytes(fetched.body);
  if (ref.has_digest() && digest != ref.digest()) {
    return absl::DataLossError(
        absl::StrCat("manifest ", wanted, ": the registry sent content of ", digest.string()));
  }
  BERTH_ASSIGN_OR_RETURN(ManifestOrIndex doc,
                         ParseManifestOrIndex(fetched.body, fetched.media_type));
  if (const Index* index = std::get_if<Index>(&doc)) {
    BERTH_ASSIGN_OR_RETURN(Descriptor chosen,
                           SelectPlatform(*index, options_.platform_os, options_.platform_arch));
    BERTH_RETURN_IF_ERROR(store_.WriteBlob(fetched.body, digest).status());
    BERTH_ASSIGN_OR_RETURN(fetched, client.GetManifest(repo, chosen.digest.string()));
    digest = DigestOfBytes(fetched.body);
    if (digest != chosen.digest) {
      return absl::DataLossError(absl::StrCat("manifest ", chosen.digest.string(),
                                              ": the registry sent content of ", digest.string()));
    }
    BERTH_ASSIGN_OR_RETURN(doc, ParseManifestOrIndex(fetched.body, chosen.media_type));
  }
  if (!std::holds_alternative<Manifest>(doc)) {
    return absl::InvalidArgumentError(absl::StrCat(wanted, ": an index inside an index"));
  }
  const Manifest& manifest = std::get<Manifest>(doc);
  BERTH_RETURN_IF_ERROR(CheckImageManifest(manifest));
  BERTH_RETURN_IF_ERROR(store_.WriteBlob(fetched.body, digest).status());
  BERTH_RETURN_IF_ERROR(FetchBlob(client, repo, manifest.config));
  std::vector<std::string> names;
  if (!ref.tag().empty()) names.push_back(ref.RepoTag());
  names.push_back(absl::StrCat(ref.Name(), "@", digest.string()));
  return Finish(
      digest, manifest, names,
      [&](size_t i, auto* tee, bool* streamed) {
        return FetchBlob(client, repo, manifest.layers[i], tee, streamed, /*layer=*/true);
      },
      cancelled);
}

absl::Status ImageManager::FetchBlob(RegistryClient& client, const std::string& repo,
                                     const Descriptor& blob,
                                     const std::function<bool(absl::string_view)>* tee,
                                     bool* streamed, bool layer) {
  if (streamed != nullptr) *streamed = false;
  const std::string key = absl::StrCat("blob ", blob.digest.string());
  BERTH_RETURN_IF_ERROR(Claim(key, client.cancelled()));
  absl::Status s = [&]() -> absl::Status {
    if (store_.Has(blob.digest)) return absl::OkStatus();  // another pull brought it
    BERTH_ASSIGN_OR_RETURN(Ingest ingest, store_.BeginIngest(blob.digest.algorithm()));
    // A layer blob is flushed behind the pull (Finish, Flush).
    ingest.set_durable(!layer);
    absl::Status write;
    int64_t received = 0;
    absl::Status fetched =
        client.FetchBlob(repo, blob.digest.string(), [&](absl::string_view chunk) {
          // Past the size the manifest declared, nothing more is written: a
          // registry cannot fill the disk with a blob bound to fail its check.
          received += static_cast<int64_t>(chunk.size());
          if (received > blob.size) {
            write = absl::DataLossError(absl::StrCat("blob ", blob.digest.string(),
                                                     ": the registry sent more than its declared ",
                                                     blob.size, " bytes"));
            return false;
          }
          write = ingest.Write(chunk);
          if (write.ok() && tee != nullptr) {
            if (streamed != nullptr) *streamed = true;
            if (!(*tee)(chunk)) write = absl::AbortedError("the layer's unpacker stopped reading");
          }
          return write.ok();
        });
    BERTH_RETURN_IF_ERROR(write);  // the reason the transfer was stopped, if we stopped it
    BERTH_RETURN_IF_ERROR(fetched);
    // Nothing is stored unless both the size and the digest match.
    return ingest.Commit(blob.digest, blob.size).status();
  }();
  Done(key);
  return s;
}

namespace {
// Layers of one pull fetched and unpacked at once: enough to keep a core busy
// decompressing while another downloads, few enough not to flood a registry.
constexpr size_t kParallelLayers = 3;
}  // namespace

absl::Status ImageManager::FetchAndUnpack(
    const Descriptor& blob, const std::string& tmp,
    const std::function<absl::Status(const std::function<bool(absl::string_view)>*, bool*)>&
        fetch) {
  const std::string what = absl::StrCat("layer ", blob.digest.string());
  if (tmp.empty()) return fetch(nullptr, nullptr);  // unpacked already
  auto from_store = [&] {
    return Annotate(UnpackLayer(store_.Path(blob.digest), tmp, Limits()).status(), what);
  };
  if (store_.Has(blob.digest)) return from_store();
  // Unpack while it downloads: the bytes go to the store (verified at commit)
  // and through a pipe to the unpacker. On a digest mismatch the pull fails
  // and the tmp dir goes with it.
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  UniqueFd read_end(p[0]), write_end(p[1]);
  // A bigger pipe: fewer wake-ups between the downloader and the unpacker.
  fcntl(write_end.get(), F_SETPIPE_SZ, 1 << 20);
  std::future<absl::Status> unpacked = std::async(std::launch::async, [&, fd = read_end.get()] {
    absl::StatusOr<UnpackStats> u = UnpackLayer(absl::StrCat("/proc/self/fd/", fd), tmp, Limits());
    // Whatever the unpacker left unread (tar padding, or everything after an
    // error) is drained, so the download never blocks on a full pipe.
    char sink[65536];
    while (read(fd, sink, sizeof(sink)) > 0) {
    }
    return Annotate(u.status(), what);
  });
  std::function<bool(absl::string_view)> tee = [&](absl::string_view chunk) {
    while (!chunk.empty()) {
      ssize_t w = write(write_end.get(), chunk.data(), chunk.size());
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      chunk.remove_prefix(static_cast<size_t>(w));
    }
    return true;
  };
  bool streamed = false;
  absl::Status fetched = fetch(&tee, &streamed);
  write_end.reset();  // EOF for the unpacker
  absl::Status u = unpacked.get();
  BERTH_RETURN_IF_ERROR(fetched);
  if (streamed) return u;
  // Another pull stored the blob first: unpack it from the store instead.
  BERTH_RETURN_IF_ERROR(RemoveTree(tmp));
  if (mkdir(tmp.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir", tmp);
  return from_store();
}

absl::StatusOr<ImageRecord> ImageManager::Finish(const Digest& manifest_digest,
                                                 const Manifest& manifest,
                                                 const std::vector<std::string>& names,
                                                 const FetchLayer& fetch,
                                                 const Cancelled& cancelled) {
  ImageRecord r;
  r.id = manifest.config.digest.string();
  r.manifest_digest = manifest_digest.string();
  BERTH_ASSIGN_OR_RETURN(r.config_json, store_.ReadBlob(manifest.config.digest));
  BERTH_ASSIGN_OR_RETURN(r.config, ParseImageConfig(r.config_json));
  const size_t n = manifest.layers.size();
  if (r.config.rootfs.diff_ids.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("image ", r.id, ": ", n, " layers but ",
                                                   r.config.rootfs.diff_ids.size(),
                                                   " diff_ids in its config"));
  }
  const std::vector<Digest> chain = ChainIds(r.config.rootfs.diff_ids);
  r.size = manifest.config.size;
  for (size_t i = 0; i < n; ++i) {
    r.layers.push_back(manifest.layers[i].digest.string());
    r.chain_ids.push_back(chain[i].string());
    r.size += manifest.layers[i].size;
  }
  for (const std::string& name : names) {
    (absl::StrContains(name, '@') ? r.repo_digests : r.repo_tags).push_back(name);
  }
  // Registered before anything is written (images.h, write-behind).
  const int64_t seq = BeginWrite(r);
  bool wrote = false;  // whether this pull put anything unflushed on disk
  // Every chain id is claimed up front, base first (no lock cycles between
  // pulls), and held until its dir has its final name, so two pulls never
  // unpack the same layer. Layer i unpacks into a temp dir on its own thread
  // while others download.
  struct Staged {
    std::string tmp;  // "" when the layer was already there
    absl::Status status;
  };
  std::vector<Staged> staged(n);
  std::vector<std::string> claimed;
  absl::Status status;
  for (size_t i = 0; i < n && status.ok(); ++i) {
    const std::string key = absl::StrCat("layer ", chain[i].string());
    status = Claim(key, cancelled);
    if (!status.ok()) break;
    claimed.push_back(key);
    if (!store_.Has(manifest.layers[i].digest)) wrote = true;
    struct stat st;
    if (stat(LayerDir(chain[i].string()).c_str(), &st) == 0) continue;
    wrote = true;
    staged[i].tmp = absl::StrCat(options_.root, "/layers/tmp-", RandomSuffix());
    if (mkdir(staged[i].tmp.c_str(), 0755) != 0) {
      status = ErrnoStatus(errno, "mkdir", staged[i].tmp);
      staged[i].tmp.clear();
    }
  }
  // Layers download in parallel (a few at a time), each unpacked as it arrives.
  if (status.ok()) {
    // A fixed pool of workers takes the layers in turn: a manifest of 20,000
    // layers costs kParallelLayers threads (and their unpackers), not 20,000.
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) {
        try {
          staged[i].status =
              FetchAndUnpack(manifest.layers[i], staged[i].tmp,
                             [&](auto* tee, bool* streamed) { return fetch(i, tee, streamed); });
        } catch (const std::system_error& e) {  // no thread for the unpacker
          staged[i].status = absl::ResourceExhaustedError(
              absl::StrCat("layer ", manifest.layers[i].digest.string(), ": ", e.what()));
        }
      }
    };
    std::vector<std::thread> workers;
    try {
      for (size_t w = 0; w < std::min<size_t>(kParallelLayers, n); ++w)
        workers.emplace_back(worker);
    } catch (const std::system_error& e) {
      // The workers already running take every layer; with none, nothing ran.
      if (workers.empty()) status = absl::ResourceExhaustedError(absl::StrCat("pull: ", e.what()));
    }
    for (std::thread& t : workers) t.join();
    for (const Staged& st : staged) {
      if (status.ok()) status = st.status;
    }
  }
  // No flush here: a layer dir renamed into place may hold data still in the
  // page cache, and the image's unsynced row (saved below) says so until Flush.
  for (size_t i = 0; i < n; ++i) {
    if (staged[i].tmp.empty()) continue;
    if (status.ok() && rename(staged[i].tmp.c_str(), LayerDir(chain[i].string()).c_str()) != 0) {
      status = ErrnoStatus(errno, "rename", staged[i].tmp);
    }
    if (!status.ok()) (void)RemoveTree(staged[i].tmp);
  }
  // What another pull wrote and has not flushed yet is as unsafe as our own.
  const bool unsynced = wrote || SharesUnsynced(seq);
  for (const std::string& key : claimed) Done(key);
  if (status.ok()) status = Save(r, unsynced ? seq : 0);
  // Even a failed pull's blobs wait for a flush before another pull trusts them.
  EndWrite(seq, unsynced);
  BERTH_RETURN_IF_ERROR(status);
  return Resolve(r.id);
}

absl::Status ImageManager::Save(const ImageRecord& r, int64_t unsynced_seq) {
  absl::MutexLock db_lock(&db_mu_);
  {
    BERTH_ASSIGN_OR_RETURN(store::Transaction tx, db_->Begin());
    BERTH_ASSIGN_OR_RETURN(store::Statement ins,
                           db_->Prepare("INSERT OR REPLACE INTO images(id, manifest_digest, size, "
                                        "layers, chain_ids, config, created_at) "
                                        "VALUES(?, ?, ?, ?, ?, ?, ?)"));
    ins.Bind(1, r.id).Bind(2, r.manifest_digest).Bind(3, r.size);
    ins.Bind(4, absl::StrJoin(r.layers, " ")).Bind(5, absl::StrJoin(r.chain_ids, " "));
    ins.Bind(6, r.config_json).Bind(7, absl::ToUnixNanos(absl::Now()));
    BERTH_RETURN_IF_ERROR(ins.Run());
    for (const auto* names : {&r.repo_tags, &r.repo_digests}) {
      for (const std::string& n : *names) {
        // A tag moves to the new image; the old image keeps its other names.
        BERTH_ASSIGN_OR_RETURN(
            store::Statement ref,
            db_->Prepare("INSERT OR REPLACE INTO image_refs(name, image_id) VALUES(?, ?)"));
        ref.Bind(1, n).Bind(2, r.id);
        BERTH_RETURN_IF_ERROR(ref.Run());
      }
    }
    if (unsynced_seq > 0) {
      BERTH_ASSIGN_OR_RETURN(
          store::Statement row,
          db_->Prepare("INSERT INTO image_unsynced(seq, image_id, boot_id) VALUES(?, ?, ?)"));
      row.Bind(1, unsynced_seq).Bind(2, r.id).Bind(3, options_.boot_id);
      BERTH_RETURN_IF_ERROR(row.Run());
    }
    BERTH_RETURN_IF_ERROR(tx.Commit());
  }
  absl::MutexLock lock(&mu_);
  for (const auto* names : {&r.repo_tags, &r.repo_digests}) {
    for (const std::string& n : *names) {
      auto old = refs_.find(n);
      if (old != refs_.end() && old->second != r.id) {
        auto img = images_.find(old->second);
        if (img != images_.end()) {
          for (auto* v : {&img->second.repo_tags, &img->second.repo_digests}) {
            v->erase(std::remove(v->begin(), v->end(), n), v->end());
          }
        }
      }
      refs_[n] = r.id;
    }
  }
  ImageRecord& mine = images_[r.id];
  std::vector<std::string> tags = mine.repo_tags, digests = mine.repo_digests;
  mine = r;
  for (const std::string& t : tags) {
    if (std::find(mine.repo_tags.begin(), mine.repo_tags.end(), t) == mine.repo_tags.end()) {
      mine.repo_tags.push_back(t);
    }
  }
  for (const std::string& d : digests) {
    if (std::find(mine.repo_digests.begin(), mine.repo_digests.end(), d) ==
        mine.repo_digests.end()) {
      mine.repo_digests.push_back(d);
    }
  }
  std::sort(mine.repo_tags.begin(), mine.repo_tags.end());
  std::sort(mine.repo_digests.begin(), mine.repo_digests.end());
  return absl::OkStatus();
}

absl::StatusOr<ImageRecord> ImageManager::Resolve(const std::string& image) const {
  absl::MutexLock lock(&mu_);
  absl::string_view id = image;
  if (absl::ConsumePrefix(&id, "sha256:") || id.size() >= 3) {
    // An id or a unique prefix of one ("sha256:" optional).
    if (id.find_first_not_of("0123456789abcdef") == absl::string_view::npos) {
      const ImageRecord* found = nullptr;
      for (const auto& [key, rec] : images_) {
        if (absl::StartsWith(absl::string_view(key).substr(7), id)) {
          if (found != nullptr) {
            return absl::InvalidArgumentError(
                absl::StrCat("image id prefix `", image, "` is ambiguous"));
          }
          found = &rec;
        }
      }
      if (found != nullptr) return *found;
    }
  }
  absl::StatusOr<Reference> ref = Reference::Parse(image);
  if (ref.ok()) {
    for (const std::string& name : {ref->RepoDigest(), ref->RepoTag()}) {
      auto it = name.empty() ? refs_.end() : refs_.find(name);
      if (it != refs_.end()) return images_.at(it->second);
    }
  }
  return absl::NotFoundError(absl::StrCat("image `", image, "` not found"));
}

std::vector<ImageRecord> ImageManager::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<ImageRecord> out;
  for (const auto& [id, rec] : images_) out.push_back(rec);
  return out;
}

void ImageManager::SetInUse(std::function<bool(const std::string&)> in_use) {
  absl::MutexLock lock(&mu_);
  in_use_ = std::move(in_use);
}

absl::Status ImageManager::Remove(const std::string& image) {
  absl::StatusOr<ImageRecord> r = Resolve(image);
  if (absl::IsNotFound(r.status())) return absl::OkStatus();  // CRI: idempotent
  if (!r.ok()) return r.status();
  {
    absl::MutexLock lock(&mu_);
    if (in_use_ && in_use_(r->id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("image ", r->id, " is used by a container; remove the container first"));
    }
  }
  {
    absl::MutexLock db_lock(&db_mu_);
    BERTH_ASSIGN_OR_RETURN(store::Transaction tx, db_->Begin());
    BERTH_ASSIGN_OR_RETURN(store::Statement del, db_->Prepare("DELETE FROM images WHERE id = ?"));
    del.Bind(1, r->id);
    BERTH_RETURN_IF_ERROR(del.Run());  // its refs go with it (ON DELETE CASCADE)
    BERTH_RETURN_IF_ERROR(tx.Commit());
  }
  {
    absl::MutexLock lock(&mu_);
    images_.erase(r->id);
    for (auto it = refs_.begin(); it != refs_.end();) {
      it = it->second == r->id ? refs_.erase(it) : std::next(it);
    }
  }
  return CollectGarbage(absl::Hours(1));
}

absl::Status ImageManager::CollectGarbage(absl::Duration ingest_age) {
  absl::flat_hash_set<Digest> keep;
  std::set<std::string> keep_layers;
  {
    absl::MutexLock lock(&mu_);
    // A pull in progress holds blobs and layers no image names yet.
    if (!busy_.empty()) return absl::OkStatus();
    for (const auto& [id, rec] : images_) {
      for (const std::string& d : rec.layers) {
        if (absl::StatusOr<Digest> p = Digest::Parse(d); p.ok()) keep.insert(*p);
      }
      for (const std::string* d : {&rec.id, &rec.manifest_digest}) {
        if (absl::StatusOr<Digest> p = Digest::Parse(*d); p.ok()) keep.insert(*p);
      }
      for (const std::string& c : rec.chain_ids) keep_layers.insert(LayerDir(c));
    }
  }
  BERTH_RETURN_IF_ERROR(store_.GarbageCollect(keep, ingest_age).status());
  const std::string layers = options_.root + "/layers";
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> entries, ListDir(layers));
  for (const std::string& e : entries) {
    const std::string path = layers + "/" + e;
    if (keep_layers.count(path) == 0) BERTH_RETURN_IF_ERROR(RemoveTree(path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ImageRecord>> ImageManager::ImportOciLayout(const std::string& dir,
                                                                       const std::string& name) {
  BERTH_ASSIGN_OR_RETURN(std::string layout, ReadFile(dir + "/oci-layout"));
  if (!absl::StrContains(layout, "imageLayoutVersion")) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/oci-layout: not an OCI image layout"));
  }
  BERTH_ASSIGN_OR_RETURN(std::string index_json, ReadFile(dir + "/index.json"));
  BERTH_ASSIGN_OR_RETURN(Index index, ParseIndex(index_json));
  // Copies a blob of the layout into the store, verified like a download.
  auto copy = [&](const Descriptor& d) -> absl::Status {
    if (store_.Has(d.digest)) return absl::OkStatus();
    const std::string path =
        absl::StrCat(dir, "/blobs/", d.digest.algorithm_name(), "/", d.digest.hex());
    BERTH_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    BERTH_ASSIGN_OR_RETURN(Ingest ingest, store_.BeginIngest(d.digest.algorithm()));
    BERTH_RETURN_IF_ERROR(ingest.Write(bytes));
    return Annotate(ingest.Commit(d.digest, d.size).status(), path);
  };
  std::vector<ImageRecord> out;
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    Descriptor m = index.manifests[i];
    auto ann = m.annotations.find("org.opencontainers.image.ref.name");
    if (ann == m.annotations.end()) {
      return absl::InvalidArgumentError(absl::StrCat(dir, "/index.json: manifests[", i,
                                                     "] has no org.opencontainers.image.ref.name"));
    }
    std::string full = ann->second;
    if (!name.empty() && !absl::StrContains(full, '/')) full = absl::StrCat(name, ":", full);
    BERTH_ASSIGN_OR_RETURN(Reference ref, Reference::Parse(full));
    BERTH_RETURN_IF_ERROR(copy(m));
    BERTH_ASSIGN_OR_RETURN(std::string body, store_.ReadBlob(m.digest));
    BERTH_ASSIGN_OR_RETURN(ManifestOrIndex doc, ParseManifestOrIndex(body, m.media_type));
    if (const Index* nested = std::get_if<Index>(&doc)) {
      BERTH_ASSIGN_OR_RETURN(m,
                             SelectPlatform(*nested, options_.platform_os, options_.platform_arch));
      BERTH_RETURN_IF_ERROR(copy(m));
      BERTH_ASSIGN_OR_RETURN(body, store_.ReadBlob(m.digest));
      BERTH_ASSIGN_OR_RETURN(doc, ParseManifestOrIndex(body, m.media_type));
    }
    if (!std::holds_alternative<Manifest>(doc)) {
      return absl::InvalidArgumentError(absl::StrCat(full, ": an index inside an index"));
    }
    const Manifest& manifest = std::get<Manifest>(doc);
    BERTH_RETURN_IF_ERROR(CheckImageManifest(manifest));
    BERTH_RETURN_IF_ERROR(copy(manifest.config));
    std::vector<std::string> names = {ref.RepoTag(),
                                      absl::StrCat(ref.Name(), "@", m.digest.string())};
    BERTH_ASSIGN_OR_RETURN(ImageRecord r,
                           Finish(m.digest, manifest, names, [&](size_t i, auto*, bool* streamed) {
                             if (streamed != nullptr) *streamed = false;
                             return copy(manifest.layers[i]);
                           }));
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> ImageManager::LayerDirs(const ImageRecord& image) const {
  std::vector<std::string> out;
  for (auto it = image.chain_ids.rbegin(); it != image.chain_ids.rend(); ++it) {
    out.push_back(LayerDir(*it));
  }
  return out;
}

absl::StatusOr<StoreUsage> ImageManager::Usage() const {
  StoreUsage total;
  static thread_local StoreUsage* acc;
  acc = &total;
  auto count = [](const char*, const struct stat* st, int, struct FTW*) {
    acc->used_bytes += st->st_blocks * 512;
    acc->inodes_used += 1;
    return 0;
  };
  if (nftw(options_.root.c_str(), count, 16, FTW_PHYS) != 0) {
    return ErrnoStatus(errno, "walk", options_.root);
  }
  return total;
}

}  // namespace berth::images
