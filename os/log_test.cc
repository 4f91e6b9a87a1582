#include "os/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace berth {
namespace {

using ::testing::MatchesRegex;

TEST(LogTest, LineHasUtcTimestampLevelSourceAndMessage) {
  std::string line =
      FormatLogLine(LogSeverity::kWARNING, "/src/berth/agent/server.cc", 42, "socket is stale");
  EXPECT_THAT(line,
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z "
                           "W agent/server\\.cc:42\\] socket is stale\n"));
}

TEST(LogTest, ParsesSeverityNames) {
  LogSeverity s;
  ASSERT_TRUE(ParseLogSeverity("DEBUG", &s));
  EXPECT_EQ(s, LogSeverity::kDEBUG);
  ASSERT_TRUE(ParseLogSeverity("warn", &s));
  EXPECT_EQ(s, LogSeverity::kWARNING);
  EXPECT_FALSE(ParseLogSeverity("loud", &s));
}

TEST(LogTest, DropsMessagesBelowMinimum) {
  SetMinLogSeverity(LogSeverity::kERROR);
  ::testing::internal::CaptureStderr();
  BERTH_LOG(INFO) << "hidden";
  BERTH_LOG(ERROR) << "shown " << 7;
  std::string err = ::testing::internal::GetCapturedStderr();
  SetMinLogSeverity(LogSeverity::kINFO);
  EXPECT_THAT(err, ::testing::Not(::testing::HasSubstr("hidden")));
  EXPECT_THAT(err, ::testing::HasSubstr("E os/log_test.cc:"));
  EXPECT_THAT(err, ::testing::HasSubstr("] shown 7\n"));
}

}  // namespace
}  // namespace berth
