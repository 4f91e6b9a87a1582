#include "agent/runtime/store.h"

#include "absl/strings/str_cat.h"
#include "os/status.h"

namespace berth::lifecycle {

const char kRuntimeSchemaV1[] = R"sql(
CREATE TABLE sandboxes (
  id TEXT PRIMARY KEY,
  record BLOB NOT NULL
);
CREATE TABLE containers (
  id TEXT PRIMARY KEY,
  sandbox_id TEXT NOT NULL,
  record BLOB NOT NULL
);
CREATE INDEX containers_by_sandbox ON containers(sandbox_id);
)sql";

absl::StatusOr<std::unique_ptr<RuntimeStore>> RuntimeStore::Open(
    const std::string& path, const std::vector<std::string>& schema) {
  BERTH_ASSIGN_OR_RETURN(store::Database db, store::Database::Open(path, schema));
  // In WAL mode synchronous=NORMAL keeps every committed transaction across a
  // crash of berthd (kill -9: the WAL is in the page cache and the next open
  // replays it); only an OS crash or power loss can drop the last few - and
  // then /run, the shims and every container are gone too, and start-up
  // recovery removes dirs no record names (recover.cc). It saves one fdatasync
  // (~2 ms on these disks) per state change: six per pod start. Image records
  // keep FULL (their connection, agent/images): they describe files on disk
  // that outlive a reboot.
  BERTH_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=NORMAL"));
  return std::unique_ptr<RuntimeStore>(new RuntimeStore(std::move(db)));
}

absl::Status RuntimeStore::Put(const char* sql, const std::string& id,
                               const std::string& sandbox_id, const std::string& bytes,
                               uint64_t version) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = saved_.emplace(id, version);
  if (!inserted) {
    // A newer state is already on disk, or the object was deleted.
    if (it->second > version) return absl::OkStatus();
    it->second = version;
  }
  BERTH_ASSIGN_OR_RETURN(store::Statement s, db_.Prepare(sql));
  s.Bind(1, id).BindBlob(2, bytes);
  if (!sandbox_id.empty()) s.Bind(3, sandbox_id);
  // One statement is one implicit transaction: committed (and in the WAL) when Run returns.
  return Annotate(s.Run(), absl::StrCat("save `", id, "`"));
}

absl::Status RuntimeStore::Delete(const char* sql, const std::string& id) {
  absl::MutexLock lock(&mu_);
  // A tombstone: a save of the old object still in flight on another thread
  // (the exit monitor's, say) must not bring the row back. Old tombstones go
  // once there are many: such a save is milliseconds behind, not thousands of
  // objects.
  if (saved_.size() > 100000) {
    for (auto it = saved_.begin(); it != saved_.end();) {
      it = it->second == kDeleted ? saved_.erase(it) : std::next(it);
    }
  }
  saved_[id] = kDeleted;
  BERTH_ASSIGN_OR_RETURN(store::Statement s, db_.Prepare(sql));
  s.Bind(1, id);
  return Annotate(s.Run(), absl::StrCat("delete `", id, "`"));
}

absl::Status RuntimeStore::SaveSandbox(const state::Sandbox& record, uint64_t version) {
  return Put("INSERT OR REPLACE INTO sandboxes(id, record) VALUES(?, ?)", record.id(), "",
             record.SerializeAsString(), version);
}

absl::Status RuntimeStore::DeleteSandbox(const std::string& id) {
  return Delete("DELETE FROM sandboxes WHERE id = ?", id);
}

absl::Status RuntimeStore::SaveContainer(const state::Container& record, uint64_t version) {
  return Put("INSERT OR REPLACE INTO containers(id, record, sandbox_id) VALUES(?, ?, ?)",
             record.id(), record.sandbox_id(), record.SerializeAsString(), version);
}

absl::Status RuntimeStore::DeleteContainer(const std::string& id) {
  return Delete("DELETE FROM containers WHERE id = ?", id);
}

absl::StatusOr<RuntimeStore::Loaded> RuntimeStore::Load() {
  absl::MutexLock lock(&mu_);
  Loaded loaded;
  {
    BERTH_ASSIGN_OR_RETURN(store::Statement s, db_.Prepare("SELECT id, record FROM sandboxes"));
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      state::Sandbox r;
      if (!r.ParseFromString(s.Blob(1))) {
        loaded.unreadable.push_back(absl::StrCat("sandbox `", s.Text(0), "`: unreadable record"));
        continue;
      }
      loaded.sandboxes.push_back(std::move(r));
    }
  }
  BERTH_ASSIGN_OR_RETURN(store::Statement s, db_.Prepare("SELECT id, record FROM containers"));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    state::Container r;
    if (!r.ParseFromString(s.Blob(1))) {
      loaded.unreadable.push_back(absl::StrCat("container `", s.Text(0), "`: unreadable record"));
      loaded.unreadable_container_ids.push_back(s.Text(0));
      continue;
    }
    loaded.containers.push_back(std::move(r));
  }
  return loaded;
}

}  // namespace berth::lifecycle
