#include "agent/store/db.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "os/status.h"

namespace berth::store {
namespace {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  std::string msg = absl::StrCat(what, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

Statement::Statement(Statement&& o) noexcept
    : stmt_(o.stmt_), db_(o.db_), bind_error_(std::move(o.bind_error_)) {
  o.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    stmt_ = o.stmt_;
    db_ = o.db_;
    bind_error_ = std::move(o.bind_error_);
    o.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, absl::string_view text) {
  int rc =
      sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

Statement& Statement::BindBlob(int index, absl::string_view bytes) {
  int rc = sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                             SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = SqliteError(db_, rc, "bind");
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, absl::StrCat("step `", sqlite3_sql(stmt_), "`"));
}

absl::Status Statement::Run() {
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

absl::Status Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = absl::OkStatus();
  return absl::OkStatus();
}

std::string Statement::Text(int column) const {
  const unsigned char* t = sqlite3_column_text(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(n)) : "";
}

std::string Statement::Blob(int column) const {
  const void* b = sqlite3_column_blob(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return b ? std::string(static_cast<const char*>(b), static_cast<size_t>(n)) : "";
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

absl::StatusOr<Database> Database::Open(const std::string& path,
                                        const std::vector<std::string>& schema) {
  Database d;
  d.path_ = path;
  int rc =
      sqlite3_open_v2(path.c_str(), &d.db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) return SqliteError(d.db_, rc, absl::StrCat("open `", path, "`"));
  sqlite3_busy_timeout(d.db_, 5000);
  // WAL: readers never wait for the writer; synchronous=FULL: a committed
  // transaction survives a power loss, which is what "before the RPC answers"
  // promises.
  BERTH_RETURN_IF_ERROR(d.Exec("PRAGMA journal_mode=WAL"));
  BERTH_RETURN_IF_ERROR(d.Exec("PRAGMA synchronous=FULL"));
  BERTH_RETURN_IF_ERROR(d.Exec("PRAGMA foreign_keys=ON"));
  BERTH_ASSIGN_OR_RETURN(Statement v, d.Prepare("PRAGMA user_version"));
  BERTH_ASSIGN_OR_RETURN(bool row, v.Step());
  int64_t version = row ? v.Int(0) : 0;
  if (version > static_cast<int64_t>(schema.size())) {
    return absl::FailedPreconditionError(absl::StrCat("`", path, "` has schema version ", version,
                                                      "; this berthd knows up to ", schema.size()));
  }
  for (size_t i = static_cast<size_t>(version); i < schema.size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(Transaction tx, d.Begin());
    BERTH_RETURN_IF_ERROR(d.Exec(schema[i]));
    BERTH_RETURN_IF_ERROR(d.Exec(absl::StrCat("PRAGMA user_version=", i + 1)));
    BERTH_RETURN_IF_ERROR(tx.Commit());
  }
  return d;
}

Database::Database(Database&& o) noexcept : db_(o.db_), path_(std::move(o.path_)) {
  o.db_ = nullptr;
}

Database& Database::operator=(Database&& o) noexcept {
  if (this != &o) {
    sqlite3_close_v2(db_);
    db_ = o.db_;
    path_ = std::move(o.path_);
    o.db_ = nullptr;
  }
  return *this;
}

Database::~Database() { sqlite3_close_v2(db_); }

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, absl::StrCat("prepare `", sql, "`"));
  return Statement(stmt, db_);
}

absl::Status Database::Exec(absl::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = absl::StrCat("exec `", sql.substr(0, 80), "`: ", err ? err : "");
    sqlite3_free(err);
    return SqliteError(nullptr, rc, msg);
  }
  return absl::OkStatus();
}

absl::StatusOr<Transaction> Database::Begin() {
  BERTH_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  return Transaction(this);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->Exec("ROLLBACK");
}

absl::Status Transaction::Commit() {
  if (db_ == nullptr) return absl::FailedPreconditionError("transaction already ended");
  absl::Status s = db_->Exec("COMMIT");
  if (s.ok()) db_ = nullptr;
  return s;
}

}  // namespace berth::store
