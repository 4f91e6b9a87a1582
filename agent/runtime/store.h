// RuntimeStore: the durable records of pod sandboxes and containers
// (proto/berth/state/v1/state.proto) in berthd's SQLite database.
//
// One row per object: its id, for containers the sandbox's id, and the record
// serialized. Every change is one transaction committed before the RPC that
// made it answers (DESIGN.md, State). The store has its own connection to the
// database file, so it never waits on the image store's transactions beyond
// SQLite's own write lock.
//
// Writes can come from two threads for one object (an RPC and the exit
// monitor). Each write carries the version the caller's in-memory record had
// when it was copied; a write older than the last one saved for that id is
// skipped, so the row always ends as the newest state and no lock is held
// across the disk write by the caller.
//
//   BERTH_ASSIGN_OR_RETURN(auto store, RuntimeStore::Open(db_path, schema));
//   BERTH_RETURN_IF_ERROR(store->SaveSandbox(record, version));
//   BERTH_ASSIGN_OR_RETURN(RuntimeStore::Loaded all, store->Load());
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/cri/api.h"  // before state.pb.h: see api.h on the signal macros
#include "agent/store/db.h"
#include "berth/state/v1/state.pb.h"

namespace berth::lifecycle {

namespace state = ::berth::state::v1;

// The SQL for the runtime tables, for the agent's schema list.
extern const char kRuntimeSchemaV1[];

class RuntimeStore {
 public:
  static absl::StatusOr<std::unique_ptr<RuntimeStore>> Open(const std::string& path,
                                                            const std::vector<std::string>& schema);

  absl::Status SaveSandbox(const state::Sandbox& record, uint64_t version);
  absl::Status DeleteSandbox(const std::string& id);
  absl::Status SaveContainer(const state::Container& record, uint64_t version);
  absl::Status DeleteContainer(const std::string& id);

  struct Loaded {
    std::vector<state::Sandbox> sandboxes;
    std::vector<state::Container> containers;
    // Rows that do not parse (a torn page, a newer berthd's format): left in
    // the database untouched, not loaded, each said here ("container `<id>`:
    // unreadable record"), so start-up goes on without them.
    std::vector<std::string> unreadable;
    std::vector<std::string> unreadable_container_ids;
  };
  absl::StatusOr<Loaded> Load();

 private:
  explicit RuntimeStore(store::Database db) : db_(std::move(db)) {}
  absl::Status Put(const char* sql, const std::string& id, const std::string& sandbox_id,
                   const std::string& bytes, uint64_t version);
  absl::Status Delete(const char* sql, const std::string& id);

  static constexpr uint64_t kDeleted = ~uint64_t{0};
  absl::Mutex mu_;
  store::Database db_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> saved_ ABSL_GUARDED_BY(mu_);  // id -> last version written
};

}  // namespace berth::lifecycle
