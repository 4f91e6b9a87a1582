#include "agent/images/hosts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace berth::images {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

std::string Show(const std::vector<RegistryEndpoint>& eps) {
  std::string out;
  for (const RegistryEndpoint& e : eps) {
    out += (e.plain_http ? "http://" : "https://") + e.host + "/" + e.path_prefix;
    if (e.skip_verify) out += " skip_verify";
    if (!e.ca_file.empty()) out += " ca=" + e.ca_file;
    out += ";";
  }
  return out;
}

// What tests/fuzz/image_fuzzer found: bytes TOML forbids inside a literal
// string made Debian's toml11 read past its buffer (ASan: heap-buffer-
// overflow in parse_literal_string). They are refused before it parses.
TEST(HostsTest, TextTomlForbidsIsRefusedBeforeTheParserSeesIt) {
  EXPECT_THAT(ParseHostsToml("r.example", "server = ' \xd4\xc5\x8b\x8fst\xf7'\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("hosts.toml: byte 11 is not UTF-8 text TOML allows")));
  EXPECT_THAT(ParseHostsToml("r.example", "server = 'a\x01b'\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte 11")));
  EXPECT_THAT(ParseHostsToml("r.example", "server = \"https://r.example\" # caf\xc3\xa9\n"),
              IsOk());
}

TEST(HostsTest, DefaultsWithoutAFile) {
  berth::testing::TempDir dir;
  absl::StatusOr<std::vector<RegistryEndpoint>> eps = ResolveEndpoints(dir.path(), "docker.io");
  ASSERT_THAT(eps, IsOk());
  EXPECT_EQ(Show(*eps), "https://registry-1.docker.io/;");
  eps = ResolveEndpoints(dir.path(), "127.0.0.1:5000");
  ASSERT_THAT(eps, IsOk());
  EXPECT_EQ(Show(*eps), "http://127.0.0.1:5000/;");  // loopback: plain HTTP, as Docker
  eps = ResolveEndpoints(dir.path(), "localhost:5000");
  ASSERT_THAT(eps, IsOk());
  EXPECT_EQ(Show(*eps), "http://localhost:5000/;");
  eps = ResolveEndpoints(dir.path(), "registry.example.com");
  ASSERT_THAT(eps, IsOk());
  EXPECT_EQ(Show(*eps), "https://registry.example.com/;");
}

TEST(HostsTest, MirrorsInOrderThenTheUpstream) {
  absl::StatusOr<std::vector<RegistryEndpoint>> eps = ParseHostsToml("docker.io", R"(
server = "https://registry-1.docker.io"
ca = "/etc/ca.pem"
[[mirror]]
url = "http://10.0.0.5:5000"
[[mirror]]
url = "https://mirror.example.com"
skip_verify = true
path_prefix = "hub"
)");
  ASSERT_THAT(eps, IsOk());
  EXPECT_EQ(Show(*eps),
            "http://10.0.0.5:5000/;https://mirror.example.com/hub/ skip_verify;"
            "https://registry-1.docker.io/ ca=/etc/ca.pem;");
}

TEST(HostsTest, SkipUpstreamLeavesOnlyMirrors) {
  absl::StatusOr<std::vector<RegistryEndpoint>> eps = ParseHostsToml("quay.io", R"(
skip_upstream = true
[[mirror]]
url = "http://127.0.0.1:5001"
)");
  ASSERT_THAT(eps, IsOk());
  EXPECT_EQ(Show(*eps), "http://127.0.0.1:5001/;");
  EXPECT_THAT(ParseHostsToml("quay.io", "skip_upstream = true\n"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("nowhere to pull from")));
}

TEST(HostsTest, ErrorsNameTheFileAndKey) {
  EXPECT_THAT(ParseHostsToml("h", "server = 3\n", "h/hosts.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("h/hosts.toml: server is not a string")));
  EXPECT_THAT(ParseHostsToml("h", "[[mirror]]\nurl = \"ftp://x\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("mirror[0].url `ftp://x` must start with http:// or https://")));
  EXPECT_THAT(ParseHostsToml("h", "[[mirror]]\nskip_verify = true\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mirror[0].url is missing")));
  EXPECT_THAT(ParseHostsToml("h", "server = \n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolveEndpoints("/etc", "../x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HostsTest, ReadsTheHostsFile) {
  berth::testing::TempDir dir;
  ASSERT_EQ(mkdir(dir.Join("example.com").c_str(), 0755), 0);
  berth::testing::WriteFileOrDie(dir.Join("example.com/hosts.toml"),
                                 "[[mirror]]\nurl = \"http://127.0.0.1:9\"\n");
  absl::StatusOr<std::vector<RegistryEndpoint>> eps = ResolveEndpoints(dir.path(), "example.com");
  ASSERT_THAT(eps, IsOk());
  EXPECT_EQ(Show(*eps), "http://127.0.0.1:9/;https://example.com/;");
}

TEST(HostsTest, Loopback) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1:5000"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("[::1]:5000"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1:5000"));
  EXPECT_FALSE(IsLoopbackHost("registry.example.com"));
  // A DNS name that starts like a loopback address is anyone's host: it
  // must not be pulled from over plain HTTP (review-2026-12 #11).
  EXPECT_FALSE(IsLoopbackHost("127.example.com"));
  EXPECT_FALSE(IsLoopbackHost("127.0.0.1.nip.io:5000"));
  EXPECT_FALSE(IsLoopbackHost("127.0.0.1.evil"));
}

}  // namespace
}  // namespace berth::images
