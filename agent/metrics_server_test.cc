// MetricsServer on 127.0.0.1:0: GET and HEAD /metrics, other paths and methods
// refused, a taken port an error.
#include "agent/metrics_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/berthd_process.h"
#include "tests/support/status_matchers.h"

namespace berth {
namespace {

using ::berth::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(MetricsServerTest, ServesMetricsOnly) {
  int calls = 0;
  auto server = MetricsServer::Start("127.0.0.1:0", [&] {
    ++calls;
    return std::string("up 1\n");
  });
  ASSERT_THAT(server, IsOk());
  const int port = (*server)->port();
  ASSERT_GT(port, 0);
  std::string page = testing::HttpGet(port, "/metrics?x=1");
  EXPECT_THAT(page, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(page, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(page, HasSubstr("Content-Length: 5\r\n"));
  EXPECT_THAT(page, HasSubstr("\r\n\r\nup 1\n"));
  EXPECT_THAT(testing::HttpRequest(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
              Not(HasSubstr("up 1")));
  EXPECT_THAT(testing::HttpGet(port, "/"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(testing::HttpRequest(port, "POST /metrics HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(testing::HttpRequest(port, "nonsense\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_EQ(calls, 2);  // GET and HEAD
}

TEST(MetricsServerTest, TakenPortIsAnError) {
  auto first = MetricsServer::Start("127.0.0.1:0", [] { return std::string(); });
  ASSERT_THAT(first, IsOk());
  auto second = MetricsServer::Start("127.0.0.1:" + std::to_string((*first)->port()),
                                     [] { return std::string(); });
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("bind"));
}

}  // namespace
}  // namespace berth
