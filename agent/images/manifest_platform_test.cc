#include "agent/images/manifest_platform.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/status_matchers.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Platform P(std::string os, std::string arch, std::string variant = "") {
  return Platform{std::move(os), std::move(arch), std::move(variant), "", {}};
}

// An index entry whose digest encodes its position, so tests can tell which won.
Descriptor Entry(int n, std::optional<Platform> platform,
                 absl::string_view media_type = kMediaTypeOciManifest) {
  Descriptor d;
  d.media_type = std::string(media_type);
  d.digest = DigestOfBytes(absl::StrCat("entry", n));
  d.size = 100 + n;
  d.platform = std::move(platform);
  return d;
}

int Chosen(const Index& index, const absl::StatusOr<Descriptor>& got) {
  if (!got.ok()) return -1;
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    if (index.manifests[i].digest == got->digest) return static_cast<int>(i);
  }
  return -2;
}

TEST(NormalizePlatformTest, Table) {
  struct Case {
    Platform in;
    std::string want;
  };
  for (const Case& c : {
           Case{P("linux", "x86_64"), "linux/amd64"},
           Case{P("Linux", "X86-64"), "linux/amd64"},
           Case{P("linux", "amd64", "v1"), "linux/amd64"},
           Case{P("linux", "amd64", "v3"), "linux/amd64/v3"},
           Case{P("linux", "aarch64"), "linux/arm64"},
           Case{P("linux", "arm64", "v8"), "linux/arm64"},
           Case{P("linux", "arm64", "8"), "linux/arm64"},
           Case{P("linux", "arm64", "v8.0"), "linux/arm64"},
           Case{P("linux", "arm64", "9"), "linux/arm64/v9"},
           Case{P("linux", "arm64", "v8.2"), "linux/arm64/v8.2"},
           Case{P("linux", "armhf"), "linux/arm/v7"},
           Case{P("linux", "armel"), "linux/arm/v6"},
           Case{P("linux", "arm"), "linux/arm/v7"},
           Case{P("linux", "arm", "7"), "linux/arm/v7"},
           Case{P("linux", "arm", "6"), "linux/arm/v6"},
           Case{P("linux", "i386"), "linux/386"},
           Case{P("macos", "arm64"), "darwin/arm64"},
           Case{P("", "amd64"), "linux/amd64"},
       }) {
    EXPECT_EQ(FormatPlatform(NormalizePlatform(c.in)), c.want) << FormatPlatform(c.in);
  }
}

std::vector<std::string> Accepted(const Platform& want) {
  std::vector<std::string> out;
  PlatformMatcher matcher(want);
  for (const Platform& p : matcher.accepted()) out.push_back(FormatPlatform(p));
  return out;
}

TEST(PlatformMatcherTest, AcceptsOlderCompatiblePlatformsInOrder) {
  EXPECT_THAT(Accepted(P("linux", "amd64")), ElementsAre("linux/amd64", "linux/386"));
  EXPECT_THAT(Accepted(P("linux", "amd64", "v3")),
              ElementsAre("linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"));
  EXPECT_THAT(
      Accepted(P("linux", "arm64")),
      ElementsAre("linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"));
  EXPECT_THAT(Accepted(P("linux", "arm64", "v8.2")),
              ElementsAre("linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v8",
                          "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"));
  EXPECT_THAT(
      Accepted(P("linux", "arm64", "v9.1")),
      ElementsAre("linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.6", "linux/arm64/v8.5",
                  "linux/arm64/v8.4", "linux/arm64/v8.3", "linux/arm64/v8.2", "linux/arm64/v8.1",
                  "linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"));
  EXPECT_THAT(Accepted(P("linux", "arm", "v7")),
              ElementsAre("linux/arm/v7", "linux/arm/v6", "linux/arm/v5"));
  EXPECT_THAT(Accepted(P("linux", "ppc64le")), ElementsAre("linux/ppc64le"));
}

TEST(PlatformMatcherTest, MatchNormalisesCandidates) {
  PlatformMatcher amd64(P("linux", "amd64"));
  EXPECT_TRUE(amd64.Match(P("linux", "x86_64")));
  EXPECT_TRUE(amd64.Match(P("linux", "amd64", "v1")));
  EXPECT_FALSE(amd64.Match(P("linux", "amd64", "v2")));  // needs a newer CPU than asked for
  EXPECT_FALSE(amd64.Match(P("windows", "amd64")));
  PlatformMatcher arm64(P("linux", "arm64"));
  EXPECT_TRUE(arm64.Match(P("linux", "arm64", "v8")));
  EXPECT_TRUE(arm64.Match(P("linux", "aarch64")));
  EXPECT_TRUE(arm64.Match(P("linux", "arm")));  // arm/v7
  EXPECT_FALSE(arm64.Match(P("linux", "arm64", "v8.2")));
  EXPECT_EQ(arm64.Rank(P("linux", "arm64", "v8")), 0);
  EXPECT_EQ(arm64.Rank(P("linux", "armhf")), 2);
}

// The Docker Hub manifest list of manifest_test.cc: amd64, arm/v6, arm/v7, arm64/v8, ppc64le.
Index HubList() {
  Index index;
  index.manifests = {Entry(0, P("linux", "amd64")), Entry(1, P("linux", "arm", "v6")),
                     Entry(2, P("linux", "arm", "v7")), Entry(3, P("linux", "arm64", "v8")),
                     Entry(4, P("linux", "ppc64le"))};
  for (Descriptor& d : index.manifests) d.media_type = std::string(kMediaTypeDockerManifest);
  return index;
}

TEST(SelectPlatformTest, DockerHubList) {
  Index index = HubList();
  EXPECT_EQ(Chosen(index, SelectPlatform(index)), 0);  // linux/amd64 by default
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "arm64")), 3);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "arm64", "v8")), 3);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "aarch64")), 3);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "arm", "v7")), 2);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "arm")), 2);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "arm", "v6")), 1);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "amd64", "v3")), 0);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "ppc64le")), 4);
  EXPECT_THAT(SelectPlatform(index, "linux", "s390x"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("no manifest for linux/s390x in the image index (it has: "
                                 "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, "
                                 "linux/ppc64le)")));
  EXPECT_THAT(SelectPlatform(index, "windows", "amd64"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(SelectPlatformTest, FallsBackToOlderPlatforms) {
  Index index;
  index.manifests = {Entry(0, P("linux", "arm", "v6")), Entry(1, P("linux", "386")),
                     Entry(2, P("linux", "arm", "v7"))};
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "arm64")), 2);  // arm/v7 beats v6
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "amd64")), 1);  // 386
  EXPECT_THAT(SelectPlatform(index, "linux", "arm", "v5"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(SelectPlatformTest, AmdVariantsPickTheBestTheCpuRuns) {
  Index index;
  index.manifests = {Entry(0, P("linux", "amd64")), Entry(1, P("linux", "amd64", "v3")),
                     Entry(2, P("linux", "amd64", "v2"))};
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "amd64")), 0);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "amd64", "v2")), 2);
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "amd64", "v4")), 1);
}

TEST(SelectPlatformTest, TiesGoToTheFirstAndUnplatformedComeLast) {
  Index index;
  index.manifests = {Entry(0, std::nullopt), Entry(1, P("linux", "amd64")),
                     Entry(2, P("linux", "x86_64"))};
  EXPECT_EQ(Chosen(index, SelectPlatform(index)), 1);
  // Nothing matches by platform: the entry without one is the candidate.
  EXPECT_EQ(Chosen(index, SelectPlatform(index, "linux", "riscv64")), 0);
}

TEST(SelectPlatformTest, SkipsAttestationsAndNonManifests) {
  Index index;
  index.manifests = {Entry(0, P("unknown", "unknown")),
                     Entry(1, std::nullopt, "application/vnd.oci.image.layer.v1.tar+gzip"),
                     Entry(2, P("linux", "amd64"), kMediaTypeOciIndex)};
  EXPECT_EQ(Chosen(index, SelectPlatform(index)), 2);  // a nested index is fine
  index.manifests.pop_back();
  EXPECT_THAT(SelectPlatform(index),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("(it has: unknown/unknown)")));
}

}  // namespace
}  // namespace berth::images
