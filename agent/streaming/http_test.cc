#include "agent/streaming/http.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "os/unique_fd.h"
#include "tests/support/status_matchers.h"

namespace berth::streaming {
namespace {

using ::berth::testing::IsOk;
using ::berth::testing::StatusIs;
using ::testing::ElementsAre;

TEST(HttpRequestTest, ParsesTheHeadAndItsHeaders) {
  absl::StatusOr<HttpRequest> r = ParseHttpRequest(
      "POST /exec/abc?x=1 HTTP/1.1\r\nHost: h\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
      "x-stream-protocol-version:  v3.channel.k8s.io, v2.channel.k8s.io \r\n\r\n");
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->path, "/exec/abc");
  EXPECT_EQ(r->query, "x=1");
  EXPECT_EQ(r->Header("host"), "h");
  EXPECT_EQ(r->Header("absent"), "");
  EXPECT_THAT(r->HeaderList("x-stream-protocol-version"),
              ElementsAre("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"));
}

TEST(HttpRequestTest, RefusesMalformedHeads) {
  EXPECT_THAT(ParseHttpRequest("GET /\r\n\r\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("request line")));
  EXPECT_THAT(ParseHttpRequest("GET / HTTP/1.1\r\nno colon\r\n\r\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("header line")));
}

TEST(HttpRequestTest, ReadKeepsWhatFollowsTheHeadAndHasADeadline) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  const std::string sent = "GET /x HTTP/1.1\r\nA: b\r\n\r\n\x80\x03rest";
  ASSERT_EQ(write(b.get(), sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
  std::string rest;
  absl::StatusOr<HttpRequest> r = ReadHttpRequest(a.get(), absl::Now() + absl::Seconds(5), &rest);
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->path, "/x");
  EXPECT_EQ(rest, "\x80\x03rest");
  EXPECT_THAT(ReadHttpRequest(a.get(), absl::Now() + absl::Milliseconds(30), &rest).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  b.reset();
  EXPECT_THAT(ReadHttpRequest(a.get(), absl::Now() + absl::Seconds(5), &rest).status(),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace berth::streaming
