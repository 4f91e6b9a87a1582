#include "agent/images/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(ParseAuthChallengeTest, DockerHubBearer) {
  absl::StatusOr<AuthChallenge> c = ParseAuthChallenge(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",)"
      R"(scope="repository:library/busybox:pull")");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_THAT(c->params, UnorderedElementsAre(Pair("realm", "https://auth.docker.io/token"),
                                              Pair("service", "registry.docker.io"),
                                              Pair("scope", "repository:library/busybox:pull")));
}

TEST(ParseAuthChallengeTest, BasicWithSpacesEscapesAndTokens) {
  absl::StatusOr<AuthChallenge> c =
      ParseAuthChallenge(R"(Basic realm="my \"quoted\" realm", charset=UTF-8)");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_THAT(c->params, UnorderedElementsAre(Pair("realm", R"(my "quoted" realm)"),
                                              Pair("charset", "UTF-8")));
  c = ParseAuthChallenge("Bearer");
  ASSERT_THAT(c, IsOk());
  EXPECT_TRUE(c->params.empty());
}

TEST(ParseAuthChallengeTest, Errors) {
  EXPECT_THAT(ParseAuthChallenge(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseAuthChallenge("Bearer realm"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad parameter")));
}

TEST(RegistryClientTest, UnreachableRegistryIsUnavailableNamingTheUrl) {
  // Port 1 on loopback: nothing listens there.
  RegistryClient client(RegistryEndpoint{.host = "127.0.0.1:1", .plain_http = true}, {});
  EXPECT_THAT(client.GetManifest("library/busybox", "latest"),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("http://127.0.0.1:1/v2/library/busybox/manifests/latest")));
}

}  // namespace
}  // namespace berth::images
