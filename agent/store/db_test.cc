#include "agent/store/db.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::store {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::testing::HasSubstr;

const std::vector<std::string> kV1 = {
    "CREATE TABLE refs(name TEXT PRIMARY KEY, image TEXT NOT NULL)"};
const std::vector<std::string> kV2 = {kV1[0], "ALTER TABLE refs ADD COLUMN pinned INTEGER"};

int64_t Count(Database& db) {
  absl::StatusOr<Statement> s = db.Prepare("SELECT count(*) FROM refs");
  EXPECT_THAT(s, IsOk());
  EXPECT_THAT(s->Step(), IsOk());
  return s->Int(0);
}

TEST(DatabaseTest, CommittedRowsSurviveReopenAndRolledBackOnesDoNot) {
  TempDir dir;
  const std::string path = dir.Join("berth.db");
  {
    absl::StatusOr<Database> db = Database::Open(path, kV1);
    ASSERT_THAT(db, IsOk());
    {
      absl::StatusOr<Transaction> tx = db->Begin();
      ASSERT_THAT(tx, IsOk());
      absl::StatusOr<Statement> s = db->Prepare("INSERT INTO refs(name, image) VALUES(?, ?)");
      ASSERT_THAT(s, IsOk());
      s->Bind(1, "docker.io/library/busybox:latest").Bind(2, "sha256:aa");
      ASSERT_THAT(s->Run(), IsOk());
      ASSERT_THAT(tx->Commit(), IsOk());
    }
    {
      absl::StatusOr<Transaction> tx = db->Begin();
      ASSERT_THAT(tx, IsOk());
      ASSERT_THAT(db->Exec("INSERT INTO refs(name, image) VALUES('x', 'sha256:bb')"), IsOk());
      // No Commit: rolled back when tx goes.
    }
    EXPECT_EQ(Count(*db), 1);
  }
  absl::StatusOr<Database> again = Database::Open(path, kV1);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(Count(*again), 1);
  absl::StatusOr<Statement> s = again->Prepare("SELECT image FROM refs WHERE name = ?");
  ASSERT_THAT(s, IsOk());
  s->Bind(1, "docker.io/library/busybox:latest");
  absl::StatusOr<bool> row = s->Step();
  ASSERT_THAT(row, IsOk());
  ASSERT_TRUE(*row);
  EXPECT_EQ(s->Text(0), "sha256:aa");
}

TEST(DatabaseTest, SchemaUpgradesInPlaceAndRefusesANewerFile) {
  TempDir dir;
  const std::string path = dir.Join("berth.db");
  ASSERT_THAT(Database::Open(path, kV1), IsOk());
  absl::StatusOr<Database> v2 = Database::Open(path, kV2);
  ASSERT_THAT(v2, IsOk());
  EXPECT_THAT(v2->Exec("INSERT INTO refs(name, image, pinned) VALUES('a', 'b', 1)"), IsOk());
  EXPECT_THAT(Database::Open(path, kV1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("schema version 2")));
}

TEST(DatabaseTest, ErrorsCarryACodeAndTheStatement) {
  TempDir dir;
  absl::StatusOr<Database> db = Database::Open(dir.Join("berth.db"), kV1);
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db->Exec("INSERT INTO refs VALUES('a', 'b')"), IsOk());
  EXPECT_THAT(db->Exec("INSERT INTO refs VALUES('a', 'c')"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("UNIQUE")));
  EXPECT_THAT(db->Prepare("SELEKT 1"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("prepare `SELEKT 1`")));
  EXPECT_THAT(Database::Open("/nonexistent/dir/berth.db", kV1),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("/nonexistent/dir")));
}

}  // namespace
}  // namespace berth::store
