// SQLite, the way berthd keeps durable state (DESIGN.md, State): one database
// file in WAL mode, every change in a transaction that commits before the RPC
// answers, schema versions in `PRAGMA user_version`.
//
//   BERTH_ASSIGN_OR_RETURN(Database db, Database::Open("/var/lib/berth/berth.db", kSchema));
//   {
//     BERTH_ASSIGN_OR_RETURN(Transaction tx, db.Begin());
//     BERTH_ASSIGN_OR_RETURN(Statement s, db.Prepare("INSERT INTO refs(name, image) VALUES(?,
//     ?)")); s.Bind(1, name).Bind(2, image_id); BERTH_RETURN_IF_ERROR(s.Run());
//     BERTH_RETURN_IF_ERROR(tx.Commit());   // not committed: rolled back
//   }
//
// A Database is used from one thread at a time (the caller locks); SQLite is
// built serialized, so concurrent use is safe but serialized anyway.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace berth::store {

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  // 1-based, as SQLite counts.
  Statement& Bind(int index, absl::string_view text);
  Statement& Bind(int index, int64_t value);
  Statement& BindBlob(int index, absl::string_view bytes);
  Statement& BindNull(int index);

  // The next row: true with a row, false when done.
  absl::StatusOr<bool> Step();
  // Steps to the end (for statements without rows).
  absl::Status Run();
  absl::Status Reset();

  std::string Text(int column) const;  // 0-based, as SQLite counts
  std::string Blob(int column) const;
  int64_t Int(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
  absl::Status bind_error_;
};

class Transaction;

class Database {
 public:
  // Opens (creating) the file, WAL, foreign keys on, a busy timeout; runs
  // `schema[i]` for every version i >= the file's user_version, each in its
  // own transaction, so a newer berthd upgrades an older file in place.
  static absl::StatusOr<Database> Open(const std::string& path,
                                       const std::vector<std::string>& schema);
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  ~Database();

  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  absl::Status Exec(absl::string_view sql);
  // BEGIN IMMEDIATE: takes the write lock now, so the transaction cannot fail
  // later for a lock another writer holds.
  absl::StatusOr<Transaction> Begin();

  const std::string& path() const { return path_; }

 private:
  Database() = default;
  sqlite3* db_ = nullptr;
  std::string path_;
};

class Transaction {
 public:
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  ~Transaction();
  absl::Status Commit();

 private:
  friend class Database;
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace berth::store
