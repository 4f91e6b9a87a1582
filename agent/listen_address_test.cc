#include "agent/listen_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseHostPortTest, Ipv4AndNames) {
  absl::StatusOr<HostPort> hp = ParseHostPort("127.0.0.1:10010");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 10010);
  EXPECT_EQ(hp->GrpcAddress(), "127.0.0.1:10010");
  EXPECT_EQ(ParseHostPort("node1.example:0")->host, "node1.example");
}

TEST(ParseHostPortTest, BracketedIpv6) {
  absl::StatusOr<HostPort> hp = ParseHostPort("[::1]:443");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->GrpcAddress(), "[::1]:443");
}

TEST(ParseHostPortTest, RejectsBadInputNamingIt) {
  for (const char* bad :
       {"10010", ":10010", "host:", "host:70000", "host:-1", "::1:80", "[::1:80", "host:port"}) {
    EXPECT_THAT(ParseHostPort(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(bad)))
        << bad;
  }
}

TEST(IsLoopbackHostTest, LoopbackOnly) {
  for (const char* yes :
       {"localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(yes)) << yes;
  }
  for (const char* no : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "192.168.1.1", "example.com",
                         "localhost.evil.example", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(no)) << no;
  }
}

}  // namespace
}  // namespace berth
