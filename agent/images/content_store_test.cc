#include "agent/images/content_store.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

MATCHER_P(IsOkAndHolds, matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

constexpr char kFooSha256[] =
    "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

int CountEntries(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ContentStore> store = ContentStore::Open(dir_.Join("content/"));
    ASSERT_THAT(store, IsOk());
    store_.emplace(*std::move(store));
  }
  ContentStore& store() { return *store_; }
  std::string IngestDir() { return dir_.Join("content/ingest"); }

  TempDir dir_;
  std::optional<ContentStore> store_;
};

TEST_F(ContentStoreTest, OpenMakesTheLayout) {
  EXPECT_EQ(store().root(), dir_.Join("content"));
  struct stat st;
  EXPECT_EQ(stat(dir_.Join("content/blobs/sha256").c_str(), &st), 0);
  EXPECT_EQ(stat(IngestDir().c_str(), &st), 0);
  EXPECT_THAT(ContentStore::Open(dir_.Join("content")), IsOk());  // again: fine
}

TEST_F(ContentStoreTest, IngestCommitStoresVerifiedBlob) {
  Digest foo = *Digest::Parse(kFooSha256);
  EXPECT_FALSE(store().Has(foo));
  absl::StatusOr<Ingest> ingest = store().BeginIngest();
  ASSERT_THAT(ingest, IsOk());
  ASSERT_THAT(ingest->Write("f"), IsOk());
  ASSERT_THAT(ingest->Write("oo"), IsOk());
  EXPECT_EQ(ingest->written(), 3);
  absl::StatusOr<Digest> committed = ingest->Commit(foo, 3);
  ASSERT_THAT(committed, IsOk());
  EXPECT_EQ(*committed, foo);

  EXPECT_TRUE(store().Has(foo));
  EXPECT_EQ(store().Path(foo), dir_.Join("content/blobs/sha256/") + std::string(foo.hex()));
  EXPECT_THAT(store().Size(foo), IsOkAndHolds(3));
  EXPECT_THAT(store().ReadBlob(foo), IsOkAndHolds(std::string("foo")));
  struct stat st;
  ASSERT_EQ(stat(store().Path(foo).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_EQ(CountEntries(IngestDir()), 0);  // the temp file became the blob
  // One Commit per Ingest.
  EXPECT_THAT(ingest->Commit(foo, 3), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ingest->Write("x"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ContentStoreTest, DigestMismatchStoresNothing) {
  Digest foo = *Digest::Parse(kFooSha256);
  absl::StatusOr<Ingest> ingest = store().BeginIngest();
  ASSERT_THAT(ingest, IsOk());
  std::string temp = ingest->temp_path();
  ASSERT_THAT(ingest->Write("fox"), IsOk());
  EXPECT_THAT(ingest->Commit(foo, 3),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("digest mismatch"), HasSubstr("expected " + foo.string()),
                             HasSubstr("got " + DigestOfBytes("fox").string()))));
  EXPECT_FALSE(store().Has(foo));
  EXPECT_FALSE(store().Has(DigestOfBytes("fox")));
  EXPECT_NE(access(temp.c_str(), F_OK), 0);
  EXPECT_EQ(CountEntries(IngestDir()), 0);
}

TEST_F(ContentStoreTest, SizeMismatchStoresNothing) {
  Digest foo = *Digest::Parse(kFooSha256);
  absl::StatusOr<Ingest> ingest = store().BeginIngest();
  ASSERT_THAT(ingest, IsOk());
  ASSERT_THAT(ingest->Write("foo"), IsOk());
  // Right digest, wrong promised size: the descriptor lied, so refuse.
  EXPECT_THAT(ingest->Commit(foo, 4),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("size mismatch"), HasSubstr("expected 4 bytes, got 3"))));
  EXPECT_FALSE(store().Has(foo));
  EXPECT_EQ(CountEntries(IngestDir()), 0);
}

TEST_F(ContentStoreTest, AbortAndDestructorRemoveTheTempFile) {
  {
    absl::StatusOr<Ingest> ingest = store().BeginIngest();
    ASSERT_THAT(ingest, IsOk());
    ASSERT_THAT(ingest->Write("partial"), IsOk());
    EXPECT_EQ(CountEntries(IngestDir()), 1);
    ingest->Abort();
    ingest->Abort();  // twice is fine
    EXPECT_EQ(CountEntries(IngestDir()), 0);
    EXPECT_THAT(ingest->Commit(Digest(), -1), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  {
    absl::StatusOr<Ingest> ingest = store().BeginIngest();
    ASSERT_THAT(ingest, IsOk());
    ASSERT_THAT(ingest->Write("partial"), IsOk());
    Ingest moved = *std::move(ingest);
    EXPECT_EQ(CountEntries(IngestDir()), 1);
  }
  EXPECT_EQ(CountEntries(IngestDir()), 0);
}

TEST_F(ContentStoreTest, ConcurrentIngestsOfOneDigest) {
  std::string content(1 << 20, 'z');
  Digest want = DigestOfBytes(content);
  absl::StatusOr<Ingest> a = store().BeginIngest();
  absl::StatusOr<Ingest> b = store().BeginIngest();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->temp_path(), b->temp_path());
  // Interleaved writes to separate temp files.
  for (size_t off = 0; off < content.size(); off += 4096) {
    ASSERT_THAT(a->Write(absl::string_view(content).substr(off, 4096)), IsOk());
    ASSERT_THAT(b->Write(absl::string_view(content).substr(off, 4096)), IsOk());
  }
  EXPECT_THAT(a->Commit(want, static_cast<int64_t>(content.size())), IsOk());
  EXPECT_THAT(b->Commit(want, static_cast<int64_t>(content.size())), IsOk());  // already there
  EXPECT_THAT(store().ReadBlob(want, 2 << 20), IsOkAndHolds(content));
  EXPECT_EQ(CountEntries(IngestDir()), 0);
}

TEST_F(ContentStoreTest, ConcurrentThreadsWritingTheSameBlob) {
  std::string content = "same bytes from every puller";
  Digest want = DigestOfBytes(content);
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { results[i] = store().WriteBlob(content, want).status(); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_THAT(s, IsOk());
  EXPECT_THAT(store().ReadBlob(want), IsOkAndHolds(content));
  EXPECT_EQ(CountEntries(IngestDir()), 0);
}

TEST_F(ContentStoreTest, WriteBlobWithoutExpectationAndOtherAlgorithms) {
  absl::StatusOr<Digest> d = store().WriteBlob("{}");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(*d, DigestOfBytes("{}"));
  // A sha512 expectation on a sha256 ingest rereads the file to check it.
  Digest sha512 = DigestOfBytes("foo", DigestAlgorithm::kSha512);
  absl::StatusOr<Ingest> ingest = store().BeginIngest();
  ASSERT_THAT(ingest, IsOk());
  ASSERT_THAT(ingest->Write("foo"), IsOk());
  ASSERT_THAT(ingest->Commit(sha512, 3), IsOk());
  EXPECT_EQ(store().Path(sha512), dir_.Join("content/blobs/sha512/") + std::string(sha512.hex()));
  EXPECT_THAT(store().ReadBlob(sha512), IsOkAndHolds(std::string("foo")));
}

TEST_F(ContentStoreTest, ReadBlobChecksSizeLimitAndContent) {
  Digest d = *store().WriteBlob("0123456789");
  EXPECT_THAT(store().ReadBlob(d, 9), StatusIs(absl::StatusCode::kFailedPrecondition,
                                               HasSubstr("10 bytes is more than the limit of 9")));
  // Corrupt it behind the store's back.
  ASSERT_EQ(chmod(store().Path(d).c_str(), 0644), 0);
  WriteFileOrDie(store().Path(d), "0123456780");
  EXPECT_THAT(store().ReadBlob(d), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("hashes to")));
  Digest missing = DigestOfBytes("missing");
  EXPECT_THAT(store().ReadBlob(missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(store().Path(missing))));
  EXPECT_THAT(store().Size(missing), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store().Size(Digest()), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ContentStoreTest, DeleteAndList) {
  Digest a = *store().WriteBlob("a");
  Digest b = *store().WriteBlob("bb");
  // Files that are not blobs are not listed (nor ever deleted).
  WriteFileOrDie(dir_.Join("content/blobs/sha256/README"), "not a blob");
  absl::StatusOr<std::vector<BlobInfo>> list = store().List();
  ASSERT_THAT(list, IsOk());
  std::vector<std::string> seen;
  for (const BlobInfo& blob : *list)
    seen.push_back(absl::StrCat(blob.digest.string(), "=", blob.size));
  EXPECT_THAT(seen, UnorderedElementsAre(a.string() + "=1", b.string() + "=2"));

  EXPECT_THAT(store().Delete(a), IsOk());
  EXPECT_FALSE(store().Has(a));
  EXPECT_THAT(store().Delete(a), StatusIs(absl::StatusCode::kNotFound, HasSubstr("unlink")));
  EXPECT_THAT(store().List(), IsOkAndHolds(::testing::SizeIs(1)));
}

TEST_F(ContentStoreTest, WalkStopsAtTheFirstError) {
  ASSERT_THAT(store().WriteBlob("a"), IsOk());
  ASSERT_THAT(store().WriteBlob("b"), IsOk());
  int calls = 0;
  EXPECT_THAT(store().Walk([&](const BlobInfo&) {
    ++calls;
    return absl::CancelledError("enough");
  }),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 1);
}

void SetMtime(const std::string& path, absl::Time t) {
  struct timeval tv[2];
  tv[0] = tv[1] = absl::ToTimeval(t);
  ASSERT_EQ(utimes(path.c_str(), tv), 0) << path;
}

TEST_F(ContentStoreTest, GarbageCollectKeepsReferencedAndFreshIngests) {
  Digest keep = *store().WriteBlob("keep me");
  Digest drop1 = *store().WriteBlob("drop me");
  Digest drop2 = *store().WriteBlob("and me, too");
  WriteFileOrDie(dir_.Join("content/blobs/sha256/README"), "not a blob");

  absl::Time now = absl::Now();
  absl::StatusOr<Ingest> fresh = store().BeginIngest();  // a pull in progress
  ASSERT_THAT(fresh, IsOk());
  ASSERT_THAT(fresh->Write("in flight"), IsOk());
  std::string stale = absl::StrCat(IngestDir(), "/ingest-crashed");  // a crash left it
  WriteFileOrDie(stale, "half a layer");
  SetMtime(stale, now - absl::Hours(2));

  absl::StatusOr<GcResult> gc = store().GarbageCollect({keep}, absl::Hours(1), now);
  ASSERT_THAT(gc, IsOk());
  EXPECT_EQ(gc->blobs_removed, 2);
  EXPECT_EQ(gc->bytes_removed, 7 + 11);
  EXPECT_EQ(gc->ingests_removed, 1);
  EXPECT_TRUE(store().Has(keep));
  EXPECT_FALSE(store().Has(drop1));
  EXPECT_FALSE(store().Has(drop2));
  EXPECT_EQ(access(dir_.Join("content/blobs/sha256/README").c_str(), F_OK), 0);
  EXPECT_NE(access(stale.c_str(), F_OK), 0);
  // The live ingest is untouched and still commits.
  EXPECT_THAT(fresh->Commit(DigestOfBytes("in flight"), 9), IsOk());

  // Nothing left to do: a second run removes nothing.
  gc = store().GarbageCollect({keep, DigestOfBytes("in flight")}, absl::Hours(1), now);
  ASSERT_THAT(gc, IsOk());
  EXPECT_EQ(gc->blobs_removed + gc->ingests_removed, 0);
}

TEST_F(ContentStoreTest, UsageCountsBlocksAndInodes) {
  absl::StatusOr<StoreUsage> empty = store().Usage();
  ASSERT_THAT(empty, IsOk());
  // root, blobs, blobs/sha256, ingest. (Directories may take no blocks, as on tmpfs.)
  EXPECT_EQ(empty->inodes_used, 4);

  std::string big(256 * 1024, 'q');
  ASSERT_THAT(store().WriteBlob(big), IsOk());
  ASSERT_THAT(store().WriteBlob("tiny"), IsOk());
  absl::StatusOr<StoreUsage> used = store().Usage();
  ASSERT_THAT(used, IsOk());
  EXPECT_EQ(used->inodes_used, 6);
  EXPECT_GE(used->used_bytes - empty->used_bytes, static_cast<int64_t>(big.size()));
}

}  // namespace
}  // namespace berth::images
