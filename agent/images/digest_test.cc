#include "agent/images/digest.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/container/flat_hash_set.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::berth::testing::TempDir;
using ::berth::testing::WriteFileOrDie;
using ::testing::HasSubstr;

// printf 'foo' | sha256sum, and friends.
constexpr char kFooSha256[] = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kFooSha512[] =
    "f7fbba6e0636f890e56fbbf3283e524c6fa3204ae298382d624741d0dc6638326e282c41be5e4254d8820772c5518a"
    "2c"
    "5a8c0c7f7eda19594a7eb539453e1ed7";
constexpr char kHelloWorldSha384[] =
    "fdbd8e75a67f29f701a4e040385e2e23986303ea10239211af907fcbb83578b3e417cb71ce646efd0819dd8c088de1"
    "bd";

TEST(DigestTest, ParsesSha256) {
  std::string text = std::string("sha256:") + kFooSha256;
  absl::StatusOr<Digest> d = Digest::Parse(text);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->algorithm(), DigestAlgorithm::kSha256);
  EXPECT_EQ(d->algorithm_name(), "sha256");
  EXPECT_EQ(d->hex(), kFooSha256);
  EXPECT_EQ(d->string(), text);
  EXPECT_FALSE(d->empty());
}

TEST(DigestTest, ParsesSha512AndSha384) {
  absl::StatusOr<Digest> d = Digest::Parse(std::string("sha512:") + kFooSha512);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->algorithm(), DigestAlgorithm::kSha512);
  EXPECT_EQ(d->hex().size(), 128u);
  ASSERT_THAT(Digest::Parse(std::string("sha384:") + kHelloWorldSha384), IsOk());
}

struct BadDigest {
  std::string text;
  absl::StatusCode code;
  std::string message;
};

class DigestErrorTest : public ::testing::TestWithParam<BadDigest> {};

TEST_P(DigestErrorTest, NamesTheProblem) {
  EXPECT_THAT(Digest::Parse(GetParam().text),
              StatusIs(GetParam().code, HasSubstr(GetParam().message)));
}

const std::string kHex = kFooSha256;
INSTANTIATE_TEST_SUITE_P(
    Table, DigestErrorTest,
    ::testing::Values(
        BadDigest{"", absl::StatusCode::kInvalidArgument, "want <algorithm>:<hex>"},
        BadDigest{kHex, absl::StatusCode::kInvalidArgument, "want <algorithm>:<hex>"},
        BadDigest{":" + kHex, absl::StatusCode::kInvalidArgument, "missing algorithm"},
        BadDigest{"sha256:", absl::StatusCode::kInvalidArgument, "missing hex"},
        BadDigest{"sha256:abc", absl::StatusCode::kInvalidArgument,
                  "sha256 needs 64 hex digits, got 3"},
        BadDigest{"sha256:" + kHex + "0", absl::StatusCode::kInvalidArgument, "got 65"},
        BadDigest{"sha512:" + kHex, absl::StatusCode::kInvalidArgument,
                  "sha512 needs 128 hex digits, got 64"},
        BadDigest{"sha256:2C26" + kHex.substr(4), absl::StatusCode::kInvalidArgument,
                  "not lowercase hex at offset 1"},
        BadDigest{"sha256:" + kHex.substr(0, 63) + "g", absl::StatusCode::kInvalidArgument,
                  "offset 63"},
        BadDigest{"SHA256:" + kHex, absl::StatusCode::kInvalidArgument, "malformed algorithm"},
        BadDigest{"md5:d41d8cd98f00b204e9800998ecf8427e", absl::StatusCode::kUnimplemented,
                  "unsupported digest algorithm \"md5\""},
        BadDigest{"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
                  absl::StatusCode::kUnimplemented, "sha256+b64u"}));

TEST(DigestTest, FromHexChecksLikeParse) {
  absl::StatusOr<Digest> d = Digest::FromHex(DigestAlgorithm::kSha256, kFooSha256);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->string(), std::string("sha256:") + kFooSha256);
  EXPECT_THAT(Digest::FromHex(DigestAlgorithm::kSha256, "xyz"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DigestTest, EqualityOrderingAndHashing) {
  Digest a = *Digest::Parse(std::string("sha256:") + kFooSha256);
  Digest b = *Digest::Parse(std::string("sha256:") + kEmptySha256);
  EXPECT_EQ(a, *Digest::Parse(a.string()));
  EXPECT_NE(a, b);
  EXPECT_TRUE(a < b);  // "2c..." < "e3..."
  absl::flat_hash_set<Digest> set = {a, b, a};
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(Digest().empty());
  EXPECT_EQ(Digest().hex(), "");
}

TEST(HasherTest, KnownValues) {
  EXPECT_EQ(DigestOfBytes("foo").hex(), kFooSha256);
  EXPECT_EQ(DigestOfBytes("").hex(), kEmptySha256);
  EXPECT_EQ(DigestOfBytes("foo", DigestAlgorithm::kSha512).string(),
            std::string("sha512:") + kFooSha512);
  EXPECT_EQ(DigestOfBytes("hello world", DigestAlgorithm::kSha384).hex(), kHelloWorldSha384);
}

TEST(HasherTest, StreamingEqualsOneShotAndFinishRestarts) {
  Hasher hasher;
  hasher.Update("f");
  hasher.Update("");
  hasher.Update("oo");
  EXPECT_EQ(hasher.Finish().hex(), kFooSha256);
  // After Finish the hasher starts over.
  EXPECT_EQ(hasher.Finish().hex(), kEmptySha256);
  Hasher moved = std::move(hasher);
  moved.Update("foo");
  EXPECT_EQ(moved.Finish().hex(), kFooSha256);
}

TEST(DigestOfFileTest, HashesContentAcrossChunks) {
  TempDir dir;
  // Larger than DigestOfFile's 1 MiB buffer, so it reads more than once.
  std::string big(3 * (1 << 20) + 17, 'x');
  for (size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<char>('a' + i % 26);
  WriteFileOrDie(dir.Join("big"), big);
  absl::StatusOr<Digest> d = DigestOfFile(dir.Join("big"));
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(*d, DigestOfBytes(big));
}

TEST(DigestOfFileTest, MissingFileNamesPath) {
  TempDir dir;
  EXPECT_THAT(DigestOfFile(dir.Join("nope")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir.Join("nope"))));
}

}  // namespace
}  // namespace berth::images
