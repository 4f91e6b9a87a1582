#include "agent/cri/rpc_boundary.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"

namespace berth {
namespace {

using ::testing::HasSubstr;

std::string Scrape(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

TEST(ToGrpcStatusTest, KeepsCodeAndMessage) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  grpc::Status s = ToGrpcStatus(absl::NotFoundError("container `abc` not found"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "container `abc` not found");
  for (int code = 1; code <= 16; ++code) {
    EXPECT_EQ(
        static_cast<int>(ToGrpcStatus(absl::Status(absl::StatusCode(code), "x")).error_code()),
        code);
  }
}

TEST(NotImplementedTest, NamesTheMethod) {
  absl::Status s = NotImplemented("runtime.v1.RuntimeService/RunPodSandbox");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("runtime.v1.RuntimeService/RunPodSandbox"));
}

TEST(RpcBoundaryTest, UnaryFillsResponseAndCountsByCode) {
  prometheus::Registry registry;
  RpcBoundary boundary(registry);
  std::string response;
  auto ok = [](const int& n) -> absl::StatusOr<std::string> { return std::to_string(n); };
  auto bad = [](const int&) -> absl::StatusOr<std::string> {
    return absl::InvalidArgumentError("field `x`: bad");
  };
  EXPECT_TRUE(boundary.Unary("svc/Ok", 42, &response, ok).ok());
  EXPECT_EQ(response, "42");
  grpc::Status s = boundary.Unary("svc/Bad", 1, &response, bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "field `x`: bad");
  EXPECT_EQ(response, "42");  // untouched on error

  std::string text = Scrape(registry);
  EXPECT_THAT(text, HasSubstr("berth_grpc_requests_total{code=\"OK\",method=\"svc/Ok\"} 1"));
  EXPECT_THAT(
      text, HasSubstr("berth_grpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"svc/Bad\"} 1"));
  EXPECT_THAT(text, HasSubstr("berth_grpc_request_duration_seconds_count{method=\"svc/Ok\"} 1"));
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST(RpcBoundaryDrainTest, WaitsForInFlightCallsThenRefusesNewOnes) {
  prometheus::Registry registry;
  RpcBoundary boundary(registry);
  absl::Notification entered, release;
  std::string response;
  std::thread call([&] {
    grpc::Status s =
        boundary.Unary("svc/Slow", 0, &response, [&](const int&) -> absl::StatusOr<std::string> {
          entered.Notify();
          release.WaitForNotification();
          return std::string("done");
        });
    EXPECT_TRUE(s.ok());
  });
  entered.WaitForNotification();
  // The in-flight call is still running at a short deadline...
  EXPECT_EQ(boundary.Drain(absl::Milliseconds(20)), 1);
  // ...and once it finishes, Drain sees none left.
  release.Notify();
  call.join();
  EXPECT_EQ(response, "done");
  EXPECT_EQ(boundary.Drain(absl::Seconds(5)), 0);
  grpc::Status late =
      boundary.Unary("svc/Late", 0, &response, [](const int&) -> absl::StatusOr<std::string> {
        ADD_FAILURE() << "handler ran while draining";
        return std::string();
      });
  EXPECT_EQ(late.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(late.error_message(), "berthd is shutting down");
}

}  // namespace
}  // namespace berth
