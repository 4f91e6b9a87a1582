#include "agent/images/reference.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

const std::string kHex = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const std::string kDigest = "sha256:" + kHex;

struct Good {
  std::string input;
  std::string domain, path, tag, digest;
  std::string canonical;  // String()
  std::string familiar;   // Familiar()
};

void PrintTo(const Good& g, std::ostream* os) { *os << '"' << g.input << '"'; }

class ReferenceTest : public ::testing::TestWithParam<Good> {};

TEST_P(ReferenceTest, ParsesAndNormalises) {
  const Good& want = GetParam();
  absl::StatusOr<Reference> ref = Reference::Parse(want.input);
  ASSERT_THAT(ref, IsOk());
  EXPECT_EQ(ref->domain(), want.domain);
  EXPECT_EQ(ref->path(), want.path);
  EXPECT_EQ(ref->tag(), want.tag);
  EXPECT_EQ(ref->digest().string(), want.digest);
  EXPECT_EQ(ref->String(), want.canonical);
  EXPECT_EQ(ref->Familiar(), want.familiar);
  // The canonical form is a fixed point, and so is the familiar one.
  absl::StatusOr<Reference> again = Reference::Parse(ref->String());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(*again, *ref);
  absl::StatusOr<Reference> familiar = Reference::Parse(ref->Familiar());
  ASSERT_THAT(familiar, IsOk());
  EXPECT_EQ(*familiar, *ref);
}

// Expectations follow distribution/reference's normalize_test.go and kubelet.
INSTANTIATE_TEST_SUITE_P(
    Table, ReferenceTest,
    ::testing::Values(
        Good{"busybox", "docker.io", "library/busybox", "latest", "",
             "docker.io/library/busybox:latest", "busybox:latest"},
        Good{"busybox:1.36", "docker.io", "library/busybox", "1.36", "",
             "docker.io/library/busybox:1.36", "busybox:1.36"},
        Good{"user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest",
             "user/app:latest"},
        Good{"docker.io/busybox", "docker.io", "library/busybox", "latest", "",
             "docker.io/library/busybox:latest", "busybox:latest"},
        Good{"index.docker.io/user/app:v1", "docker.io", "user/app", "v1", "",
             "docker.io/user/app:v1", "user/app:v1"},
        Good{"docker.io/library/a/b", "docker.io", "library/a/b", "latest", "",
             "docker.io/library/a/b:latest", "library/a/b:latest"},
        Good{"localhost/x", "localhost", "x", "latest", "", "localhost/x:latest",
             "localhost/x:latest"},
        Good{"localhost:5000/x", "localhost:5000", "x", "latest", "", "localhost:5000/x:latest",
             "localhost:5000/x:latest"},
        Good{"host.example/a/b:tag", "host.example", "a/b", "tag", "", "host.example/a/b:tag",
             "host.example/a/b:tag"},
        Good{"127.0.0.1:5000/team/app:1.0-rc.1", "127.0.0.1:5000", "team/app", "1.0-rc.1", "",
             "127.0.0.1:5000/team/app:1.0-rc.1", "127.0.0.1:5000/team/app:1.0-rc.1"},
        Good{"[::1]:5000/x:y", "[::1]:5000", "x", "y", "", "[::1]:5000/x:y", "[::1]:5000/x:y"},
        Good{"Registry.Example:443/a", "Registry.Example:443", "a", "latest", "",
             "Registry.Example:443/a:latest", "Registry.Example:443/a:latest"},
        // An uppercase first part is a host even without '.' or ':'.
        Good{"Foo/bar", "Foo", "bar", "latest", "", "Foo/bar:latest", "Foo/bar:latest"},
        Good{"my-registry/x", "docker.io", "my-registry/x", "latest", "",
             "docker.io/my-registry/x:latest", "my-registry/x:latest"},
        Good{"a.b-c--d/f_g.h__i---j:TAG_x.y-z", "a.b-c--d", "f_g.h__i---j", "TAG_x.y-z", "",
             "a.b-c--d/f_g.h__i---j:TAG_x.y-z", "a.b-c--d/f_g.h__i---j:TAG_x.y-z"},
        Good{"docker.io/library/a__b--c.d:_", "docker.io", "library/a__b--c.d", "_", "",
             "docker.io/library/a__b--c.d:_", "a__b--c.d:_"},
        // Digested: no ":latest" added.
        Good{"busybox@" + kDigest, "docker.io", "library/busybox", "", kDigest,
             "docker.io/library/busybox@" + kDigest, "busybox@" + kDigest},
        Good{"quay.io/a/b@" + kDigest, "quay.io", "a/b", "", kDigest, "quay.io/a/b@" + kDigest,
             "quay.io/a/b@" + kDigest},
        // Tag and digest both kept.
        Good{"busybox:1.36@" + kDigest, "docker.io", "library/busybox", "1.36", kDigest,
             "docker.io/library/busybox:1.36@" + kDigest, "busybox:1.36@" + kDigest},
        Good{"localhost:5000/x:1@" + kDigest, "localhost:5000", "x", "1", kDigest,
             "localhost:5000/x:1@" + kDigest, "localhost:5000/x:1@" + kDigest},
        // One component with no slash is always Docker Hub, even "localhost:5000".
        Good{"localhost:5000", "docker.io", "library/localhost", "5000", "",
             "docker.io/library/localhost:5000", "localhost:5000"},
        Good{"example.com", "docker.io", "library/example.com", "latest", "",
             "docker.io/library/example.com:latest", "example.com:latest"}));

TEST(ReferenceTest, CriForms) {
  Reference tagged = *Reference::Parse("busybox");
  EXPECT_EQ(tagged.Name(), "docker.io/library/busybox");
  EXPECT_EQ(tagged.RepoTag(), "docker.io/library/busybox:latest");
  EXPECT_EQ(tagged.RepoDigest(), "");
  EXPECT_EQ(tagged.DockerRef(), "docker.io/library/busybox:latest");
  EXPECT_FALSE(tagged.has_digest());

  Reference both = *Reference::Parse("busybox:1.36@" + kDigest);
  EXPECT_EQ(both.RepoTag(), "docker.io/library/busybox:1.36");
  EXPECT_EQ(both.RepoDigest(), "docker.io/library/busybox@" + kDigest);
  // containerd's ParseDockerRef drops the tag when there is a digest.
  EXPECT_EQ(both.DockerRef(), "docker.io/library/busybox@" + kDigest);
  EXPECT_TRUE(both.has_digest());
}

TEST(ReferenceTest, PathOfExactly255IsAllowed) {
  std::string path = "a/" + std::string(253, 'b');  // 255 characters
  EXPECT_THAT(Reference::Parse("example.com/" + path), IsOk());
  EXPECT_THAT(Reference::Parse("example.com/" + path + "b"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than 255")));
}

TEST(ReferenceTest, TagOf128IsAllowed) {
  EXPECT_THAT(Reference::Parse("a:" + std::string(128, 't')), IsOk());
  EXPECT_THAT(Reference::Parse("a:" + std::string(129, 't')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid tag")));
}

struct Bad {
  std::string input;
  std::string message;
};

void PrintTo(const Bad& b, std::ostream* os) { *os << '"' << b.input << '"'; }

class ReferenceErrorTest : public ::testing::TestWithParam<Bad> {};

TEST_P(ReferenceErrorTest, IsInvalidArgumentNamingTheProblem) {
  absl::StatusOr<Reference> ref = Reference::Parse(GetParam().input);
  EXPECT_THAT(ref, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().message)))
      << (ref.ok() ? ref->String() : "");
}

INSTANTIATE_TEST_SUITE_P(
    Table, ReferenceErrorTest,
    ::testing::Values(
        Bad{"", "empty"}, Bad{kHex, "image ID"}, Bad{"BUSYBOX", "must be lowercase"},
        Bad{"user/App", "must be lowercase"}, Bad{"localhost:5000/App:v1", "must be lowercase"},
        Bad{"busybox:", "invalid tag"}, Bad{"busybox:-x", "invalid tag"},
        Bad{"busybox:.x", "invalid tag"}, Bad{"busybox:a:b", "invalid tag"},
        Bad{"busybox:a/b", "invalid registry host \"busybox:a\""},  // a ':' before '/' is a port
        Bad{"busybox@sha256:abc", "sha256 needs 64 hex digits"},
        Bad{"busybox@" + kHex, "want <algorithm>:<hex>"},
        Bad{"busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm"},
        Bad{"busybox@" + kDigest + "@" + kDigest, "invalid digest"},
        Bad{"-busybox", "invalid repository name component \"-busybox\""},
        Bad{"busybox-", "invalid repository name component"},
        Bad{"a..b", "invalid repository name component"},
        Bad{"a___b", "invalid repository name component"},
        Bad{"a._b", "invalid repository name component"},
        Bad{"user//app", "invalid repository name component \"\""},
        Bad{"user/app/", "invalid repository name component \"\""},
        Bad{"/app", "invalid repository name component \"\""},
        Bad{"example.com/", "invalid repository name component \"\""},
        Bad{"foo_bar.com/x", "invalid registry host \"foo_bar.com\""},
        Bad{"-host.com/x", "invalid registry host"}, Bad{"host.com:/x", "invalid registry host"},
        Bad{"host.com:50a/x", "invalid registry host"}, Bad{"[::1/x", "invalid registry host"},
        Bad{"[zz]:5000/x", "invalid registry host"}, Bad{":tag", "missing repository name"},
        Bad{"@" + kDigest, "missing repository name"},
        Bad{"a b", "invalid repository name component"},
        Bad{"caf\xc3\xa9", "invalid repository name component"}));

}  // namespace
}  // namespace berth::images
